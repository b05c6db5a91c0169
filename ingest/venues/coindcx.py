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
deletes a level, and ``vs`` rises by one per frame per stream. A skipped ``vs``
loses that one book only: its quotes are withheld until its next
``depth-snapshot``, the pair is named in ``Parsed.resyncs``, and its one channel
is left and re-joined (a join starts with a snapshot); the socket, carrying up
to 500 other books, stays up. Book
frames name the pair the Binance way (``BTCUSDT``) while channels and the REST
listing use ``B-BTC_USDT``. Sizes are base coin
(``unit_contract_value`` is 1; ``1000PEPE`` sizes count 1000-PEPE units).
Mark price ``mp`` and upcoming funding rate ``efr`` for every pair ride on the
one shared ``currentPrices@futures@rt`` channel, whose updates carry only the
fields that changed; no next funding time is published. Every perpetual relays
Binance USD-M's book and funding ([AO]); the funding interval is the pair's own
``funding_frequency`` (hours: 1, 4 or 8, as Binance's), read from the listing,
which ingest refreshes hourly, so a live interval change is picked up there.

Listing: ``active_instruments`` names every active pair, then one ``instrument``
details GET per pair (there is no bulk call), paced under the documented limit.
Neither carries 24 h volume or open interest, and no other public call lists them
(https://docs.coindcx.com/#futures-end-points): ``volume_24h_quote`` and
``open_interest_quote`` stay None.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import aiohttp
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
from plumbing.errors import RetryableError
from schemas.market import ContractKind, Instrument

log = logging.getLogger(__name__)

DEPTH = 20
CURRENT_PRICES = "currentPrices@futures@rt"
BOOK_EVENTS = ("depth-snapshot", "depth-update")
PRICE_EVENTS = ("currentPrices@futures#snapshot", "currentPrices@futures#update")
# Socket.IO's CONNECT_ERROR reaches the client as this event; the venue has no error frame of its own.
ERROR_EVENTS = ("connect_error", "error")
# A currentPrices update carrying neither (only last price, volume...) changes nothing we publish.
FUNDING_FIELDS = ("mp", "efr")
# Updates (500 ms apart) a book may wait for its next snapshot before the socket is re-joined.
SNAPSHOT_WAIT_FRAMES = 240
MALFORMED = (KeyError, TypeError, IndexError, ValueError, AttributeError)

ACTIVE_PATH = "/exchange/v1/derivatives/futures/data/active_instruments?margin_currency_short_name[]=USDT"
DETAIL_PATH = "/exchange/v1/derivatives/futures/data/instrument?pair={pair}&margin_currency_short_name=USDT"
# The venue lists its pairs in one call (Futures End Points, "Get active instruments") but has
# no bulk details call ("Get instrument details" takes one pair): one GET per active pair, paced
# under the documented REST limit "16/sec, 960/min" (docs.coindcx.com FAQ, General API, 1.).
DETAIL_REQUESTS_PER_S = 15.0
DETAIL_CONCURRENCY = 4
DETAIL_RETRY_PAUSE_S = 1.0


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
    instrument_paths = (ACTIVE_PATH,)
    """The pair list; each pair's details path (``DETAIL_PATH``) joins it in the listing file."""
    listing_time_s: ClassVar[float] = 90.0
    """A whole listing takes one paced GET per pair: ~450 pairs at 15/s is 30 s, so ingest's
    listing fetch gives this venue up to 90 s (``ingest.listings.venue_policy``)."""
    # No documented socket limits. A probe ([AO] coindcx/websocket.md) served 504 book joins,
    # sent in one burst, on one socket: 500 books per socket, the all-pairs price channel once.
    max_topics_per_connection = 500
    topics_per_subscribe = 1  # one channel per join emit (docs: "join" {"channelName": ...})
    subscribe_interval_s = 0.02  # no documented emit rate; 50 joins/s, 10 s for 500 books
    ping_interval_s: ClassVar[float | None] = None  # Engine.IO ping/pong is the client library's job
    stale_after_s = 30.0  # currentPrices resends every pair at least every ~15 s

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        self._by_frame = {frame_symbol(pair): inst for pair, inst in self.by_native.items()}
        self._books: dict[str, _Book] = {}
        self._waiting: dict[str, int] = {}
        """Updates seen per pair that has no book (before its first or next snapshot)."""
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

    @staticmethod
    def _rejoin(pair: str) -> list[str]:
        channel = {"channelName": book_channel(pair)}
        return [orjson.dumps(["leave", channel]).decode(), orjson.dumps(["join", channel]).decode()]

    def reset(self) -> None:
        self._books.clear()
        self._waiting.clear()
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
            self._waiting.pop(pair, None)
        elif book is None:
            # An update before the (next) snapshot has nothing to apply to. Should the stream
            # stop sending snapshots, only a re-join brings one: give up on the socket then.
            waited = self._waiting[pair] = self._waiting.get(pair, 0) + 1
            if waited > SNAPSHOT_WAIT_FRAMES:
                return Parsed(gap=f"{pair}: no depth-snapshot in {SNAPSHOT_WAIT_FRAMES} updates")
            return Parsed()
        elif vs != book.vs + 1:
            # A lost diff makes this book unknowable until its next snapshot: withhold its quotes
            # till then and keep the socket. Leaving and re-joining the one channel brings the
            # snapshot a join always starts with, sooner than the stream's own next one.
            del self._books[pair]
            return Parsed(resyncs=[pair], replies=self._rejoin(pair))
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
    async def fetch_listing(cls, http: aiohttp.ClientSession, rest_base: str) -> bytes:
        """The active pair list, then every pair's details, each response verbatim under its path.

        A pair whose details cannot be fetched (after one retry) is left out of this listing
        and named in the log; ``parse_instruments`` counts it too. The next refresh retries it.
        """
        active_body = await _get(http, rest_base + ACTIVE_PATH)
        pairs = load_json(active_body)
        if not isinstance(pairs, list) or not all(isinstance(p, str) for p in pairs):
            raise FrameError(f"{ACTIVE_PATH}: expected a list of pair ids")
        gate = asyncio.Semaphore(DETAIL_CONCURRENCY)

        async def detail(n: int, pair: str) -> tuple[str, bytes | None]:
            path = DETAIL_PATH.format(pair=pair)
            await asyncio.sleep(n / DETAIL_REQUESTS_PER_S)  # start times spaced: the rate limit
            async with gate:
                for attempt in (1, 2):
                    try:
                        return path, await _get(http, rest_base + path)
                    except (RetryableError, aiohttp.ClientError, TimeoutError) as exc:
                        if attempt == 2:
                            log.warning("coindcx listing: details of %s left out (%s)", pair, exc)
                        else:
                            await asyncio.sleep(DETAIL_RETRY_PAUSE_S)
            return path, None

        details = await asyncio.gather(*(detail(n, pair) for n, pair in enumerate(pairs)))
        parts = [orjson.dumps(ACTIVE_PATH) + b":" + active_body]
        parts += [orjson.dumps(path) + b":" + body for path, body in details if body is not None]
        return b"{" + b",".join(parts) + b"}"

    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        active = listing[ACTIVE_PATH]
        if not isinstance(active, list):
            raise FrameError(f"{ACTIVE_PATH}: expected a list of pair ids")
        instruments, missing, mismatched = [], [], []
        for pair in active:
            response = listing.get(DETAIL_PATH.format(pair=pair))
            row = response.get("instrument") if isinstance(response, dict) else None
            if not isinstance(row, dict):
                missing.append(pair)
                continue
            if row.get("pair") != pair:  # an unknown pair is answered with another pair's details
                mismatched.append(pair)
                continue
            if row.get("status") != "active" or row.get("kind") != "perpetual" or row.get("is_inverse"):
                continue
            instruments.append(cls._instrument(row))
        if missing or mismatched:
            log.warning(
                "coindcx listing: %d active pairs without details %s, %d answered for another pair %s: left out",
                len(missing), missing[:5], len(mismatched), mismatched[:5],
            )  # fmt: skip
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


async def _get(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
        if response.status != 200:
            raise RetryableError(f"GET {url}: HTTP {response.status}")
        return await response.read()


# -- funding history ---------------------------------------------------------------------------
# Not backfilled (decision 0023): CoinDCX documents no public funding-history endpoint for its
# futures (https://docs.coindcx.com/#futures-end-points lists current funding only).
FUNDING_HISTORY = None


VENUE = Coindcx
