"""Bybit v5 simulator: /v5/public/linear and /v5/public/inverse, snapshot then deltas.

Per subscription the first ``orderbook.1`` and ``tickers`` frame is a snapshot,
later ones are deltas: a book side that did not change is an empty list (on
some ticks one side is deliberately held still so clients meet that case), a
moved level is sent as a "0"-size deletion plus the new level, and ticker deltas
carry only the fields that changed. Acks and refusals follow the live wire
(``args size >10``, ``error:handler not found,topic:…``,
``error:already subscribed,topic:…``).

Generated listings: USDT perps ``{asset}USDT`` (``1000PEPEUSDT``), USDC perps
``{asset}PERP`` (``BTCPERP``), inverse ``{base}USD``; instruments-info and the
all-symbol tickers per category, as the venue's REST API answers them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import orjson

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
from ingest.simulator.funding_history import HistoryError, Settled, instrument, int_param
from ingest.simulator.listing_helpers import (
    funding_limits,
    nominal_price,
    open_contracts,
    open_units,
    plain,
    with_funding_limits,
    with_open_interest,
    with_unit_open_interest,
)
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import canonical_base, make_instrument
from ingest.venues.bybit import FUNDING_HISTORY_PATH, INVERSE_LISTING, INVERSE_TICKERS, LINEAR_LISTING, LINEAR_TICKERS
from schemas.market import ContractKind, Instrument

_CHANNELS = {"orderbook.1": BOOK, "tickers": FUNDING}
_PATHS = {"/v5/public/linear": ContractKind.LINEAR, "/v5/public/inverse": ContractKind.INVERSE}
MAX_ARGS = 10

Side = tuple[str, str] | None  # (price, size) as sent


def _text(value: Decimal) -> str:
    return format(value, "f")


def _dump(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _side_delta(old: Side, new: Side) -> list[list[str]]:
    """Delta entries turning ``old`` into ``new``: empty if unchanged, "0" deletes a moved level."""
    if old == new:
        return []
    entries = [[old[0], "0"]] if old is not None and (new is None or new[0] != old[0]) else []
    return entries + ([[new[0], new[1]]] if new is not None else [])


FUNDING_CAP = Decimal("0.02")
"""Funding-rate bound per interval the generated listing publishes (both signs)."""


class BybitSim(VenueSim):
    name = "bybit"
    ws_paths = tuple(_PATHS)
    funding_history_path = FUNDING_HISTORY_PATH

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any:
        """Newest first, at most ``limit`` (<= 200) up to endTime; startTime alone is refused."""
        inst = instrument(self, query.get("symbol"))
        if "startTime" in query and "endTime" not in query:
            raise HistoryError("startTime without endTime")
        limit = min(int_param(query, "limit", 200), 200)
        rows = settled(inst, int_param(query, "startTime", 0), int_param(query, "endTime", 2**62))[::-1][:limit]
        category = query.get("category", "linear")
        listed = [
            {"symbol": inst.native_symbol, "fundingRate": _text(r), "fundingRateTimestamp": str(t)} for t, r in rows
        ]
        return _envelope(category, listed)

    # -- generated listings ----------------------------------------------------
    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        inst = cls._listed(spec)
        return inst if inst is None else with_funding_limits(inst, FUNDING_CAP)

    @classmethod
    def _listed(cls, spec: ListingSpec) -> Instrument | None:
        asset = spec.base if spec.multiplier == 1 else f"{spec.multiplier}{spec.base}"
        if canonical_base(asset) != (spec.base, Decimal(spec.multiplier)):
            return None
        tick = _tick(spec.reference_price * spec.multiplier)
        if spec.group == "USD-inverse":
            if spec.multiplier != 1:
                return None  # inverse contracts are 1 USD of the plain coin
            kind, symbol, quote, settle, size = ContractKind.INVERSE, f"{asset}USD", "USD", asset, Decimal(1)
        elif spec.group in ("USDT", "USDC"):
            suffix = "USDT" if spec.group == "USDT" else "PERP"
            kind, symbol, quote, settle = ContractKind.LINEAR, f"{asset}{suffix}", spec.group, spec.group
            size = Decimal(spec.multiplier)
        else:
            return None
        inst = make_instrument(
            cls.name, symbol, asset, quote, settle, kind, size, tick, funding_interval_h=spec.funding_interval_h
        )
        if spec.volume_24h_quote is None:
            return inst
        inst = msgspec.structs.replace(inst, volume_24h_quote=spec.volume_24h_quote)
        price = nominal_price(inst.tick_size)
        # Linear rows state the open interest's value; inverse rows count 1-USD contracts.
        return with_open_interest(inst, price) if kind is ContractKind.INVERSE else with_unit_open_interest(inst, price)

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        mine = [i for i in instruments if i.venue == self.name]
        linear = [i for i in mine if i.kind is ContractKind.LINEAR]
        inverse = [i for i in mine if i.kind is ContractKind.INVERSE]
        return {
            LINEAR_LISTING: _envelope("linear", [_instrument_row(i) for i in linear], nextPageCursor=""),
            INVERSE_LISTING: _envelope("inverse", [_instrument_row(i) for i in inverse], nextPageCursor=""),
            LINEAR_TICKERS: _envelope("linear", [_ticker_row(i) for i in linear if i.volume_24h_quote is not None]),
            INVERSE_TICKERS: _envelope("inverse", [_ticker_row(i) for i in inverse if i.volume_24h_quote is not None]),
        }

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return [self._reply(session, {}, "", success=False, ret_msg="Failed to decode incoming data")]
        if not isinstance(request, dict):
            return [self._reply(session, {}, "", success=False, ret_msg="error:invalid op")]
        op = request.get("op")
        if op == "ping":
            return [self._reply(session, request, "ping", success=True, ret_msg="pong")]
        if op == "subscribe":
            return [self._subscribe(session, request)]
        if op == "unsubscribe":
            for topic in request.get("args") or []:
                channel, _, symbol = str(topic).rpartition(".")
                session.subscriptions.discard((_CHANNELS.get(channel, ""), symbol))
                # A later subscribe starts over with a snapshot.
                session.state.get("books" if channel == "orderbook.1" else "tickers", {}).pop(symbol, None)
            return [self._reply(session, request, "unsubscribe", success=True, ret_msg="")]
        return [self._reply(session, request, str(op or ""), success=False, ret_msg="error:invalid op")]

    def _subscribe(self, session: SimSession, request: dict[str, Any]) -> Frame:
        args = request.get("args")
        if not isinstance(args, list):
            return self._reply(session, request, "subscribe", success=False, ret_msg="error:args invalid")
        if len(args) > MAX_ARGS:
            return self._reply(session, request, "subscribe", success=False, ret_msg=f"args size >{MAX_ARGS}")
        refusals = []
        for topic in args:
            channel, _, symbol = str(topic).rpartition(".")
            inst = self.by_native.get(symbol)
            kind = _CHANNELS.get(channel)
            # Like the real venue, a symbol on the other kind's socket is unknown here.
            if kind is None or inst is None or inst.kind is not _PATHS.get(session.path):
                refusals.append(f"error:handler not found,topic:{topic}")
            elif (kind, symbol) in session.subscriptions:
                refusals.append(f"error:already subscribed,topic:{topic}")
            else:
                session.subscriptions.add((kind, symbol))
        if refusals:
            return self._reply(session, request, "subscribe", success=False, ret_msg=refusals[0])
        return self._reply(session, request, "subscribe", success=True, ret_msg="")

    @staticmethod
    def _reply(session: SimSession, request: dict[str, Any], op: str, *, success: bool, ret_msg: str) -> str:
        conn_id = session.state.setdefault("conn_id", f"sim-{id(session):x}")
        req_id = request.get("req_id", "")
        return _dump({"success": success, "ret_msg": ret_msg, "conn_id": conn_id, "req_id": req_id, "op": op})

    # -- market data --------------------------------------------------------
    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        symbol = inst.native_symbol
        books: dict[str, tuple[Side, Side]] = session.state.setdefault("books", {})
        bid: Side = (_text(quote.bid), self._qty(inst, quote.bid_size, quote.bid))
        ask: Side = (_text(quote.ask), self._qty(inst, quote.ask_size, quote.ask))
        u = session.next_seq(f"orderbook.1.{symbol}")
        previous = books.get(symbol)
        if previous is None:
            kind, b, a = "snapshot", _side_delta(None, bid), _side_delta(None, ask)
        else:
            bid, ask = self._hold_one_side(u, previous, bid, ask)
            kind, b, a = "delta", _side_delta(previous[0], bid), _side_delta(previous[1], ask)
            b.sort(key=lambda level: -Decimal(level[0]))  # bids descending, asks ascending
            a.sort(key=lambda level: Decimal(level[0]))
        books[symbol] = (bid, ask)
        data = {"s": symbol, "b": b, "a": a, "u": u, "seq": self._cross_seq(session)}
        frame = {"topic": f"orderbook.1.{symbol}", "type": kind, "ts": quote.ts_ms, "data": data}
        return [_dump(frame | {"cts": quote.ts_ms - 2})]

    @staticmethod
    def _hold_one_side(u: int, previous: tuple[Side, Side], bid: Side, ask: Side) -> tuple[Side, Side]:
        """On two ticks out of three keep one side as it was, unless that would cross the book."""
        old_bid, old_ask = previous
        if u % 3 == 0 and old_bid is not None and ask is not None and Decimal(old_bid[0]) < Decimal(ask[0]):
            return old_bid, ask
        if u % 3 == 1 and old_ask is not None and bid is not None and Decimal(bid[0]) < Decimal(old_ask[0]):
            return bid, old_ask
        return bid, ask

    @staticmethod
    def _qty(inst: Instrument, base_qty: Decimal, price: Decimal) -> str:
        if inst.kind is ContractKind.INVERSE:
            return str(to_contracts(inst, base_qty, price))  # whole USD contracts
        return _text(to_venue_qty(inst, base_qty, price))

    @staticmethod
    def _cross_seq(session: SimSession) -> int:
        # Not session.next_seq: gap injection must land on the book's ``u``.
        session.state["cs"] = session.state.get("cs", 310_000_000_000) + 1
        return int(session.state["cs"])

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        symbol = inst.native_symbol
        tickers: dict[str, dict[str, str]] = session.state.setdefault("tickers", {})
        fields = {
            "symbol": symbol,
            "markPrice": _text(funding.mark),
            "indexPrice": _text(funding.index),
            "fundingRate": _text(funding.rate),
            "nextFundingTime": str(funding.next_funding_ms),
            "fundingIntervalHour": str(inst.funding_interval_h or 8),
        }
        previous = tickers.get(symbol)
        if previous is None:
            kind, data = "snapshot", dict(fields)
        else:  # a delta carries only what changed
            kind, data = "delta", {"symbol": symbol} | {k: v for k, v in fields.items() if previous.get(k) != v}
        tickers[symbol] = fields
        frame = {
            "topic": f"tickers.{symbol}",
            "type": kind,
            "data": data,
            "cs": self._cross_seq(session),
            "ts": funding.ts_ms,
        }
        return [_dump(frame)]


def _tick(price: Decimal) -> Decimal:
    """Five significant digits or so, as Bybit's priceScale gives (0.10 at 86,400)."""
    return Decimal(1).scaleb(price.adjusted() - 5)


def _envelope(category: str, rows: list[dict[str, Any]], **extra: str) -> dict[str, Any]:
    result = {"category": category, "list": rows, **extra}
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 1_790_516_400_000}


def _instrument_row(inst: Instrument) -> dict[str, Any]:
    tick = inst.tick_size or Decimal("0.0001")
    inverse = inst.kind is ContractKind.INVERSE
    hours = inst.funding_interval_h or 8
    return {
        "symbol": inst.native_symbol,
        "contractType": "InversePerpetual" if inverse else "LinearPerpetual",
        "status": "Trading",
        "baseCoin": inst.settle if inverse else inst.native_symbol.removesuffix("USDT").removesuffix("PERP"),
        "quoteCoin": inst.quote,
        "launchTime": "1683273600000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(max(0, -tick.adjusted())),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "50.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": _text(tick), "maxPrice": _text(tick * 19_999_998), "tickSize": _text(tick)},
        "lotSizeFilter": {
            "maxOrderQty": "1000000",
            "minOrderQty": "1",
            "qtyStep": "1",
            "postOnlyMaxOrderQty": "1000000",
            "maxMktOrderQty": "200000",
            "minNotionalValue": "0" if inverse else "5",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": hours * 60,
        "settleCoin": inst.settle,
        "copyTrading": "both",
        "upperFundingRate": str(funding_limits(inst, FUNDING_CAP)[0]),
        "lowerFundingRate": str(funding_limits(inst, FUNDING_CAP)[1]),
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"},
        "displayName": "",
        "symbolType": "",
    }


def _ticker_row(inst: Instrument) -> dict[str, Any]:
    """Only the volume is known to the listing; the venue's other ticker fields are plausible constants."""
    assert inst.volume_24h_quote is not None
    volume = _text(inst.volume_24h_quote)
    # Linear: turnover24h is quote coin. Inverse: volume24h counts 1-USD contracts, i.e. USD.
    inverse = inst.kind is ContractKind.INVERSE
    price = nominal_price(inst.tick_size)
    held = open_contracts(inst, price) if inverse else open_units(inst, price)
    return {
        "symbol": inst.native_symbol,
        "markPrice": plain(price),
        "price24hPcnt": "0.0128",
        "openInterest": plain(held),
        "openInterestValue": plain(held / price if inverse else held * price),
        "turnover24h": "0" if inverse else volume,
        "volume24h": volume if inverse else "0",
        "fundingRate": "0.0001",
        "nextFundingTime": "1790524800000",
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        "basis": "",
        "preOpenPrice": "",
        "preQty": "",
        "curPreListingPhase": "",
    }


SIM = BybitSim
