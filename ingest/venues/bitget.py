"""Bitget classic (v2) public futures socket: USDT-M linear and Coin-M inverse perpetuals.

Docs: https://www.bitget.com/docs/classic/websocket/contract/public/Order-Book-Channel
and .../Tickers-Channel (the old ``/api-doc/contract/...`` links now redirect).
One socket carries every product family; each subscribe arg names its
``instType``, which must match the contract's family: a real symbol under the
wrong ``instType`` is acknowledged and then silent, so it is derived from the
listing, never guessed. ``books1`` pushes a full one-level snapshot every time,
so there is nothing to merge and a skipped push loses nothing (no gap check).
Sizes are base coin on every family, Coin-M included (order sizes and
``minTradeNum`` are documented in base coin). The client sends the text
``ping`` and the server answers the text ``pong``. The UTA ``/v3`` socket
spells args differently (``topic``/``symbol``, Coin-M ids ``BTCUSD_CM``).

At whole-market scale (~790 USDT-M, ~50 USDC-M, ~9 Coin-M perpetuals, 2 channels each),
within the documented limits (https://www.bitget.com/docs/classic/websocket/intro, as quoted
by [AO] ``bitget/websocket.md`` §5): 100 connections per IP, 300 connection requests per IP
per 5 minutes, 10 client messages per second per connection (pings included), 240 subscribe
requests per hour per connection, at most 1,000 channels per connection ("fewer than 50
recommended"), subscribe args at most 4,096 bytes:

- 50 topics (25 contracts) per socket, the recommended size: ~34 sockets for the whole market.
- 20 args per subscribe (~1,400 bytes; v2 was probed taking 60, v3 dropped a socket at 25),
  3 subscribe requests per socket, 0.25 s apart (4 messages/s with pings, under 10).
- Funding interval: Bitget changes it per contract (8 h -> 4 h -> 1 h). The ticker push carries
  no interval, so it is the listing's per-contract ``fundInterval`` (hours), which agreed with
  the bulk ``current-fund-rate`` ``fundingRateInterval`` on every contract ([AO]
  ``bitget/rest.md`` §3); ingest refreshes the listing hourly.
- 24 h volume: ``GET /api/v2/mix/market/tickers?productType=...`` lists a whole family in one
  GET; ``quoteVolume`` is the quote-currency turnover. Optional: cached/bundled files without
  it give ``volume_24h_quote`` None.
- Open interest: the same tickers rows carry ``holdingAmount``, the open position in base coin
  (https://www.bitget.com/api-doc/contract/market/Get-All-Symbol-Ticker "holdingAmount: Current
  holding amount (base coin)"; ccxt's bitget parseOpenInterest reads the same field as base
  amount). COIN-M sizes are base coin too, so for every family ``open_interest_quote`` =
  holdingAmount x ``markPrice`` (USD for COIN-M, the quote coin for USDT-M / USDC-M).
- USDC-M (``BTCPERP``: base BTC, quote USDC, sizes in base coin) is listed too; files cached
  before it was fetched simply lack it.
- Sequences: every ``books1`` push is a whole one-level snapshot; nothing to resync.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

import msgspec
import orjson

from ingest.venues.base import (
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
from ingest.venues.history import HistoryRequest, HistorySpec, Paging, rows_of, settlement
from schemas.funding import FundingSettlement
from schemas.market import ContractKind, Funding, Instrument, Quote

BOOK = "books1"
TICKER = "ticker"
USDT_M = "USDT-FUTURES"
USDC_M = "USDC-FUTURES"
COIN_M = "COIN-FUTURES"
# Contract listings per family; USDC-M was added later (older cached files lack it).
LISTINGS = {
    USDT_M: "/api/v2/mix/market/contracts?productType=USDT-FUTURES",
    COIN_M: "/api/v2/mix/market/contracts?productType=COIN-FUTURES",
    USDC_M: "/api/v2/mix/market/contracts?productType=USDC-FUTURES",
}
# Whole-family tickers, for the 24 h quote volume (optional too).
TICKERS = {family: f"/api/v2/mix/market/tickers?productType={family}" for family in LISTINGS}
OPTIONAL_PATHS = frozenset({LISTINGS[USDC_M], *TICKERS.values()})
# Kafka topic names are ASCII: a handful of Bitget ids (e.g. 牛来USDT) cannot be published.
_PUBLISHABLE_BASE = re.compile(r"^[A-Za-z0-9]+$")


def inst_type(instrument: Instrument) -> str:
    """The family a contract is subscribed under: from its kind and settle coin, never guessed."""
    if instrument.kind is ContractKind.INVERSE:
        return COIN_M
    if instrument.settle in ("USDT", "USDC"):
        return USDT_M if instrument.settle == "USDT" else USDC_M
    raise ValueError(f"no Bitget product type for {instrument.instrument_id} settled in {instrument.settle}")


def _text_ms_to_ns(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return ms_to_ns(value)
    except (TypeError, ValueError) as exc:
        raise FrameError(f"bad millisecond time {value!r}") from exc


class Bitget(Venue):
    name = "bitget"
    ws_base = "wss://ws.bitget.com"
    rest_base = "https://api.bitget.com"
    instrument_paths = (*LISTINGS.values(), *TICKERS.values())
    # Volumes only: a failed USDC-M contracts GET must fail the fetch (else USDC-M reads as delisted).
    optional_instrument_paths = frozenset(TICKERS.values())
    # Limits and their source: module docstring.
    max_topics_per_connection = 50
    topics_per_subscribe = 20
    subscribe_interval_s = 0.25
    # The server closes a socket that sent no ping for 2 minutes; docs say every 30 s.
    ping_interval_s: ClassVar[float | None] = 25.0
    stale_after_s = 30.0

    def topics(self, instrument: Instrument) -> list[str]:
        family = inst_type(instrument)
        return [f"{family}:{channel}:{instrument.native_symbol}" for channel in (BOOK, TICKER)]

    def ws_url(self, ws_base: str, kind: str) -> str:
        return f"{ws_base}/v2/ws/public"

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        frames = []
        for start in range(0, len(topics), self.topics_per_subscribe):
            args = []
            for topic in topics[start : start + self.topics_per_subscribe]:
                family, channel, inst_id = topic.split(":", 2)
                args.append({"instType": family, "channel": channel, "instId": inst_id})
            frames.append(orjson.dumps({"op": "subscribe", "args": args}).decode())
        return frames

    def ping_message(self) -> str | None:
        return "ping"

    # -- parsing ----------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        if frame in ("pong", b"pong"):  # the heartbeat answer is bare text, not JSON
            return Parsed()
        message = load_json(frame)
        if not isinstance(message, dict):
            raise FrameError("expected a JSON object")
        event = message.get("event")
        if event is not None:
            return self._control(event, message)
        arg, data = message.get("arg"), message.get("data")
        if arg is None and data is None:
            return Parsed()  # some other kind of message: nothing for us
        if not isinstance(arg, dict) or not isinstance(data, list):
            raise FrameError("push without an arg object and a data list")
        inst_id = arg.get("instId")
        instrument = self.instrument(inst_id) if isinstance(inst_id, str) else None
        if instrument is None or inst_type(instrument) != arg.get("instType"):
            return Parsed()  # a contract we do not track
        channel = arg.get("channel")
        parsed = Parsed()
        for item in data:
            if not isinstance(item, dict):
                raise FrameError(f"{channel} data item is not an object")
            try:
                if channel == BOOK:
                    parsed.events.append(self._book(instrument, item, message.get("ts"), receipt_ts_ns))
                elif channel == TICKER:
                    parsed.events.append(self._ticker(instrument, item, receipt_ts_ns))
            except FrameError:
                raise
            except (KeyError, TypeError, IndexError, ValueError) as exc:
                raise FrameError(f"bad {channel} item: {exc!r}") from exc
        return parsed

    @staticmethod
    def _control(event: Any, message: dict[str, Any]) -> Parsed:
        if event == "subscribe":
            return Parsed(subscribed=True)
        if event == "error":
            return Parsed(error=f"code {message.get('code')}: {message.get('msg')}")
        return Parsed()  # unsubscribe, login...

    @staticmethod
    def _book(instrument: Instrument, item: dict[str, Any], push_ts: Any, receipt_ts_ns: int) -> Quote:
        bid, bid_size = _top(item["bids"])
        ask, ask_size = _top(item["asks"])
        seq = item.get("seq")  # bare JSON integer; Coin-M values exceed 2**53
        return make_quote(
            instrument,
            bid=bid,
            bid_qty=_venue_qty(instrument, bid_size, bid),
            ask=ask,
            ask_qty=_venue_qty(instrument, ask_size, ask),
            exchange_ts_ns=_text_ms_to_ns(item.get("ts", push_ts)),
            receipt_ts_ns=receipt_ts_ns,
            sequence=None if seq is None else int(seq),
        )

    @staticmethod
    def _ticker(instrument: Instrument, item: dict[str, Any], receipt_ts_ns: int) -> Funding:
        # The ticker is the only carrier of funding and mark on v2; the interval comes from the listing.
        next_funding = _text_ms_to_ns(item.get("nextFundingTime"))
        return make_funding(
            instrument,
            rate=dec(item["fundingRate"]),
            next_funding_ts_ns=next_funding or None,
            mark=dec(item.get("markPrice")),
            index=dec(item.get("indexPrice")),
            exchange_ts_ns=_text_ms_to_ns(item.get("ts")),
            receipt_ts_ns=receipt_ts_ns,
        )

    # -- instruments ------------------------------------------------------
    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        instruments = []
        try:
            for family, path in LISTINGS.items():
                tickers = {row["symbol"]: row for row in _rows(listing, TICKERS[family])}
                for row in _rows(listing, path):
                    if row.get("symbolType") != "perpetual" or row.get("symbolStatus") != "normal":
                        continue
                    if not _PUBLISHABLE_BASE.match(row["baseCoin"]):
                        continue
                    instrument = cls._instrument(family, row)
                    instruments.append(_with_ticker(instrument, tickers.get(instrument.native_symbol)))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise FrameError(f"unexpected contract listing: {exc!r}") from exc
        return instruments

    @classmethod
    def _instrument(cls, family: str, row: dict[str, Any]) -> Instrument:
        inverse = family == COIN_M
        # Linear sizes count baseCoin units, so a ``1000BONK`` unit is 1000 BONK. Inverse
        # sizes are base coin too; parse() hands make_quote their USD value (1 per unit).
        _, multiplier = canonical_base(row["baseCoin"])
        step, places = dec(row["priceEndStep"]), int(row["pricePlace"])
        return make_instrument(
            cls.name,
            row["symbol"],
            row["baseCoin"],
            row["quoteCoin"],
            row["baseCoin"] if inverse else row["quoteCoin"],
            ContractKind.INVERSE if inverse else ContractKind.LINEAR,
            contract_size=Decimal(1) if inverse else multiplier,
            tick_size=None if step is None else step.scaleb(-places),
            funding_interval_h=int(row["fundInterval"]) if row.get("fundInterval") else None,
        )


def _with_ticker(instrument: Instrument, row: dict[str, Any] | None) -> Instrument:
    """24 h quote volume and open interest (holdingAmount x markPrice) from the tickers row."""
    if row is None:
        return instrument
    holding, mark = dec(row.get("holdingAmount")), dec(row.get("markPrice"))
    open_interest = holding * mark if holding is not None and mark is not None else None
    return msgspec.structs.replace(
        instrument, volume_24h_quote=dec(row.get("quoteVolume")), open_interest_quote=open_interest
    )


def _rows(listing: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The ``data`` rows of one response; optional paths missing from older files give none."""
    if path not in listing and path in OPTIONAL_PATHS:
        return []
    rows = listing[path]["data"]
    if not isinstance(rows, list):
        raise FrameError(f"{path}: data is not a list")
    return rows


def _top(levels: Any) -> tuple[Decimal | None, Decimal | None]:
    """Best level ``[price, size]`` of one side; (None, None) for an empty side."""
    if not levels:
        return None, None
    price, size = levels[0][0], levels[0][1]
    return dec(price), dec(size)


def _venue_qty(instrument: Instrument, size: Decimal | None, price: Decimal | None) -> Decimal | None:
    """The size in the unit make_quote expects.

    Linear: the venue's own unit. Inverse: Bitget quotes base coin, while make_quote
    reads inverse sizes as quote units (x contract_size / price), so pass the USD value.
    """
    if size is None or instrument.kind is ContractKind.LINEAR:
        return size
    return None if price is None else size * price


# -- funding history ---------------------------------------------------------------------------
# GET /api/v2/mix/market/history-fund-rate (https://www.bitget.com/api-doc/contract/market/Get-
# History-Funding-Rate): symbol, productType, pageSize <= 100, pageNo; no time window, newest
# first, so pages are read until one is short or reaches the window's start. 20 requests / s per
# IP; the backfill asks 5 a second.
FUNDING_HISTORY_PATH = "/api/v2/mix/market/history-fund-rate"
FUNDING_HISTORY = HistorySpec(page_size=100, paging=Paging.PAGES, min_interval_s=0.2)


def funding_history_request(instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
    params = {"symbol": instrument.native_symbol, "productType": inst_type(instrument)}
    return HistoryRequest(FUNDING_HISTORY_PATH, {**params, "pageSize": "100", "pageNo": str(page)})


def parse_funding_history(payload: Any, instrument: Instrument) -> list[FundingSettlement]:
    """``data`` rows ``{symbol, fundingRate, fundingTime (ms string)}``."""
    if isinstance(payload, dict) and payload.get("code") not in ("00000", None):
        raise FrameError(f"{FUNDING_HISTORY_PATH}: code {payload.get('code')}: {payload.get('msg')}")
    try:
        rows = rows_of(payload, "data")
        return [settlement(instrument, dec(r["fundingRate"]), ms_to_ns(r["fundingTime"])) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: bad row ({exc!r})") from exc


VENUE = Bitget
