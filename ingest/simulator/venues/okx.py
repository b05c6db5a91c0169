"""OKX v5 simulator: /ws/v5/public with bbo-tbt, funding-rate and mark-price.

Like the venue: one ack per subscribe argument, error 60018 for an unknown
channel or instrument, text ``ping`` answered by ``pong``, sizes in contracts
(inverse in whole 100/10-USD contracts), funding pushed every 30 s and mark on
every funding tick.

Generated listings: ``{BASE}-USDT-SWAP`` / ``{BASE}-USDC-SWAP`` with a contract
value (``ctVal``) of a power of ten near 1,000 USD (BTC 0.01, PEPE 10,000,000: OKX
never prefixes 1000PEPE), inverse ``{BASE}-USD-SWAP`` of 100 USD (BTC) or 10 USD;
plus ``funding-rate?instId=ANY`` (interval = nextFundingTime - fundingTime) and
the SWAP tickers.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

import orjson
from msgspec.structs import replace as replace_struct

from ingest.simulator.base import (
    BOOK,
    FUNDING,
    Frame,
    ListingSpec,
    SimSession,
    VenueSim,
    to_contracts,
    to_venue_qty,
)
from ingest.simulator.funding_history import Settled, instrument, int_param
from ingest.simulator.listing_helpers import funding_limits, open_contracts, with_funding_limits, with_open_interest
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import make_instrument
from ingest.venues.okx import FUNDING_HISTORY_PATH, FUNDING_RATES, INSTRUMENTS, OPEN_INTEREST, TICKERS
from schemas.market import ContractKind, Instrument

KINDS = {"bbo-tbt": BOOK, "funding-rate": FUNDING, "mark-price": FUNDING}
FUNDING_PUSH_MS = 30_000
LOT = Decimal("0.01")  # linear swaps trade in hundredths of a contract


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _json(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()


def _contracts(inst: Instrument, base_qty: Decimal, price: Decimal) -> Decimal:
    if inst.kind is ContractKind.INVERSE:
        return Decimal(to_contracts(inst, base_qty, price))
    return max(LOT, to_venue_qty(inst, base_qty, price).quantize(LOT, ROUND_DOWN))


def _orders(contracts: Decimal) -> str:
    """A plausible order count at the level (the venue's 4th level element)."""
    return str(min(60, 1 + int(contracts) // 25))


LISTED_AT_MS = 1_790_516_400_000
NEXT_FUNDING_MS = 1_790_524_800_000  # a multiple of 8 h, so of 4 h and 1 h too
CONTRACT_USD = Decimal(1000)


FUNDING_CAP = Decimal("0.02")
"""Funding-rate bound per interval the generated listing publishes (both signs)."""


class OkxSim(VenueSim):
    name = "okx"
    ws_paths = ("/ws/v5/public",)
    funding_history_path = FUNDING_HISTORY_PATH

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any:
        """Newest first, at most ``limit`` (<= 100), strictly between ``before`` and ``after``."""
        inst = instrument(self, query.get("instId"))
        limit = min(int_param(query, "limit", 100), 100)
        after, before = int_param(query, "after", 2**62), int_param(query, "before", -1)
        rows = settled(inst, before + 1, after - 1)[::-1][:limit]
        data = [
            {
                "formulaType": "withRate",
                "fundingRate": _text(rate),
                "fundingTime": str(t),
                "instId": inst.native_symbol,
                "instType": "SWAP",
                "method": "current_period",
                "realizedRate": _text(rate),
            }
            for t, rate in rows
        ]
        return {"code": "0", "msg": "", "data": data}

    # -- generated listings ----------------------------------------------------
    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        inst = cls._listed(spec)
        return inst if inst is None else with_funding_limits(inst, FUNDING_CAP)

    @classmethod
    def _listed(cls, spec: ListingSpec) -> Instrument | None:
        if spec.multiplier != 1:
            return None  # OKX lists PEPE-USDT-SWAP with a large ctVal, never a 1000PEPE
        tick = Decimal(1).scaleb(spec.reference_price.adjusted() - 5)
        if spec.group in ("USDT", "USDC"):
            size = Decimal(1).scaleb((CONTRACT_USD / spec.reference_price).adjusted())
            kind, quote, settle = ContractKind.LINEAR, spec.group, spec.group
        elif spec.group == "USD-inverse":
            size = Decimal(100) if spec.base == "BTC" else Decimal(10)
            kind, quote, settle = ContractKind.INVERSE, "USD", spec.base
        else:
            return None
        native = f"{spec.base}-{quote}-SWAP"
        inst = make_instrument(cls.name, native, spec.base, quote, settle, kind, size, tick, spec.funding_interval_h)
        volume = spec.volume_24h_quote
        if volume is None:
            return inst
        return with_open_interest(replace_struct(inst, volume_24h_quote=volume), _last(inst))

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        mine = [i for i in instruments if i.venue == self.name]
        traded = [i for i in mine if i.volume_24h_quote is not None]
        return {
            INSTRUMENTS: {"code": "0", "msg": "", "data": [_instrument_row(i) for i in mine]},
            FUNDING_RATES: {"code": "0", "msg": "", "data": [_funding_row(i) for i in mine]},
            TICKERS: {"code": "0", "msg": "", "data": [_ticker_row(i) for i in mine if i.volume_24h_quote is not None]},
            OPEN_INTEREST: {"code": "0", "msg": "", "data": [_oi_row(i) for i in traded]},
        }

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        if frame in ("ping", b"ping"):
            return ["pong"]
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return [self._error(session, None, "60012", f"Invalid request: {frame!r}")]
        op = request.get("op") if isinstance(request, dict) else None
        args = request.get("args") if isinstance(request, dict) else None
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list):
            return [self._error(session, None, "60012", f"Invalid request: {frame!r}")]
        return [self._apply(session, request.get("id"), op, arg) for arg in args]

    def _apply(self, session: SimSession, request_id: Any, op: str, arg: Any) -> Frame:
        channel = str(arg.get("channel")) if isinstance(arg, dict) else None
        inst_id = str(arg.get("instId")) if isinstance(arg, dict) else None
        if channel not in KINDS or inst_id not in self.by_native:
            message = (
                f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. "
                "Please use the correct URL, channel and parameters referring to API document."
            )
            return self._error(session, request_id, "60018", message)
        channels: set[tuple[str, str]] = session.state.setdefault("channels", set())
        if op == "subscribe":
            channels.add((channel, inst_id))
        else:
            channels.discard((channel, inst_id))
        # funding-rate and mark-price both count as the FUNDING kind.
        session.subscriptions.clear()
        session.subscriptions.update((KINDS[c], native) for c, native in channels)
        ack: dict[str, Any] = {"event": op, "arg": {"channel": channel, "instId": inst_id}}
        return _json(self._envelope(session, request_id, ack))

    def _error(self, session: SimSession, request_id: Any, code: str, msg: str) -> Frame:
        return _json(self._envelope(session, request_id, {"event": "error", "code": code, "msg": msg}))

    @staticmethod
    def _envelope(session: SimSession, request_id: Any, body: dict[str, Any]) -> dict[str, Any]:
        conn_id: str = session.state.setdefault("conn_id", f"{id(session) & 0xFFFFFFFF:08x}")
        head = {"id": request_id} if request_id is not None else {}
        return {**head, **body, "connId": conn_id}

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        bid_sz = _contracts(inst, quote.bid_size, quote.bid)
        ask_sz = _contracts(inst, quote.ask_size, quote.ask)
        data = {
            "asks": [[_text(quote.ask), _text(ask_sz), "0", _orders(ask_sz)]],
            "bids": [[_text(quote.bid), _text(bid_sz), "0", _orders(bid_sz)]],
            "ts": str(quote.ts_ms),
            "seqId": session.next_seq(inst.native_symbol),
        }
        return [_json({"arg": {"channel": "bbo-tbt", "instId": inst.native_symbol}, "data": [data]})]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        channels: set[tuple[str, str]] = session.state.get("channels", set())
        native = inst.native_symbol
        frames: list[Frame] = []
        last_push: dict[str, int] = session.state.setdefault("funding_pushed_ms", {})
        due = funding.ts_ms - last_push.get(native, funding.ts_ms - FUNDING_PUSH_MS) >= FUNDING_PUSH_MS
        if ("funding-rate", native) in channels and due:
            last_push[native] = funding.ts_ms
            frames.append(self._funding_rate(inst, funding))
        if ("mark-price", native) in channels:
            data = {"instId": native, "instType": "SWAP", "markPx": _text(funding.mark), "ts": str(funding.ts_ms)}
            frames.append(_json({"arg": {"channel": "mark-price", "instId": native}, "data": [data]}))
        return frames

    @staticmethod
    def _funding_rate(inst: Instrument, funding: SimFunding) -> Frame:
        interval_ms = (inst.funding_interval_h or 8) * 3_600_000
        premium = ((funding.mark - funding.index) / funding.index).quantize(Decimal("1e-10"))
        data = {
            "formulaType": "withRate",
            "fundingRate": _text(funding.rate),
            "fundingTime": str(funding.next_funding_ms),
            "impactValue": "",
            "instId": inst.native_symbol,
            "instType": "SWAP",
            "interestRate": "0.0001",
            "maxFundingRate": str(funding_limits(inst, FUNDING_CAP)[0]),
            "method": "current_period",
            "minFundingRate": str(funding_limits(inst, FUNDING_CAP)[1]),
            "nextFundingRate": "",
            "nextFundingTime": str(funding.next_funding_ms + interval_ms),
            "premium": _text(premium),
            "settFundingRate": _text(funding.rate),
            "settState": "settled",
            "ts": str(funding.ts_ms),
        }
        return _json({"arg": {"channel": "funding-rate", "instId": inst.native_symbol}, "data": [data]})


def _instrument_row(inst: Instrument) -> dict[str, Any]:
    linear = inst.kind is ContractKind.LINEAR
    return {
        "instType": "SWAP",
        "instId": inst.native_symbol,
        "uly": f"{inst.base}-{inst.quote}",
        "instFamily": f"{inst.base}-{inst.quote}",
        "category": "1",
        "baseCcy": "",
        "quoteCcy": "",
        "settleCcy": inst.settle,
        "ctVal": _text(inst.contract_size),
        "ctMult": "1",
        "ctValCcy": inst.base if linear else inst.quote,
        "optType": "",
        "stk": "",
        "listTime": "1683189000000",
        "expTime": "",
        "lever": "50",
        "tickSz": _text(inst.tick_size or Decimal("0.0001")),
        "lotSz": "0.01" if linear else "1",
        "minSz": "0.01" if linear else "1",
        "ctType": "linear" if linear else "inverse",
        "alias": "",
        "state": "live",
        "ruleType": "normal",
        "maxLmtSz": "100000000",
        "maxMktSz": "10000",
        "maxTwapSz": "100000000",
        "maxIcebergSz": "100000000",
        "maxTriggerSz": "100000000",
        "maxStopSz": "10000",
        "maxLmtAmt": "20000000",
        "maxMktAmt": "",
        "openType": "",
        "contTdSwTime": "",
        "preMktSwTime": "",
        "groupId": "2",
        "tradeQuoteCcyList": [],
    }


def _funding_row(inst: Instrument) -> dict[str, Any]:
    interval_ms = (inst.funding_interval_h or 8) * 3_600_000
    return {
        "formulaType": "withRate",
        "fundingRate": "0.0001",
        "fundingTime": str(NEXT_FUNDING_MS),
        "impactValue": "",
        "instId": inst.native_symbol,
        "instType": "SWAP",
        "interestRate": "0.0001",
        "maxFundingRate": str(funding_limits(inst, FUNDING_CAP)[0]),
        "method": "current_period",
        "minFundingRate": str(funding_limits(inst, FUNDING_CAP)[1]),
        "nextFundingRate": "",
        "nextFundingTime": str(NEXT_FUNDING_MS + interval_ms),
        "premium": "0",
        "settFundingRate": "0.0001",
        "settState": "settled",
        "ts": str(LISTED_AT_MS),
    }


def _last(inst: Instrument) -> Decimal:
    """The linear ticker's ``last``: a power of ten near the tick's scale (divisions stay exact)."""
    return Decimal(1).scaleb((inst.tick_size or Decimal(1)).adjusted() + 5)


def _oi_row(inst: Instrument) -> dict[str, Any]:
    """One ``public/open-interest`` row: contracts, coin and USD (the venue module reads ``oi``)."""
    contracts = open_contracts(inst, _last(inst))
    value = inst.open_interest_quote or Decimal(0)
    linear = inst.kind is ContractKind.LINEAR
    return {
        "instType": "SWAP",
        "instId": inst.native_symbol,
        "oi": _text(contracts),
        "oiCcy": _text(contracts * inst.contract_size if linear else value / _last(inst)),
        "oiUsd": _text(value),
        "ts": str(LISTED_AT_MS),
    }


def _ticker_row(inst: Instrument) -> dict[str, Any]:
    """Volumes the venue module turns back into exactly ``volume_24h_quote``.

    Linear: ``volCcy24h`` (base) x ``last``; ``last`` is a power of ten near the tick's
    scale so the division is exact. Inverse: ``vol24h`` contracts x contract value.
    """
    assert inst.volume_24h_quote is not None
    if inst.kind is ContractKind.INVERSE:
        contracts, base_volume, last = inst.volume_24h_quote / inst.contract_size, Decimal(0), Decimal(1)
    else:
        last = _last(inst)
        base_volume = inst.volume_24h_quote / last
        contracts = base_volume / inst.contract_size
    return {
        "instType": "SWAP",
        "instId": inst.native_symbol,
        "last": _text(last),
        "lastSz": "1",
        "open24h": _text(last),
        "high24h": _text(last),
        "low24h": _text(last),
        "volCcy24h": _text(base_volume),
        "vol24h": _text(contracts),
        "ts": str(LISTED_AT_MS),
        "sodUtc0": _text(last),
        "sodUtc8": _text(last),
    }


SIM = OkxSim
