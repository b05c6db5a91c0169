"""KuCoin Futures simulator: public bullet token, welcome, JSON ping/pong, tickerV2 and instrument topics.

Generated listings: ``{asset}USDTM`` / ``{asset}USDCM`` (XBT for BTC, ``1000BONKUSDTM``
for prefixed bases) with lots (``multiplier``) of a power of ten near 100 USD,
inverse ``{asset}USDM`` (lots of 1 USD, reported as -1), in ``/api/v1/contracts/active``
with numbers as JSON numbers, as the venue sends them.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web
from msgspec.structs import replace as replace_struct

from ingest.simulator.base import BOOK, FUNDING, Frame, ListingSpec, RestHandler, SimSession, VenueSim, to_contracts
from ingest.simulator.funding_history import HistoryError, Settled, instrument, int_param, json_number
from ingest.simulator.listing_helpers import nominal_price, open_contracts, with_open_interest
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import canonical_base, make_instrument
from ingest.venues.kucoin import FUNDING_HISTORY_PATH, PERPETUAL, Kucoin
from schemas.market import ContractKind, Instrument

TICKER = "/contractMarket/tickerV2"
INSTRUMENT = "/contract/instrument"
_KINDS = {TICKER: BOOK, INSTRUMENT: FUNDING}
FUNDING_RATE_EVERY_MS = 60_000  # funding.rate is pushed once a minute, mark/index every second


def _dump(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _number(value: Decimal) -> orjson.Fragment:
    """A JSON *number* with the value's exact decimal text (the channel sends numbers)."""
    return orjson.Fragment(format(value, "f"))


def _error(request_id: str, code: int, text: str) -> str:
    return _dump({"id": request_id, "type": "error", "code": code, "data": text})


LOT_USD = Decimal(100)
HOUR_MS = 3_600_000


class KucoinSim(VenueSim):
    name = "kucoin"
    ws_paths = ("/",)  # the live bullet endpoint is wss://ws-api-futures.kucoin.com/
    funding_history_path = FUNDING_HISTORY_PATH

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any:
        """Newest first, the 100 up to ``to``; symbol, from and to are all required."""
        inst = instrument(self, query.get("symbol"))
        if "from" not in query or "to" not in query:
            raise HistoryError("from and to are required")
        rows = settled(inst, int_param(query, "from", 0), int_param(query, "to", 0))[::-1][:100]
        data = [{"symbol": inst.native_symbol, "fundingRate": json_number(r), "timepoint": t} for t, r in rows]
        return {"code": "200000", "data": data}

    # -- generated listings ----------------------------------------------------
    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        coin = "XBT" if spec.base == "BTC" else spec.base
        asset = coin if spec.multiplier == 1 else f"{spec.multiplier}{coin}"
        if canonical_base(asset) != (spec.base, Decimal(spec.multiplier)):
            return None
        unit_price = spec.reference_price * spec.multiplier
        tick = Decimal(1).scaleb(unit_price.adjusted() - 5)
        if spec.group == "USD-inverse":
            if spec.multiplier != 1:
                return None
            kind, quote, settle, size = ContractKind.INVERSE, "USD", coin, Decimal(1)
        elif spec.group in ("USDT", "USDC"):
            lot = Decimal(1).scaleb((LOT_USD / unit_price).adjusted())
            kind, quote, settle, size = ContractKind.LINEAR, spec.group, spec.group, lot * spec.multiplier
        else:
            return None
        symbol = f"{asset}{quote}M"
        inst = make_instrument(cls.name, symbol, asset, quote, settle, kind, size, tick, spec.funding_interval_h)
        volume = spec.volume_24h_quote
        if volume is None:
            return inst
        return with_open_interest(replace_struct(inst, volume_24h_quote=volume), nominal_price(tick))

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        rows = [_contract_row(i) for i in instruments if i.venue == self.name]
        return {Kucoin.instrument_paths[0]: {"code": "200000", "data": rows}}

    def rest_routes(self) -> dict[str, RestHandler]:
        routes = super().rest_routes()
        routes["/api/v1/bullet-public"] = self._bullet
        return routes

    async def _bullet(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        server = {
            "endpoint": f"ws://{request.host}/{self.name}/",
            "encrypt": False,
            "protocol": "websocket",
            "pingInterval": 18000,
            "pingTimeout": 10000,
        }
        body = {"code": "200000", "data": {"token": uuid.uuid4().hex, "instanceServers": [server]}}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def on_open(self, session: SimSession) -> list[Frame]:
        # The welcome id echoes the client's connectId.
        return [_dump({"id": session.query.get("connectId", uuid.uuid4().hex), "type": "welcome"})]

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            return [_error(uuid.uuid4().hex, 400, f"Unrecognized token: {exc}")]
        if not isinstance(request, dict):
            return [_error(uuid.uuid4().hex, 400, "invalid request")]
        request_id = str(request.get("id", ""))
        kind = request.get("type")
        if kind == "ping":
            return [_dump({"id": request_id, "type": "pong", "timestamp": time.time_ns() // 1000})]
        if kind not in ("subscribe", "unsubscribe"):
            return [_error(request_id, 400, f"unsupported type {kind!r}")]
        channel, _, symbols = str(request.get("topic", "")).partition(":")
        topic_kind = _KINDS.get(channel)
        if topic_kind is None or not symbols:
            return [_error(request_id, 404, "topic does not exist")]
        for symbol in symbols.split(","):
            # Like the venue: an unknown symbol is acknowledged and then silent.
            if symbol in self.by_native:
                pair = (topic_kind, symbol)
                if kind == "subscribe":
                    session.subscriptions.add(pair)
                else:
                    session.subscriptions.discard(pair)
        return [_dump({"id": request_id, "type": "ack"})] if request.get("response") else []

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        sequence = session.next_seq(inst.native_symbol)
        data = {
            "symbol": inst.native_symbol,
            "sequence": sequence,
            "bestBidSize": to_contracts(inst, quote.bid_size, quote.bid),
            "bestBidPrice": format(quote.bid, "f"),
            "bestAskPrice": format(quote.ask, "f"),
            "bestAskSize": to_contracts(inst, quote.ask_size, quote.ask),
            "ts": quote.ts_ms * 1_000_000,
        }
        topic = f"{TICKER}:{inst.native_symbol}"
        return [_dump({"topic": topic, "type": "message", "subject": "tickerV2", "sn": sequence, "data": data})]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        topic = f"{INSTRUMENT}:{inst.native_symbol}"
        frames: list[Frame] = self._settlement(session, inst, funding)
        last_rate_key = f"funding.rate:{inst.native_symbol}"
        if funding.ts_ms - session.state.get(last_rate_key, -FUNDING_RATE_EVERY_MS) >= FUNDING_RATE_EVERY_MS:
            session.state[last_rate_key] = funding.ts_ms
            rate = {"granularity": 60000, "fundingRate": _number(funding.rate), "timestamp": funding.ts_ms}
            frames.append(_dump({"topic": topic, "type": "message", "subject": "funding.rate", "data": rate}))
        mark = {
            "granularity": 1000,
            "indexPrice": _number(funding.index),
            "markPrice": _number(funding.mark),
            "timestamp": funding.ts_ms,
        }
        frames.append(_dump({"topic": topic, "type": "message", "subject": "mark.index.price", "data": mark}))
        return frames

    @staticmethod
    def _settlement(session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        """When a funding time passes, the venue pushes the settled rate with the interval as granularity."""
        key = f"settles_at:{inst.native_symbol}"
        previous = session.state.get(key)
        session.state[key] = funding.next_funding_ms
        if previous is None or previous == funding.next_funding_ms:
            return []
        settled = {
            "granularity": (inst.funding_interval_h or 8) * HOUR_MS,
            "fundingRate": _number(funding.rate * 2),  # not the current rate: clients must ignore it
            "timestamp": previous,
        }
        topic = f"{INSTRUMENT}:{inst.native_symbol}"
        return [_dump({"topic": topic, "type": "message", "subject": "funding.rate", "data": settled})]


def _contract_row(inst: Instrument) -> dict[str, Any]:
    """One ``contracts/active`` row; numbers are Decimals (JSON numbers on the wire, exact)."""
    inverse = inst.kind is ContractKind.INVERSE
    asset = inst.native_symbol.removesuffix(f"{inst.quote}M")
    _, prefix = canonical_base(asset)
    tick = inst.tick_size or Decimal("0.0001")
    volume = inst.volume_24h_quote
    hours = inst.funding_interval_h or 8
    mark = nominal_price(inst.tick_size)
    return {
        "symbol": inst.native_symbol,
        "rootSymbol": "XBT" if inverse else inst.quote,
        "type": PERPETUAL,
        "firstOpenDate": 1585555200000,
        "expireDate": None,
        "settleDate": None,
        "baseCurrency": asset,
        "quoteCurrency": inst.quote,
        "settleCurrency": inst.settle,
        "maxOrderQty": 1000000,
        "maxPrice": Decimal(1_000_000),
        "lotSize": 1,
        "tickSize": tick,
        "indexPriceTickSize": tick,
        "multiplier": -1 if inverse else inst.contract_size / prefix,
        "initialMargin": Decimal("0.02"),
        "maintainMargin": Decimal("0.01"),
        "maxRiskLimit": 100000,
        "minRiskLimit": 100000,
        "riskStep": 50000,
        "makerFeeRate": Decimal("0.0002"),
        "takerFeeRate": Decimal("0.0006"),
        "takerFixFee": Decimal("0.0"),
        "makerFixFee": Decimal("0.0"),
        "settlementFee": None,
        "isDeleverage": True,
        "isQuanto": False,
        "isInverse": inverse,
        "markMethod": "FairPrice",
        "fairMethod": "FundingRate",
        "status": "Open",
        "fundingFeeRate": Decimal("0.0001"),
        "predictedFundingFeeRate": None,
        "fundingRateGranularity": hours * HOUR_MS,
        # Lots (strings on the wire), valued at markPrice; none for a contract without a volume.
        "openInterest": str(open_contracts(inst, mark)) if volume is not None else None,
        "markPrice": mark,
        # Linear turnover is quote currency; inverse turnover is coin, its volume 1-USD lots.
        "turnoverOf24h": (Decimal(0) if inverse else volume) if volume is not None else None,
        "volumeOf24h": (volume if inverse else Decimal(0)) if volume is not None else None,
        "nextFundingRateTime": 8192636,
        "maxLeverage": 75,
        "supportCross": True,
    }


SIM = KucoinSim
