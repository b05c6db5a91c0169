"""Binance USDⓈ-M simulator: combined streams on /public/stream (book) and /market/stream (mark).

Book: one ``<symbol>@bookTicker`` per symbol. Mark and funding: the all-market
``!markPrice@arr@1s`` stream (an array of markPriceUpdate objects; here one per
frame) or the per-symbol ``<symbol>@markPrice@1s``. The REST listing serves
``exchangeInfo``, ``fundingInfo`` (only symbols whose interval is not 8 h, as the
venue lists only adjusted ones) and the all-symbol ``ticker/24hr``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, ListingSpec, SimSession, VenueSim, to_venue_qty
from ingest.simulator.funding_history import Settled, instrument, int_param
from ingest.simulator.listing_helpers import funding_limits, with_funding_limits
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import canonical_base, make_instrument
from ingest.venues.binance import ALL_MARKS, EXCHANGE_INFO, FUNDING_HISTORY_PATH, FUNDING_INFO, TICKER_24H
from schemas.market import ContractKind, Instrument

_KINDS = {"bookTicker": (BOOK, "/public/stream"), "markPrice@1s": (FUNDING, "/market/stream")}
GROUPS = ("USDT", "USDC")  # USDⓈ-M lists no inverse contracts (those are COIN-M, another API)
LISTED_AT_MS = 1_790_516_400_000


def _text(value: Decimal) -> str:
    return format(value, "f")


def tick_for(price: Decimal, digits: int = 6) -> Decimal:
    """A tick giving ``price`` ``digits`` significant digits (0.1 at 86,400; 1e-7 at 0.0112, as Binance)."""
    return Decimal(1).scaleb(price.adjusted() - digits + 1)


FUNDING_CAP = Decimal("0.02")
"""Funding-rate bound per interval the generated listing publishes (both signs)."""


class BinanceSim(VenueSim):
    name = "binance"
    ws_paths = ("/public/stream", "/market/stream")
    funding_history_path = FUNDING_HISTORY_PATH

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any:
        """Ascending; the first ``limit`` (<= 1000) from startTime; neither time: the latest 200."""
        inst = instrument(self, query.get("symbol"))
        limit = min(int_param(query, "limit", 100), 1000)
        now = LISTED_AT_MS * 10  # far future: the window ends at the simulator's clock
        if "startTime" not in query and "endTime" not in query:
            rows = settled(inst, 0, now)[-200:]
        else:
            rows = settled(inst, int_param(query, "startTime", 0), int_param(query, "endTime", now))[:limit]
        return [{"symbol": inst.native_symbol, "fundingRate": _text(rate), "fundingTime": t} for t, rate in rows]

    # -- generated listings ----------------------------------------------------
    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        inst = cls._listed(spec)
        return inst if inst is None or spec.funding_interval_h in (None, 8) else with_funding_limits(inst, FUNDING_CAP)

    @classmethod
    def _listed(cls, spec: ListingSpec) -> Instrument | None:
        if spec.group not in GROUPS:
            return None
        asset = spec.base if spec.multiplier == 1 else f"{spec.multiplier}{spec.base}"
        if canonical_base(asset) != (spec.base, Decimal(spec.multiplier)):
            return None  # no spelling of that multiplier (e.g. 7x)
        inst = make_instrument(
            cls.name,
            f"{asset}{spec.group}",
            asset,
            spec.group,
            spec.group,
            ContractKind.LINEAR,
            contract_size=Decimal(spec.multiplier),
            tick_size=tick_for(spec.reference_price * spec.multiplier),
            funding_interval_h=spec.funding_interval_h,
        )
        return _with_volume(inst, spec.volume_24h_quote)

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        mine = [i for i in instruments if i.venue == self.name]
        return {
            EXCHANGE_INFO: {
                "timezone": "UTC",
                "serverTime": LISTED_AT_MS,
                "futuresType": "U_MARGINED",
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}
                ],
                "exchangeFilters": [],
                "assets": [],
                "symbols": [_symbol_row(i) for i in mine],
            },
            # Only adjusted symbols appear; the rest fund every 8 h.
            FUNDING_INFO: [
                {
                    "symbol": i.native_symbol,
                    "adjustedFundingRateCap": str(funding_limits(i, FUNDING_CAP)[0]),
                    "adjustedFundingRateFloor": str(funding_limits(i, FUNDING_CAP)[1]),
                    "fundingIntervalHours": i.funding_interval_h,
                    "disclaimer": False,
                }
                for i in mine
                if i.funding_interval_h not in (None, 8)
            ],
            TICKER_24H: [_ticker_row(i) for i in mine if i.volume_24h_quote is not None],
        }

    # -- WebSocket --------------------------------------------------------------
    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return [orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}).decode()]
        if not isinstance(request, dict) or request.get("method") != "SUBSCRIBE":
            return [orjson.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": None}).decode()]
        lower = {native.lower(): native for native in self.by_native}
        for stream in request.get("params", []):
            if stream == ALL_MARKS and session.path == "/market/stream":
                session.state["all_marks"] = True
                session.subscriptions.update((FUNDING, native) for native in self.by_native)
                continue
            symbol, _, channel = stream.partition("@")
            kind_path = _KINDS.get(channel)
            # Like the real venue: a stream on the wrong path, or for an unknown
            # symbol, is acknowledged and then silent.
            if kind_path and kind_path[1] == session.path and symbol in lower:
                session.subscriptions.add((kind_path[0], lower[symbol]))
        return [orjson.dumps({"result": None, "id": request.get("id")}).decode()]

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        data = {
            "e": "bookTicker",
            "u": session.next_seq(inst.native_symbol),
            "s": inst.native_symbol,
            "b": _text(quote.bid),
            "B": _text(to_venue_qty(inst, quote.bid_size, quote.bid)),
            "a": _text(quote.ask),
            "A": _text(to_venue_qty(inst, quote.ask_size, quote.ask)),
            "T": quote.ts_ms - 2,
            "E": quote.ts_ms,
        }
        return [orjson.dumps({"stream": f"{inst.native_symbol.lower()}@bookTicker", "data": data}).decode()]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        data = {
            "e": "markPriceUpdate",
            "E": funding.ts_ms,
            "s": inst.native_symbol,
            "p": _text(funding.mark),
            "P": _text(funding.mark),
            "i": _text(funding.index),
            "r": _text(funding.rate),
            "T": funding.next_funding_ms,
        }
        if session.state.get("all_marks"):
            return [orjson.dumps({"stream": ALL_MARKS, "data": [data]}).decode()]
        return [orjson.dumps({"stream": f"{inst.native_symbol.lower()}@markPrice@1s", "data": data}).decode()]


def _with_volume(inst: Instrument, volume: Decimal | None) -> Instrument:
    if volume is None:
        return inst
    return msgspec.structs.replace(inst, volume_24h_quote=volume)


def _symbol_row(inst: Instrument) -> dict[str, Any]:
    tick = inst.tick_size or Decimal("0.0001")
    asset = inst.native_symbol.removesuffix(inst.quote)
    step = "0.001" if inst.contract_size == 1 and tick < 1 and tick.adjusted() > -3 else "1"
    return {
        "symbol": inst.native_symbol,
        "pair": inst.native_symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": asset,
        "quoteAsset": inst.quote,
        "marginAsset": inst.settle,
        "pricePrecision": max(0, -tick.adjusted()),
        "quantityPrecision": 3 if step == "0.001" else 0,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _text(tick),
                "maxPrice": _text(tick * 10**9),
                "tickSize": _text(tick),
            },
            {"filterType": "LOT_SIZE", "stepSize": step, "minQty": step, "maxQty": "1000000"},
            {"filterType": "MARKET_LOT_SIZE", "stepSize": step, "minQty": step, "maxQty": "100000"},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSets": ["GRID", "COPY"],
    }


def _ticker_row(inst: Instrument) -> dict[str, Any]:
    assert inst.volume_24h_quote is not None
    return {
        "symbol": inst.native_symbol,
        "priceChange": "0",
        "priceChangePercent": "0.000",
        "quoteVolume": _text(inst.volume_24h_quote),
        "openTime": LISTED_AT_MS - 86_400_000,
        "closeTime": LISTED_AT_MS,
        "count": 1_000_000,
    }


SIM = BinanceSim
