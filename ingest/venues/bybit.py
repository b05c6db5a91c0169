"""Bybit v5 public streams: linear (USDT/USDC) and inverse (USD) perpetuals.

Docs: https://bybit-exchange.github.io/docs/v5/ws/connect ,
https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook ,
https://bybit-exchange.github.io/docs/v5/websocket/public/ticker
Linear and inverse contracts live on different sockets (``/v5/public/linear``,
``/v5/public/inverse``); a topic on the wrong one is refused. Both topics are
snapshot-then-delta: ``orderbook.1`` deltas may leave a side empty (unchanged)
and a size "0" deletes a level; ``tickers`` deltas omit unchanged fields. So the
merged state per symbol lives here. Linear sizes are base coin (``1000PEPEUSDT``
counts 1000-PEPE units); inverse sizes are USD contracts.

Limits at whole-market scale (https://bybit-exchange.github.io/docs/v5/ws/connect ,
"How to Subscribe to Topics" and "IP Limits"): public ``args`` may total at most
21,000 characters per connection, so connections are packed by characters (and
at most 500 topics); at most 10 args per subscribe frame (live servers answer
``args size >10``); 500 new connections per 5 min per IP. No message-rate cap is
documented for public subscribes; 10 frames a second keeps a 1,000-topic start
under 10 s.

Sequence skips: ``orderbook.1`` carries ``u``, +1 per update of that symbol's
book. A skipped ``u`` means a missed delta for ONE symbol on a socket that may
carry hundreds, so it is a per-instrument resync (``Parsed.resyncs``), not a
reconnect: the symbol's book is forgotten and its quotes are withheld until
both sides are known again. A level-1 delta side is the whole side (the one
level there is), so a fresh level on each side or the next snapshot (the venue
re-sends one when the book is unchanged for 3 s, same ``u``) completes it.

Listing: ``instruments-info`` returns at most ``limit=1000`` rows per page and a
``nextPageCursor``; further pages are fetched and merged, so a category growing
past 1,000 contracts is never silently cut.

Funding interval: listing ``fundingInterval`` (minutes) per symbol; the
``tickers`` stream carries ``fundingIntervalHour``, which wins when present, so a
live interval change shows before the next hourly listing refresh. 24 h quote
volume: ``/v5/market/tickers`` (all symbols of a category in one GET, optional):
``turnover24h`` for linear (quote coin), ``volume24h`` for inverse (USD contracts).
Open interest from the same rows (https://bybit-exchange.github.io/docs/v5/market/tickers):
linear ``openInterestValue`` (quote coin, the value of ``openInterest`` base coin); inverse
``openInterest`` (1-USD contracts, i.e. USD; its ``openInterestValue`` is in the coin), so
``open_interest_quote`` is quote currency for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode

import aiohttp
import msgspec
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
    open_interest_notional,
)
from ingest.venues.history import HistoryRequest, HistorySpec, Paging, rows_of, settlement
from plumbing.errors import RetryableError
from schemas.funding import FundingSettlement
from schemas.market import ContractKind, Instrument

BOOK = "orderbook.1"
TICKER = "tickers"
KINDS = {"LinearPerpetual": ContractKind.LINEAR, "InversePerpetual": ContractKind.INVERSE}
# A ticker delta carrying none of these changed nothing we publish.
FUNDING_FIELDS = ("fundingRate", "nextFundingTime", "markPrice", "indexPrice", "fundingIntervalHour")

Level = tuple[Decimal, Decimal]
LINEAR_LISTING = "/v5/market/instruments-info?category=linear&limit=1000"
INVERSE_LISTING = "/v5/market/instruments-info?category=inverse&limit=1000"
LINEAR_TICKERS = "/v5/market/tickers?category=linear"
INVERSE_TICKERS = "/v5/market/tickers?category=inverse"
ARGS_CHARS_PER_CONNECTION = 21_000
MAX_PAGES = 10
_encode = msgspec.json.Encoder(decimal_format="number").encode


@dataclass
class _Book:
    """Top of book of one symbol; ``known`` holds the sides whose level we have seen."""

    bid: Level | None = None
    ask: Level | None = None
    u: int = 0
    known: set[str] = field(default_factory=set)


def _levels(raw: Any) -> list[Level]:
    if not isinstance(raw, list):
        raise FrameError("book side is not a list")
    levels = []
    for entry in raw:
        price, size = dec(entry[0]), dec(entry[1])
        if price is None or size is None:
            raise FrameError(f"empty book level {entry!r}")
        levels.append((price, size))
    return levels


def _top(level: Level | None, updates: list[Level]) -> Level | None:
    """Apply level-1 updates in order: a size of 0 deletes that price, any other size is the new top."""
    for price, size in updates:
        if size == 0:
            if level is not None and level[0] == price:
                level = None
        else:
            level = (price, size)
    return level


class Bybit(Venue):
    name = "bybit"
    ws_base = "wss://stream.bybit.com"
    rest_base = "https://api.bybit.com"
    instrument_paths = (LINEAR_LISTING, INVERSE_LISTING, LINEAR_TICKERS, INVERSE_TICKERS)
    optional_instrument_paths = frozenset({LINEAR_TICKERS, INVERSE_TICKERS})  # volumes only
    max_topics_per_connection = 500
    topics_per_subscribe = 10
    subscribe_interval_s = 0.1
    ping_interval_s: ClassVar[float | None] = 20.0
    stale_after_s = 30.0

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        self._books: dict[str, _Book] = {}
        self._tickers: dict[str, dict[str, Any]] = {}

    def topics(self, instrument: Instrument) -> list[str]:
        return [f"{BOOK}.{instrument.native_symbol}", f"{TICKER}.{instrument.native_symbol}"]

    def connections(self, ws_base: str) -> list[Connection]:
        """Each contract kind has its own socket path; instruments packed under both per-connection caps."""
        plans: list[Connection] = []
        for kind in ContractKind:
            groups = [self.topics(inst) for inst in self.by_native.values() if inst.kind is kind]
            url = self.ws_url(ws_base, kind.value)
            for n, topics in enumerate(pack(groups, self.max_topics_per_connection, ARGS_CHARS_PER_CONNECTION)):
                plans.append(Connection(f"bybit-{kind.value}-{n}", url, topics))
        return plans

    def ws_url(self, ws_base: str, kind: str) -> str:
        return f"{ws_base}/v5/public/{kind}"

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        frames = []
        for start in range(0, len(topics), self.topics_per_subscribe):
            args = list(topics[start : start + self.topics_per_subscribe])
            frames.append(orjson.dumps({"req_id": self._next_id("sub"), "op": "subscribe", "args": args}).decode())
        return frames

    def ping_message(self) -> str | None:
        return orjson.dumps({"req_id": self._next_id("ping"), "op": "ping"}).decode()

    def reset(self) -> None:
        """Keep the merged state: both sockets share this instance, so one socket's
        reconnect must not orphan the other's deltas, and every (re)subscription
        starts with a snapshot that replaces the symbol's state anyway."""
        return None

    def _next_id(self, prefix: str) -> str:
        request_id = self.next_request_id()
        return f"{prefix}-{request_id}"

    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        message = load_json(frame)
        if not isinstance(message, dict):
            raise FrameError("expected a JSON object")
        if "topic" not in message:
            return self._control(message)
        topic = message["topic"]
        if not isinstance(topic, str):
            raise FrameError(f"bad topic {topic!r}")
        channel, _, symbol = topic.rpartition(".")
        instrument = self.instrument(symbol)
        if instrument is None:
            return Parsed()  # a symbol we do not track
        try:
            if channel == BOOK:
                return self._book(message, instrument, receipt_ts_ns)
            if channel == TICKER:
                return self._ticker(message, instrument, receipt_ts_ns)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise FrameError(f"malformed {topic} frame: {exc!r}") from exc
        return Parsed()

    @staticmethod
    def _control(message: dict[str, Any]) -> Parsed:
        """Acks, pongs and refusals. Public pongs carry op "ping" and ret_msg "pong"."""
        op, ok, reason = message.get("op"), message.get("success"), str(message.get("ret_msg", ""))
        if op == "subscribe" and (ok is True or reason.startswith("error:already subscribed")):
            return Parsed(subscribed=True)  # a duplicate leaves the first subscription streaming
        if ok is False:
            return Parsed(error=f"{op or 'request'} refused: {reason}")
        return Parsed()

    def _book(self, message: dict[str, Any], inst: Instrument, receipt_ts_ns: int) -> Parsed:
        data, kind = message["data"], message["type"]
        u, bids, asks = int(data["u"]), _levels(data["b"]), _levels(data["a"])
        out = Parsed()
        symbol = inst.native_symbol
        if kind == "snapshot" or u == 1:  # u == 1: the service restarted, overwrite
            book = _Book(bid=_top(None, bids), ask=_top(None, asks), known={"b", "a"})
        elif kind == "delta":
            book = self._books.get(symbol, _Book())
            if book.known and u != book.u + 1:
                # Missed updates of this symbol only: forget both sides until fresh
                # levels (or the next snapshot) refill them; the socket stays up.
                out.resyncs.append(symbol)
                book = _Book()
            if bids:  # an empty side is unchanged
                book.bid = _top(book.bid, bids)
                book.known.add("b")
            if asks:
                book.ask = _top(book.ask, asks)
                book.known.add("a")
        else:
            raise FrameError(f"unknown book message type {kind!r}")
        book.u = u
        self._books[symbol] = book
        if len(book.known) == 2:  # a side may still be genuinely empty (None)
            (bid, bid_qty), (ask, ask_qty) = book.bid or (None, None), book.ask or (None, None)
            ts_ns = ms_to_ns(message["ts"])
            quote = make_quote(
                inst,
                bid=bid,
                bid_qty=bid_qty,
                ask=ask,
                ask_qty=ask_qty,
                exchange_ts_ns=ts_ns,
                receipt_ts_ns=receipt_ts_ns,
                sequence=u,
            )
            out.events.append(quote)
        return out

    def _ticker(self, message: dict[str, Any], inst: Instrument, receipt_ts_ns: int) -> Parsed:
        data, kind = message["data"], message["type"]
        if not isinstance(data, dict):
            raise FrameError("ticker data is not an object")
        if kind == "snapshot":
            state = self._tickers[inst.native_symbol] = dict(data)
        elif kind == "delta":
            state = self._tickers.setdefault(inst.native_symbol, {})
            state.update(data)  # omitted fields are unchanged
            if not any(name in data for name in FUNDING_FIELDS):
                return Parsed()
        else:
            raise FrameError(f"unknown ticker message type {kind!r}")
        next_funding = int(state.get("nextFundingTime") or 0)
        interval = state.get("fundingIntervalHour")
        funding = make_funding(
            inst,
            rate=dec(state.get("fundingRate")),
            next_funding_ts_ns=ms_to_ns(next_funding) if next_funding else None,
            mark=dec(state.get("markPrice")),
            index=dec(state.get("indexPrice")),
            interval_h=int(interval) if interval not in (None, "") else None,
            exchange_ts_ns=ms_to_ns(message["ts"]),
            receipt_ts_ns=receipt_ts_ns,
        )
        return Parsed(events=[funding])

    @classmethod
    async def fetch_listing(cls, http: aiohttp.ClientSession, rest_base: str) -> bytes:
        """The base fetch, plus any further pages of instruments-info (``limit`` is 1000 at most)."""
        raw = await super().fetch_listing(http, rest_base)
        listing = load_json(raw)
        paged = False
        for path in (LINEAR_LISTING, INVERSE_LISTING):
            response, pages = listing[path], 1
            while cursor := _cursor(response):
                if pages >= MAX_PAGES:
                    raise RetryableError(f"{path}: more than {MAX_PAGES} pages")
                page = await _get(http, f"{rest_base}{path}&{urlencode({'cursor': cursor})}")
                listing[path]["result"]["list"] += _result_list(path, page)
                listing[path]["result"]["nextPageCursor"] = _cursor(page)
                response, pages, paged = page, pages + 1, True
        # One merged response per path; numbers were decoded exactly and are written back as numbers.
        return _encode(listing) if paged else raw

    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        volumes = _volumes(listing.get(LINEAR_TICKERS), "turnover24h") | _volumes(
            listing.get(INVERSE_TICKERS), "volume24h"
        )
        depths = _volumes(listing.get(LINEAR_TICKERS), "openInterestValue") | _volumes(
            listing.get(INVERSE_TICKERS), "openInterest"
        )
        instruments = []
        for path in (LINEAR_LISTING, INVERSE_LISTING):
            for row in _result_list(path, listing[path]):
                kind = KINDS.get(row.get("contractType", ""))
                if kind is None or row.get("status") != "Trading":
                    continue  # dated futures, pre-launch and settling contracts
                instrument = cls._instrument(row, kind)
                volume = volumes.get(instrument.native_symbol)
                if volume is not None:
                    instrument = msgspec.structs.replace(instrument, volume_24h_quote=volume)
                instruments.append(_with_open_interest(instrument, depths.get(instrument.native_symbol)))
        return instruments

    @classmethod
    def _instrument(cls, row: dict[str, Any], kind: ContractKind) -> Instrument:
        # Linear sizes count units of the prefixed coin (1000PEPE), so one unit is
        # price_multiplier base units; inverse sizes are 1-USD contracts.
        _, multiplier = canonical_base(row["baseCoin"])
        minutes = int(row.get("fundingInterval") or 0)
        instrument = make_instrument(
            cls.name,
            row["symbol"],
            row["baseCoin"],
            row["quoteCoin"],
            row["settleCoin"],
            kind,
            contract_size=multiplier if kind is ContractKind.LINEAR else Decimal(1),
            tick_size=dec(row.get("priceFilter", {}).get("tickSize")),
            funding_interval_h=minutes // 60 if minutes >= 60 else None,
        )
        # instruments-info publishes each contract's funding-rate bounds per interval.
        upper, lower = dec(row.get("upperFundingRate")), dec(row.get("lowerFundingRate"))
        return msgspec.structs.replace(instrument, funding_cap=upper, funding_floor=lower)


def pack(groups: list[list[str]], max_topics: int, max_chars: int) -> list[tuple[str, ...]]:
    """Split topic groups (one instrument's topics stay together) under a topic and a character cap."""
    packs: list[tuple[str, ...]] = []
    current: list[str] = []
    chars = 0
    for group in groups:
        size = sum(len(t) for t in group)
        if current and (len(current) + len(group) > max_topics or chars + size > max_chars):
            packs.append(tuple(current))
            current, chars = [], 0
        current += group
        chars += size
    if current:
        packs.append(tuple(current))
    return packs


def _cursor(response: dict[str, Any]) -> str:
    return str(response.get("result", {}).get("nextPageCursor") or "")


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
        if response.status != 200:
            raise RetryableError(f"GET {url}: HTTP {response.status}")
        return load_json(await response.read())


def _result_list(path: str, response: Any) -> list[dict[str, Any]]:
    if not isinstance(response, dict) or response.get("retCode") != 0:
        code, message = (
            (response.get("retCode"), response.get("retMsg")) if isinstance(response, dict) else (None, None)
        )
        raise FrameError(f"{path}: retCode {code}: {message}")
    rows = response["result"]["list"]
    if not isinstance(rows, list):
        raise FrameError(f"{path}: result.list is not a list")
    return rows


def _with_open_interest(instrument: Instrument, stated: Decimal | None) -> Instrument:
    """Linear rows state the value (quote coin); inverse rows count 1-USD contracts."""
    if stated is None:
        return instrument
    value = open_interest_notional(instrument, stated, None) if instrument.kind is ContractKind.INVERSE else stated
    return msgspec.structs.replace(instrument, open_interest_quote=value)


def _volumes(response: Any, field_name: str) -> dict[str, Decimal]:
    """One figure per symbol from a tickers response: 24 h volume or open interest (absent in older
    files: none)."""
    if response is None:
        return {}
    volumes = {}
    for row in _result_list("tickers", response):
        volume = dec(row.get(field_name))
        if volume is not None:
            volumes[row["symbol"]] = volume
    return volumes


# -- funding history ---------------------------------------------------------------------------
# GET /v5/market/funding/history (https://bybit-exchange.github.io/docs/v5/market/history-fund-rate):
# category (linear|inverse), symbol, startTime/endTime ms (startTime alone is refused), limit
# 1..200; rows newest first, so a full page continues before its oldest row. Public REST is
# limited per IP (600 requests / 5 s, https://bybit-exchange.github.io/docs/v5/rate-limit):
# 10 requests a second leaves the listings plenty.
FUNDING_HISTORY_PATH = "/v5/market/funding/history"
FUNDING_HISTORY = HistorySpec(page_size=200, paging=Paging.BACKWARD, min_interval_s=0.1)


def funding_history_request(instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
    category = "linear" if instrument.kind is ContractKind.LINEAR else "inverse"
    params = {"category": category, "symbol": instrument.native_symbol, "startTime": str(start_ms)}
    return HistoryRequest(FUNDING_HISTORY_PATH, {**params, "endTime": str(end_ms), "limit": "200"})


def parse_funding_history(payload: Any, instrument: Instrument) -> list[FundingSettlement]:
    """``result.list`` rows ``{symbol, fundingRate, fundingRateTimestamp (ms string)}``."""
    if isinstance(payload, dict) and payload.get("retCode") not in (0, None):
        raise FrameError(f"{FUNDING_HISTORY_PATH}: retCode {payload.get('retCode')}: {payload.get('retMsg')}")
    try:
        rows = rows_of(payload, "result", "list")
        return [settlement(instrument, dec(r["fundingRate"]), ms_to_ns(r["fundingRateTimestamp"])) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: bad row ({exc!r})") from exc


VENUE = Bybit
