"""KuCoin Futures (classic token socket).

Docs: https://www.kucoin.com/docs-new/websocket-api/base-info/introduction
A socket needs a public token first: ``POST <rest>/api/v1/bullet-public``
returns the endpoint and a 24 h token; the socket is usable only after the
server's ``welcome`` frame. The client must send ``{"type":"ping"}`` every
``pingInterval`` (18 s). Book: ``/contractMarket/tickerV2`` (sizes in integer
lots of ``multiplier`` coins; inverse XBTUSDM lots are 1 USD; ``ts`` in ns).
Funding/mark: ``/contract/instrument`` (numbers, not strings; no next-funding
time on this channel). tickerV2's ``sequence`` is shared with the level2 feed,
so jumps between tickerV2 frames are normal: it is passed through, never
checked for gaps.

Limits at whole-market scale (KuCoin docs "Rate Limit" > "Websocket", as scraped in
rosssaunders/coincise ``docs/kucoin/rate_limits.md``; not re-checked against a live page):
≤ 800 connections per user, 30 new connections per minute, 100 uplink messages
per 10 s (subscribes and pings together), ≤ 100 topics per subscribe request and
400 topics per connection (documented for spot, "no limit" for futures; 400 is
kept so one reconnect never resubscribes an unbounded set). One subscribe frame
names one channel and up to 100 comma-joined symbols (each symbol counts as a
topic), one frame every 0.2 s (50 per 10 s, room for the pings).

Funding: ``/contract/instrument`` ``funding.rate`` frames with ``granularity``
60,000 (1 min) carry the current rate; at settlement the venue also pushes the
settled rate with the funding interval as granularity (28,800,000 for 8 h), which
is not the current one and is ignored. The interval per symbol is the listing's
``fundingRateGranularity`` (the hourly listing refresh follows live changes).
24 h quote volume is in the same listing: ``turnoverOf24h`` (quote currency) for
linear contracts, ``volumeOf24h`` (1-USD lots) for inverse ones, whose turnover is
in coin. Open interest too: ``openInterest`` counts lots
(https://www.kucoin.com/docs-new/rest/futures-trading/market-data/get-all-symbols), so
``open_interest_quote`` = lots x multiplier coins x ``markPrice`` (linear) or lots of 1 USD
(inverse).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
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

TICKER = "/contractMarket/tickerV2"
INSTRUMENT = "/contract/instrument"
BULLET_PATH = "/api/v1/bullet-public"
OK_CODE = "200000"
PERPETUAL = "FFWCSX"  # FFICSX rows are dated futures
HOUR_MS = 3_600_000
CURRENT_RATE_GRANULARITY_MS = 60_000


class Kucoin(Venue):
    name = "kucoin"
    ws_base = "wss://ws-api-futures.kucoin.com"
    """Informational only: the real endpoint comes from the bullet response."""
    rest_base = "https://api-futures.kucoin.com"
    instrument_paths = ("/api/v1/contracts/active",)
    # Futures sockets have no per-connection topic cap; 400 mirrors the spot cap
    # so one reconnect never resubscribes an unbounded set.
    max_topics_per_connection = 400
    topics_per_subscribe = 100  # documented cap per subscribe request
    subscribe_interval_s = 0.2  # 100 uplink messages per 10 s, pings included
    ping_interval_s: ClassVar[float | None] = 18.0  # bullet pingInterval 18000 ms
    stale_after_s = 30.0
    subscribe_after_first_frame = True  # wait for {"type":"welcome"}

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        # /contract/instrument splits rate (each minute) and mark/index (each
        # second) into separate frames; keep the latest of each per symbol so
        # every Funding event carries the whole known state.
        self._rates: dict[str, Decimal | None] = {}
        self._marks: dict[str, tuple[Decimal | None, Decimal | None]] = {}

    # -- connection plan -------------------------------------------------
    def topics(self, instrument: Instrument) -> list[str]:
        symbol = instrument.native_symbol
        return [f"{TICKER}:{symbol}", f"{INSTRUMENT}:{symbol}"]

    async def resolve_url(self, connection: Connection, rest_base: str, http: aiohttp.ClientSession) -> str:
        """POST the public bullet for a token; dial ``{endpoint}?token=..&connectId=..``."""
        try:
            async with http.post(f"{rest_base}{BULLET_PATH}") as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableError(f"kucoin bullet-public request failed: {exc}") from exc
        if status != 200:
            raise RetryableError(f"kucoin bullet-public answered HTTP {status}")
        try:
            reply = load_json(body)
            if reply.get("code") != OK_CODE:
                raise RetryableError(f"kucoin bullet-public code {reply.get('code')}: {reply.get('msg')}")
            token = reply["data"]["token"]
            endpoint = reply["data"]["instanceServers"][0]["endpoint"]
        except (FrameError, AttributeError, KeyError, IndexError, TypeError) as exc:
            raise RetryableError(f"kucoin bullet-public reply unusable: {exc}") from exc
        query = urlencode({"token": token, "connectId": uuid.uuid4().hex})
        return f"{endpoint}?{query}"

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        """One frame per channel and batch: ``/channel:SYM1,SYM2,...`` (≤100 symbols)."""
        by_channel: dict[str, list[str]] = {}
        for topic in topics:
            channel, _, symbol = topic.partition(":")
            by_channel.setdefault(channel, []).append(symbol)
        frames = []
        step = self.topics_per_subscribe
        for channel, symbols in by_channel.items():
            for start in range(0, len(symbols), step):
                request_id = self.next_request_id()
                topic = f"{channel}:{','.join(symbols[start : start + step])}"
                request = {"id": str(request_id), "type": "subscribe", "topic": topic, "response": True}
                frames.append(orjson.dumps(request).decode())
        return frames

    def ping_message(self) -> str | None:
        return orjson.dumps({"id": str(time.time_ns() // 1_000_000), "type": "ping"}).decode()

    def reset(self) -> None:
        self._rates.clear()
        self._marks.clear()

    # -- parsing ----------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        message = load_json(frame)
        if not isinstance(message, dict):
            raise FrameError("expected a JSON object")
        kind = message.get("type")
        if kind == "ack":
            return Parsed(subscribed=True)
        if kind == "error":
            return Parsed(error=f"code {message.get('code')}: {message.get('data')}")
        if kind != "message":
            return Parsed()  # welcome, pong, notices
        topic, data = message.get("topic"), message.get("data")
        if not isinstance(topic, str) or not isinstance(data, dict):
            raise FrameError("message without topic or data object")
        channel, _, symbol = topic.partition(":")
        parsed = Parsed()
        try:
            if channel == TICKER:
                self._ticker(data, receipt_ts_ns, parsed)
            elif channel == INSTRUMENT:
                self._instrument(symbol, message.get("subject"), data, receipt_ts_ns, parsed)
        except FrameError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameError(f"{topic}: bad or missing field {exc}") from exc
        return parsed

    def _ticker(self, data: dict[str, Any], receipt_ts_ns: int, out: Parsed) -> None:
        instrument = self.instrument(data["symbol"])
        if instrument is None:
            return
        out.events.append(
            make_quote(
                instrument,
                bid=dec(data["bestBidPrice"]),
                bid_qty=dec(data["bestBidSize"]),
                ask=dec(data["bestAskPrice"]),
                ask_qty=dec(data["bestAskSize"]),
                exchange_ts_ns=int(data["ts"]),  # already nanoseconds
                receipt_ts_ns=receipt_ts_ns,
                sequence=int(data["sequence"]),
            )
        )

    def _instrument(self, symbol: str, subject: Any, data: dict[str, Any], receipt_ts_ns: int, out: Parsed) -> None:
        instrument = self.instrument(symbol)
        if instrument is None:
            return
        if subject == "mark.index.price":
            self._marks[symbol] = (dec(data["markPrice"]), dec(data["indexPrice"]))
        elif subject == "funding.rate":
            if int(data["granularity"]) != CURRENT_RATE_GRANULARITY_MS:
                return  # the settled rate of the period just ended, not the current one
            self._rates[symbol] = dec(data["fundingRate"])
        else:
            return
        mark, index = self._marks.get(symbol, (None, None))
        out.events.append(
            make_funding(
                instrument,
                rate=self._rates.get(symbol),
                mark=mark,
                index=index,
                exchange_ts_ns=ms_to_ns(data["timestamp"]),
                receipt_ts_ns=receipt_ts_ns,
            )
        )

    # -- instruments ------------------------------------------------------
    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        instruments = []
        for row in listing[cls.instrument_paths[0]]["data"]:
            if row.get("type") != PERPETUAL or row.get("status") != "Open":
                continue
            instruments.append(cls._instrument_from(row))
        return instruments

    @classmethod
    def _instrument_from(cls, row: dict[str, Any]) -> Instrument:
        multiplier = abs(dec(row["multiplier"]) or Decimal(0))
        if row.get("isInverse"):
            # Inverse (coin-margined) lots are 1 USD each; the API reports -1.
            kind, contract_size = ContractKind.INVERSE, multiplier
            volume = _times(dec(row.get("volumeOf24h")), contract_size)  # lots of 1 USD
        else:
            # Lots count `multiplier` coins of baseCurrency; a prefixed base
            # (1000X) counts prefixed units, so scale to canonical base units.
            _, prefix = canonical_base(row["baseCurrency"])
            kind, contract_size = ContractKind.LINEAR, multiplier * prefix
            volume = dec(row.get("turnoverOf24h"))  # quote currency
        instrument = make_instrument(
            cls.name,
            row["symbol"],
            row["baseCurrency"],
            row["quoteCurrency"],
            row["settleCurrency"],
            kind,
            contract_size=contract_size,
            tick_size=dec(row.get("tickSize")),
            funding_interval_h=_hours(row.get("fundingRateGranularity")),
        )
        open_interest = open_interest_notional(instrument, dec(row.get("openInterest")), dec(row.get("markPrice")))
        return msgspec.structs.replace(instrument, volume_24h_quote=volume, open_interest_quote=open_interest)


def _times(value: Decimal | None, factor: Decimal) -> Decimal | None:
    return None if value is None else value * factor


def _hours(granularity_ms: Any) -> int | None:
    """Funding interval in whole hours from ``fundingRateGranularity`` (ms)."""
    hours = int(granularity_ms) // HOUR_MS if granularity_ms else 0
    return hours or None


# -- funding history ---------------------------------------------------------------------------
# GET /api/v1/contract/funding-rates (https://www.kucoin.com/docs-new/rest/futures-trading/
# funding-fees/get-public-funding-history): symbol, from, to (ms, all required); ``data`` rows
# ``{symbol, fundingRate (number), timepoint (ms)}`` newest first, aligned on ``to``. The page
# cap is not documented: 100 rows is taken as a full page (a page that long is followed by one
# ending before its oldest row; a shorter cap would end the backfill early, never duplicate).
# Public futures pool: 2000 weight / 30 s, this endpoint weighs 5 to 10: 4 requests a second.
FUNDING_HISTORY_PATH = "/api/v1/contract/funding-rates"
FUNDING_HISTORY = HistorySpec(page_size=100, paging=Paging.BACKWARD, min_interval_s=0.25)


def funding_history_request(instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
    params = {"symbol": instrument.native_symbol, "from": str(start_ms), "to": str(end_ms)}
    return HistoryRequest(FUNDING_HISTORY_PATH, params)


def parse_funding_history(payload: Any, instrument: Instrument) -> list[FundingSettlement]:
    if isinstance(payload, dict) and payload.get("code") not in ("200000", None):
        raise FrameError(f"{FUNDING_HISTORY_PATH}: code {payload.get('code')}: {payload.get('msg')}")
    try:
        rows = rows_of(payload, "data")
        return [settlement(instrument, dec(r["fundingRate"]), ms_to_ns(r["timepoint"])) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: bad row ({exc!r})") from exc


VENUE = Kucoin
