"""BitMEX simulator: one socket on /realtime, table diffing for ``quote`` and ``instrument``.

Like the venue: a welcome frame on connect, one ack per subscribed topic, a
``partial`` image before the first ``insert`` (quote) or ``update`` (instrument,
changed fields only), text ``ping`` answered with ``pong``. Prices and sizes are
JSON numbers; sizes are whole contracts. BitMEX tables carry no sequence
numbers, so gap injection has nothing to skip here.

Generated listings: ``/api/v1/instrument/active`` rows for linear USDT perpetuals
(``<underlying>USDT``, ``XBT`` for BTC, ``1000PEPE``-style underlyings for prefixed
bases) and the one inverse perpetual, XBTUSD. BitMEX's other USD perpetuals are quanto
(ETHUSD, margined in XBT), which ingest does not track, and it lists no USDC perpetuals.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from ingest.simulator.base import BOOK, FUNDING, Frame, ListingSpec, SimSession, VenueSim, to_contracts
from ingest.simulator.funding_history import HistoryError, Settled, instrument, int_param, json_number
from ingest.simulator.listing_helpers import (
    next_funding_ms,
    nominal_price,
    number,
    open_contracts,
    prefixed,
    tick_for,
    with_open_interest,
)
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import FrameError, canonical_base, iso_to_ns, make_instrument
from ingest.venues.bitmex import FUNDING_HISTORY_PATH, PERPETUAL, Bitmex
from schemas.market import ContractKind, Instrument

_encode = msgspec.json.Encoder(decimal_format="number").encode
_TABLES = {"quote": BOOK, "instrument": FUNDING}
_QUOTE_TYPES = {
    "timestamp": "timestamp",
    "symbol": "symbol",
    "bidSize": "long",
    "bidPrice": "float",
    "askPrice": "float",
    "askSize": "long",
}
_INSTRUMENT_TYPES = {
    "symbol": "symbol",
    "state": "symbol",
    "typ": "symbol",
    "fundingTimestamp": "timestamp",
    "fundingInterval": "timestamp",
    "fundingRate": "float",
    "indicativeFundingRate": "float",
    "markPrice": "float",
    "indicativeSettlePrice": "float",
    "timestamp": "timestamp",
}


def _json(value: Any) -> str:
    return _encode(value).decode()


def _num(value: Decimal) -> Decimal:
    """Same value without an exponent, so the JSON number reads like the venue's (86400, not 8.64E+4)."""
    return Decimal(format(value, "f"))


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC).replace(microsecond=ms % 1000 * 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _interval(hours: int | None) -> str:
    return f"2000-01-01T{hours or 8:02d}:00:00.000Z"


def _error(message: str, request: Any) -> str:
    return _json({"status": 400, "error": message, "meta": {}, "request": request})


class BitmexSim(VenueSim):
    name = "bitmex"
    ws_paths = ("/realtime",)
    funding_history_path = FUNDING_HISTORY_PATH

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any:
        """``count`` (<= 500) rows from startTime (ISO), oldest first unless ``reverse=true``."""
        inst = instrument(self, query.get("symbol"))
        try:
            start = iso_to_ns(query["startTime"]) // 1_000_000 if "startTime" in query else 0
            end = iso_to_ns(query["endTime"]) // 1_000_000 if "endTime" in query else 2**62
        except FrameError as exc:
            raise HistoryError(str(exc)) from exc
        rows = settled(inst, start, end)
        rows = (rows[::-1] if query.get("reverse") == "true" else rows)[: min(int_param(query, "count", 100), 500)]
        hours = inst.funding_interval_h or 8
        return [
            {
                "timestamp": _iso(t),
                "symbol": inst.native_symbol,
                "fundingInterval": _interval(hours),
                "fundingRate": json_number(rate),
                "fundingRateDaily": json_number(rate * 24 / hours),
            }
            for t, rate in rows
        ]

    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        if spec.group == "USD-inverse":
            if spec.base != "BTC" or spec.multiplier != 1:
                return None
            # XBTUSD: one contract is 1 USD (multiplier / underlyingToSettleMultiplier).
            inst = make_instrument(
                cls.name, "XBTUSD", "XBT", "USD", "XBT", ContractKind.INVERSE, Decimal(1), Decimal("0.1"),
                spec.funding_interval_h,
            )  # fmt: skip
        elif spec.group == "USDT":
            underlying = prefixed(spec.base, spec.multiplier)
            if underlying is None:
                return None
            underlying = "XBT" if underlying == "BTC" else underlying
            price = spec.reference_price * spec.multiplier
            contract = Decimal(spec.multiplier) / _position_multiplier(price)
            inst = make_instrument(
                cls.name, f"{underlying}USDT", underlying, "USDT", "USDT", ContractKind.LINEAR, contract,
                tick_for(price), spec.funding_interval_h,
            )  # fmt: skip
        else:
            return None  # no USDC perpetuals
        inst = msgspec.structs.replace(inst, volume_24h_quote=spec.volume_24h_quote)
        return with_open_interest(inst, nominal_price(inst.tick_size))

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        rows = [_listing_row(i) for i in instruments if i.venue == self.name]
        return {Bitmex.instrument_paths[0]: rows}

    def on_open(self, session: SimSession) -> list[Frame]:
        welcome = {
            "info": "Welcome to the BitMEX Realtime API.",
            "version": "2.0.0",
            "timestamp": _iso(1_790_516_400_000),
            "docs": "https://www.bitmex.com/app/wsAPI",
            "heartbeatEnabled": False,
            "limit": {},
            "appName": "ws-feedhandler-sim",
        }
        return [_json(welcome)]

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        if frame in ("ping", b"ping"):
            return ["pong"]
        try:
            request = msgspec.json.decode(frame)
        except msgspec.DecodeError:
            return [_error("Unable to parse request.", None)]
        if not isinstance(request, dict) or request.get("op") != "subscribe":
            return [_error("Unknown or unsupported op.", request)]
        args = request.get("args", [])
        replies: list[Frame] = []
        for topic in [args] if isinstance(args, str) else args:
            table, _, symbol = str(topic).partition(":")
            if table not in _TABLES:
                replies.append(_error(f"Unknown table: {table}", request))
            elif symbol not in self.by_native:
                replies.append(_error(f"Unknown or expired symbol: {symbol}", request))
            else:
                session.subscriptions.add((_TABLES[table], symbol))
                replies.append(_json({"success": True, "subscribe": topic, "request": request}))
        return replies

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        row = {
            "timestamp": _iso(quote.ts_ms),
            "symbol": inst.native_symbol,
            "bidSize": to_contracts(inst, quote.bid_size, quote.bid),
            "bidPrice": _num(quote.bid),
            "askPrice": _num(quote.ask),
            "askSize": to_contracts(inst, quote.ask_size, quote.ask),
        }
        key = f"quote:{inst.native_symbol}"
        if key not in session.state:
            session.state[key] = True
            return [_partial("quote", [], _QUOTE_TYPES, inst.native_symbol, row)]
        return [_json({"table": "quote", "action": "insert", "data": [row]})]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        row: dict[str, Any] = {
            "symbol": inst.native_symbol,
            "fundingTimestamp": _iso(funding.next_funding_ms),
            "fundingInterval": _interval(inst.funding_interval_h),
            "fundingRate": _num(funding.rate),
            "indicativeFundingRate": _num(funding.rate),
            "markPrice": _num(funding.mark),
            "indicativeSettlePrice": _num(funding.index),
        }
        key = f"instrument:{inst.native_symbol}"
        last: dict[str, Any] | None = session.state.get(key)
        session.state[key] = row
        if last is None:
            image = {**row, "state": "Open", "typ": "FFWCSX", "timestamp": _iso(funding.ts_ms)}
            return [_partial("instrument", ["symbol"], _INSTRUMENT_TYPES, inst.native_symbol, image)]
        # Updates carry the key and the fields that changed, plus the new timestamp.
        changed = {k: v for k, v in row.items() if k == "symbol" or last.get(k) != v}
        changed["timestamp"] = _iso(funding.ts_ms)
        return [_json({"table": "instrument", "action": "update", "data": [changed]})]


def _partial(table: str, keys: list[str], types: dict[str, str], symbol: str, row: dict[str, Any]) -> str:
    frame = {
        "table": table,
        "action": "partial",
        "keys": keys,
        "types": types,
        "foreignKeys": {"symbol": "instrument"} if table == "quote" else {},
        "attributes": {"timestamp": "sorted", "symbol": "grouped"} if table == "quote" else {"symbol": "unique"},
        "filter": {"symbol": symbol},
        "data": [row],
    }
    return _json(frame)


SIM = BitmexSim


def _position_multiplier(price: Decimal) -> Decimal:
    """``underlyingToPositionMultiplier``: contracts per underlying unit, so one contract is worth
    a few cents to a dollar (XBTUSDT 1e6, ETHUSDT 1e5, SOLUSDT 1e4, JTOUSDT 1)."""
    return Decimal(10) ** min(6, max(0, price.adjusted() + 2))


def _listing_row(inst: Instrument) -> dict[str, Any]:
    """One ``instrument/active`` row as BitMEX publishes it (JSON numbers; fields as in the live API)."""
    root = inst.native_symbol.removesuffix("USDT").removesuffix("USD")
    price = nominal_price(inst.tick_size)
    hours = inst.funding_interval_h or 8
    volume = inst.volume_24h_quote
    row: dict[str, Any] = {
        "symbol": inst.native_symbol,
        "rootSymbol": root,
        "state": "Open",
        "typ": PERPETUAL,
        "listing": "2024-03-01T04:00:00.000Z",
        "front": "2024-03-01T04:00:00.000Z",
        "underlying": root,
        "quoteCurrency": inst.quote,
        "reference": "BMEX",
        "maxOrderQty": 1_000_000_000 if inst.kind is ContractKind.LINEAR else 10_000_000,
        "tickSize": None if inst.tick_size is None else number(inst.tick_size),
        "initMargin": Decimal("0.02"),
        "maintMargin": Decimal("0.01"),
        "fundingPremiumSymbol": f".{inst.native_symbol}PI8H",
        "fundingTimestamp": _iso(next_funding_ms(hours)),
        "fundingInterval": _interval(hours),
        "fundingRate": Decimal("0.0001"),
        "indicativeFundingRate": Decimal("0.0001"),
        "lastPrice": price,
        "markPrice": price,
        "indicativeSettlePrice": price,
        "foreignNotional24h": None if volume is None else number(volume),
        "openInterest": None if volume is None else int(open_contracts(inst, price)),
        "homeNotional24h": None if volume is None else number((volume / price).quantize(Decimal(1))),
        "timestamp": _iso(1_790_516_400_000),
    }
    if inst.kind is ContractKind.INVERSE:
        row |= {
            "positionCurrency": "USD",
            "lotSize": 100,
            "multiplier": -100_000_000,
            "settlCurrency": "XBt",
            "underlyingToSettleMultiplier": -100_000_000,
            "isQuanto": False,
            "isInverse": True,
        }
    else:
        _, prefix = canonical_base(root)
        position_multiplier = prefix / inst.contract_size
        row |= {
            "positionCurrency": root,
            "lotSize": 100,
            "multiplier": number(Decimal(1_000_000) / position_multiplier),
            "settlCurrency": "USDt",
            "underlyingToPositionMultiplier": number(position_multiplier),
            "quoteToSettleMultiplier": 1_000_000,
            "isQuanto": False,
            "isInverse": False,
        }
    return row
