"""CoinDCX USDT-margined perpetual futures over Socket.IO.

Docs: https://docs.coindcx.com/ (Futures End Points, Futures Sockets, FAQ).
Socket.IO v4 on ``wss://stream.coindcx.com``: the runner's client answers the
Engine.IO pings and hands each server event to ``parse`` as ``["<event>", <data>]``
text. Channels are joined one per ``join`` emit with ``{"channelName": ...}``; the
venue never acknowledges a join nor reports an unknown channel (it stays silent).

Every event's ``data`` is ``{"event": ..., "data": "<JSON text>"}``: the market
payload is JSON inside a string and is decoded a second time. Book channels
(``B-BTC_USDT@orderbook@20-futures``) send ``depth-snapshot`` and
``depth-update``; the sides are objects keyed by price (integer-looking keys
come first, so levels are applied by price, never by position), a size "0"
deletes a level, and ``vs`` rises by one per frame per stream, so a skipped
``vs`` is a gap. Book frames name the pair the Binance way (``BTCUSDT``) while
channels and the REST listing use ``B-BTC_USDT``. Sizes are base coin
(``unit_contract_value`` is 1; ``1000PEPE`` sizes count 1000-PEPE units).
Mark price ``mp`` and upcoming funding rate ``efr`` for every pair ride on the
one shared ``currentPrices@futures@rt`` channel, whose updates carry only the
fields that changed; no next funding time is published.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qs

import orjson

from ingest.venues.base import (
    Connection,
    FrameError,
    Parsed,
    Venue,
    canonical_base,
    dec,
    load_json,
    make_funding,
    make_instrument,
    make_quote,
    ms_to_ns,
)
from schemas.market import ContractKind, Instrument

DEPTH = 20
CURRENT_PRICES = "currentPrices@futures@rt"
BOOK_EVENTS = ("depth-snapshot", "depth-update")
PRICE_EVENTS = ("currentPrices@futures#snapshot", "currentPrices@futures#update")
# Socket.IO's CONNECT_ERROR reaches the client as this event; the venue has no error frame of its own.
ERROR_EVENTS = ("connect_error", "error")
# A currentPrices update carrying neither (only last price, volume...) changes nothing we publish.
FUNDING_FIELDS = ("mp", "efr")
MALFORMED = (KeyError, TypeError, IndexError, ValueError, AttributeError)

ACTIVE_PATH = "/exchange/v1/derivatives/futures/data/active_instruments?margin_currency_short_name[]=USDT"
DETAIL_PATH = "/exchange/v1/derivatives/futures/data/instrument?pair={pair}&margin_currency_short_name=USDT"
# There is no bulk details call: one request per pair we list (the active list filters the rest).
LISTED_PAIRS = ("B-BTC_USDT", "B-ETH_USDT", "B-SOL_USDT", "B-1000PEPE_USDT", "B-OMG_USDT")


def frame_symbol(pair: str) -> str:
    """The spelling book frames use for a pair id: ``B-BTC_USDT`` -> ``BTCUSDT``."""
    return pair.removeprefix("B-").replace("_", "")


def book_channel(pair: str) -> str:
    return f"{pair}@orderbook@{DEPTH}-futures"


@dataclass
class _Book:
    bids: dict[Decimal, Decimal]
    asks: dict[Decimal, Decimal]
    vs: int


def _apply(side: dict[Decimal, Decimal], levels: Any) -> None:
    if not isinstance(levels, dict):
        raise FrameError("book side is not an object keyed by price")
    for price_text, size_text in levels.items():
        price, size = dec(price_text), dec(size_text)
        if price is None or size is None:
            raise FrameError(f"empty book level {price_text!r}: {size_text!r}")
        if size == 0:
            side.pop(price, None)
        else:
            side[price] = size


def _trim(side: dict[Decimal, Decimal], best_first: bool) -> None:
    """Updates also move levels outside the subscribed window; keep only the window."""
    if len(side) > DEPTH:
        for price in sorted(side, reverse=best_first)[DEPTH:]:
            del side[price]


def _payload(data: Any) -> Any:
    """The market payload: ``data`` of the event object, a JSON text decoded once more."""
    inner = data.get("data") if isinstance(data, dict) else data
    if isinstance(inner, str | bytes):
        inner = load_json(inner)
    if not isinstance(inner, dict):
        raise FrameError("event payload is not a JSON object")
    return inner


class Coindcx(Venue):
    name = "coindcx"
    transport: ClassVar[str] = "socketio"
    ws_base = "wss://stream.coindcx.com"
    rest_base = "https://api.coindcx.com"
    instrument_paths = (ACTIVE_PATH, *(DETAIL_PATH.format(pair=pair) for pair in LISTED_PAIRS))
    # A probe served 504 book joins, sent in one burst, on one socket.
    max_topics_per_connection = 500
    topics_per_subscribe = 1  # one channel per join emit
    subscribe_interval_s = 0.02
    ping_interval_s: ClassVar[float | None] = None  # Engine.IO ping/pong is the client library's job
    stale_after_s = 30.0  # currentPrices resends every pair at least every ~15 s

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        self._by_frame = {frame_symbol(pair): inst for pair, inst in self.by_native.items()}
        self._books: dict[str, _Book] = {}
        self._prices: dict[str, dict[str, Any]] = {}

    def topics(self, instrument: Instrument) -> list[str]:
        return [book_channel(instrument.native_symbol), CURRENT_PRICES]

    def connections(self, ws_base: str) -> list[Connection]:
        """Book channels split by the cap; the all-pairs price channel is joined once, on the first socket."""
        books = [book_channel(pair) for pair in self.by_native]
        cap = self.max_topics_per_connection
        plans = []
        for n, start in enumerate(range(0, len(books), cap)):
            topics = ([CURRENT_PRICES] if n == 0 else []) + books[start : start + cap]
            plans.append(Connection(f"coindcx-{n}", self.ws_url(ws_base, "default"), tuple(topics)))
        return plans

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        return [orjson.dumps(["join", {"channelName": topic}]).decode() for topic in topics]

    def reset(self) -> None:
        self._books.clear()
        self._prices.clear()

    # -- parsing ----------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        message = load_json(frame)
        if not isinstance(message, list) or not message or not isinstance(message[0], str):
            raise FrameError("expected a Socket.IO event [name, data]")
        event, data = message[0], message[1] if len(message) > 1 else None
        if event in ERROR_EVENTS:
            detail = data.get("message", data) if isinstance(data, dict) else data
            return Parsed(error=f"{event}: {detail}")
        if event not in BOOK_EVENTS and event not in PRICE_EVENTS:
            return Parsed()  # trades, last prices, candles: channels we do not read
        payload = _payload(data)
        try:
            if event in BOOK_EVENTS:
                return self._book(event == BOOK_EVENTS[0], payload, receipt_ts_ns)
            return self._current_prices(event == PRICE_EVENTS[0], payload, receipt_ts_ns)
        except MALFORMED as exc:
            raise FrameError(f"malformed {event} payload: {exc!r}") from exc

    def _book(self, snapshot: bool, payload: dict[str, Any], receipt_ts_ns: int) -> Parsed:
        inst = self._by_frame.get(payload["s"])
        if inst is None or payload.get("pr", "futures") not in ("futures", "f"):
            return Parsed()  # untracked pair, or a spot book ("pr": "spot") sharing the event name
        pair, vs = inst.native_symbol, int(payload["vs"])
        book = self._books.get(pair)
        if snapshot:
            book = self._books[pair] = _Book({}, {}, vs)
        elif book is None:
            return Parsed()  # an update before the first snapshot has nothing to apply to
        elif vs != book.vs + 1:
            del self._books[pair]  # wait for the next snapshot
            return Parsed(gap=f"{pair}: vs {vs} after {book.vs}")
        _apply(book.bids, payload["bids"])
        _apply(book.asks, payload["asks"])
        _trim(book.bids, best_first=True)
        _trim(book.asks, best_first=False)
        book.vs = vs
        bid = max(book.bids) if book.bids else None
        ask = min(book.asks) if book.asks else None
        quote = make_quote(
            inst,
            bid=bid,
            bid_qty=book.bids[bid] if bid is not None else None,
            ask=ask,
            ask_qty=book.asks[ask] if ask is not None else None,
            exchange_ts_ns=ms_to_ns(payload["ts"]),
            receipt_ts_ns=receipt_ts_ns,
            sequence=vs,
        )
        return Parsed(events=[quote])

    def _current_prices(self, snapshot: bool, payload: dict[str, Any], receipt_ts_ns: int) -> Parsed:
        prices = payload["prices"]
        if not isinstance(prices, dict):
            raise FrameError("prices is not an object")
        ts = payload.get("ts")
        out = Parsed()
        for pair, fields in prices.items():
            inst = self.by_native.get(pair)
            if inst is None:
                continue
            if not isinstance(fields, dict):
                raise FrameError(f"prices[{pair!r}] is not an object")
            if snapshot:
                state = self._prices[pair] = dict(fields)
            else:  # omitted fields are unchanged
                state = self._prices.setdefault(pair, {})
                state.update(fields)
                if not any(name in fields for name in FUNDING_FIELDS):
                    continue
            out.events.append(
                make_funding(
                    inst,
                    rate=dec(state.get("efr")),
                    mark=dec(state.get("mp")),
                    exchange_ts_ns=ms_to_ns(ts) if ts is not None else None,
                    receipt_ts_ns=receipt_ts_ns,
                )
            )
        return out

    # -- instruments ------------------------------------------------------
    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        active = listing[ACTIVE_PATH]
        if not isinstance(active, list):
            raise FrameError(f"{ACTIVE_PATH}: expected a list of pair ids")
        instruments = []
        for path in cls.instrument_paths[1:]:
            row = listing[path]["instrument"]
            requested = parse_qs(path.partition("?")[2])["pair"][0]
            # An unknown pair is answered with another pair's details and HTTP 200.
            if row.get("pair") != requested or requested not in active:
                continue
            if row.get("status") != "active" or row.get("kind") != "perpetual" or row.get("is_inverse"):
                continue
            instruments.append(cls._instrument(row))
        return instruments

    @classmethod
    def _instrument(cls, row: dict[str, Any]) -> Instrument:
        # Sizes count units of the prefixed coin (1000PEPE): price_multiplier base units each.
        # unit_contract_value is documented as 1 (sent as 1.0: multiplying would only add a zero).
        _, multiplier = canonical_base(row["underlying_currency_short_name"])
        unit = dec(row.get("unit_contract_value")) or Decimal(1)
        return make_instrument(
            cls.name,
            row["pair"],
            row["underlying_currency_short_name"],
            row["quote_currency_short_name"],
            row["settle_currency_short_name"],
            ContractKind.LINEAR,
            contract_size=multiplier if unit == 1 else multiplier * unit,
            tick_size=dec(row.get("price_increment")),
            funding_interval_h=int(row["funding_frequency"]),
        )


VENUE = Coindcx
