"""Hyperliquid perpetuals (the first perp dex): USDC-settled, linear.

Docs: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket
(socket ``wss://api.hyperliquid.xyz/ws``) and the info endpoint
https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint/perpetuals.

One subscription per frame: ``bbo`` (top of book, pushed when it changes on a
block, with the block ``time``) and ``activeAssetCtx`` (hourly funding, mark and
oracle price; no timestamp on the wire). Every bbo frame is the whole top of
book, so there is nothing to merge and no sequence to check. Sizes are coin
units of the listed name (``kPEPE`` counts 1,000 PEPE). An unknown or mis-spelt
coin makes the server *close the socket* instead of answering with an error, so
only listed coins are ever subscribed. The server drops a connection it has had
nothing from for 60 s: the client sends ``{"method":"ping"}`` (answer
``{"channel":"pong"}``).

Limits at whole-market scale, per IP (official "Rate limits and user limits",
https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits-and-user-limits):
10 websocket connections, 30 new connections a minute, 1000 subscriptions,
2000 messages sent a minute across connections. Two subscriptions per coin (the
main dex lists ~200 live coins) fit one socket, so one socket carries them all,
and subscribes go out at 20/s, under the message limit with room for pings.
A coin listed when the listing was fetched may be delisted since (the listing is
refreshed hourly): before each (re)connect the live universe is asked again
(``metaAndAssetCtxs``: one POST, weight 20 of 1200/min) and a coin missing from it or flagged
``isDelisted`` is not subscribed, so a delisted coin cannot close the socket
of every other coin on each reconnect. If that POST fails, the listing we have
is used (and the failure logged).

Listing: ``POST /info {"type":"metaAndAssetCtxs"}`` gives the universe and, by
position, every coin's context, whose ``dayNtlVlm`` is the 24 h notional volume
in USDC (``volume_24h_quote``). A listing file holding the older
``{"type":"meta"}`` answer (bundled snapshot, old caches) still parses, without
volumes. The same context's ``openInterest`` counts units of the listed coin (``kPEPE`` units;
https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint/perpetuals
"Retrieve perpetuals asset contexts"), so ``open_interest_quote`` = openInterest x ``markPx``
(USDC, the price of one listed unit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

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
)
from ingest.venues.history import HistoryRequest, HistorySpec, Paging, settlement
from plumbing.errors import RetryableError
from schemas.funding import FundingSettlement
from schemas.market import ContractKind, Funding, Instrument, Quote

log = logging.getLogger(__name__)

BBO = "bbo"
CTX = "activeAssetCtx"
QUOTE = "USDC"
FUNDING_INTERVAL_H = 1
HOUR_NS = 3600 * 1_000_000_000
CTXS_KEY = "POST /info metaAndAssetCtxs"
"""The listing is a POST, not a GET: its response ``[meta, asset contexts]`` is stored under this key."""
META_KEY = "POST /info meta"
"""Listing files fetched before volumes were read hold the bare ``meta`` answer under this key."""
MAX_SUBSCRIPTIONS = 1000  # per IP, across connections (rate limits page)
GREETING = "Websocket connection established."
"""Plain-text frame the server has sent on connect (the official Python SDK skips it)."""


def _topic(kind: str, coin: str) -> str:
    return f"{kind}:{coin}"


def next_hour_ns(ts_ns: int) -> int:
    """Funding settles at the top of every hour; the wire never says when, so count from receipt."""
    return (ts_ns // HOUR_NS + 1) * HOUR_NS


class Hyperliquid(Venue):
    name = "hyperliquid"
    ws_base = "wss://api.hyperliquid.xyz"
    rest_base = "https://api.hyperliquid.xyz"
    instrument_paths = (CTXS_KEY,)
    # Per IP: 1000 subscriptions and 10 connections (module docstring); one socket carries all.
    max_topics_per_connection = MAX_SUBSCRIPTIONS
    topics_per_subscribe = 1  # the protocol takes one subscription per frame
    # 2000 client messages/min per IP across all sockets: 20/s leaves room for pings.
    subscribe_interval_s = 0.05

    ping_interval_s: ClassVar[float | None] = 30.0  # closed after 60 s without traffic
    stale_after_s = 30.0

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        self._live: set[str] | None = None
        """Coins the venue's meta lists as live right now (None: not checked this session)."""

    def topics(self, instrument: Instrument) -> list[str]:
        coin = instrument.native_symbol
        return [_topic(BBO, coin), _topic(CTX, coin)]

    def ws_url(self, ws_base: str, kind: str) -> str:
        return f"{ws_base}/ws"

    def connections(self, ws_base: str) -> list[Connection]:
        """All coins on one socket, every book before any funding (quotes stream in half the time);
        beyond the per-IP subscription cap, the rest are named and left out."""
        coins = list(self.by_native)
        topics = [_topic(BBO, c) for c in coins] + [_topic(CTX, c) for c in coins]
        if len(topics) > MAX_SUBSCRIPTIONS:
            dropped = topics[MAX_SUBSCRIPTIONS:]
            log.error("hyperliquid: %d topics over the %d subscriptions per IP left out: %s",
                      len(dropped), MAX_SUBSCRIPTIONS, dropped[:10])  # fmt: skip
        if not topics:
            return []
        return [Connection(f"{self.name}-0", self.ws_url(ws_base, "default"), tuple(topics[:MAX_SUBSCRIPTIONS]))]

    async def resolve_url(self, connection: Connection, rest_base: str, http: aiohttp.ClientSession) -> str:
        """Check the coins against the live meta before subscribing (a delisted coin closes the socket)."""
        try:
            # The same request as the listing's (a server answering one answers the other).
            meta, _contexts = load_json(await _post_info(http, rest_base, "metaAndAssetCtxs"))
            self._live = {row["name"] for row in meta["universe"] if not row.get("isDelisted")}
        except (RetryableError, aiohttp.ClientError, TimeoutError, FrameError, KeyError, TypeError, ValueError) as exc:
            log.warning("hyperliquid: live meta unavailable (%s); subscribing the listed coins", exc)
            self._live = None
            return connection.url
        gone = sorted({t.partition(":")[2] for t in connection.topics} - self._live)
        if gone:
            log.warning("hyperliquid: %d listed coins no longer live, not subscribed: %s", len(gone), gone[:20])
        return connection.url

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        frames = []
        for topic in topics:
            kind, _, coin = topic.partition(":")  # HIP-3 coins (``xyz:SP500``) keep their colon
            # A coin the venue does not list would close the whole socket: never send one.
            if kind not in (BBO, CTX) or coin not in self.by_native:
                continue
            if self._live is not None and coin not in self._live:
                continue  # delisted since the listing was fetched
            frames.append(self._request("subscribe", {"type": kind, "coin": coin}))
        return frames

    def ping_message(self) -> str | None:
        return self._request("ping")

    @staticmethod
    def _request(method: str, subscription: dict[str, str] | None = None) -> str:
        body: dict[str, Any] = {"method": method}
        if subscription is not None:
            body["subscription"] = subscription
        return orjson.dumps(body).decode()

    # -- parsing ----------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        if frame == GREETING or frame == GREETING.encode():
            return Parsed()
        message = load_json(frame)
        if not isinstance(message, dict) or not isinstance(message.get("channel"), str):
            raise FrameError("expected a JSON object with a channel")
        channel = message["channel"]
        data = message.get("data")
        if channel == "subscriptionResponse":
            method = data.get("method") if isinstance(data, dict) else None
            return Parsed(subscribed=method == "subscribe")
        if channel == "error":
            return Parsed(error=str(data))
        if channel not in (BBO, CTX):
            return Parsed()  # pong, post responses, channels we never subscribe to
        if not isinstance(data, dict):
            raise FrameError(f"{channel} without a data object")
        coin = data.get("coin")
        if not isinstance(coin, str):
            raise FrameError(f"{channel} without a coin")
        instrument = self.instrument(coin)
        if instrument is None:
            return Parsed()  # a coin we do not track
        try:
            event: Quote | Funding
            if channel == BBO:
                event = self._quote(instrument, data, receipt_ts_ns)
            else:
                event = self._funding(instrument, data["ctx"], receipt_ts_ns)
        except FrameError:
            raise
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise FrameError(f"{channel} frame malformed: {exc!r}") from exc
        return Parsed(events=[event])

    @staticmethod
    def _quote(instrument: Instrument, data: dict[str, Any], receipt_ts_ns: int) -> Quote:
        book = data["bbo"]
        if not isinstance(book, list) or len(book) != 2:
            raise FrameError("bbo must be [bid, ask]")
        bid, ask = book  # either side is null when that side of the book is empty
        return make_quote(
            instrument,
            bid=dec(bid["px"]) if bid is not None else None,
            bid_qty=dec(bid["sz"]) if bid is not None else None,
            ask=dec(ask["px"]) if ask is not None else None,
            ask_qty=dec(ask["sz"]) if ask is not None else None,
            exchange_ts_ns=ms_to_ns(data["time"]),
            receipt_ts_ns=receipt_ts_ns,
        )

    @staticmethod
    def _funding(instrument: Instrument, ctx: Any, receipt_ts_ns: int) -> Funding:
        if not isinstance(ctx, dict):
            raise FrameError("activeAssetCtx without a ctx object")
        return make_funding(
            instrument,
            rate=dec(ctx["funding"]),  # the current hourly rate, paid at the top of the hour
            next_funding_ts_ns=next_hour_ns(receipt_ts_ns),
            mark=dec(ctx["markPx"]),
            index=dec(ctx["oraclePx"]),
            exchange_ts_ns=None,  # the context carries no time: flagged as missing
            receipt_ts_ns=receipt_ts_ns,
        )

    # -- instruments ------------------------------------------------------
    @classmethod
    async def fetch_listing(cls, http: aiohttp.ClientSession, rest_base: str) -> bytes:
        """``POST /info {"type":"metaAndAssetCtxs"}``, stored verbatim under ``CTXS_KEY``."""
        body = await _post_info(http, rest_base, "metaAndAssetCtxs")
        return b"{" + orjson.dumps(CTXS_KEY) + b":" + body + b"}"

    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        if CTXS_KEY in listing:
            meta, contexts = listing[CTXS_KEY]
        else:
            meta, contexts = listing[META_KEY], []
        instruments = []
        for n, row in enumerate(meta["universe"]):
            if row.get("isDelisted"):
                continue
            # Contexts follow the universe's order, delisted coins included.
            context = contexts[n] if n < len(contexts) else {}
            instrument = cls._instrument(row["name"], dec(context.get("dayNtlVlm")))
            instruments.append(_with_open_interest(instrument, context))
        return instruments

    @classmethod
    def _instrument(cls, coin: str, volume: Any) -> Instrument:
        # Sizes count units of the listed name, so one kPEPE is 1000 PEPE.
        _, multiplier = canonical_base(coin)
        instrument = make_instrument(
            cls.name,
            coin,
            coin,
            QUOTE,
            QUOTE,
            ContractKind.LINEAR,
            contract_size=multiplier,
            # No fixed tick: a price may have 5 significant figures and at
            # most 6 - szDecimals decimals, so the step moves with the price.
            tick_size=None,
            funding_interval_h=FUNDING_INTERVAL_H,
        )
        return instrument if volume is None else msgspec.structs.replace(instrument, volume_24h_quote=volume)


def _with_open_interest(instrument: Instrument, context: dict[str, Any]) -> Instrument:
    held, mark = dec(context.get("openInterest")), dec(context.get("markPx"))
    if held is None or mark is None:
        return instrument
    return msgspec.structs.replace(instrument, open_interest_quote=held * mark)


async def _post_info(http: aiohttp.ClientSession, rest_base: str, kind: str) -> bytes:
    url = f"{rest_base}/info"
    async with http.post(url, json={"type": kind}, timeout=aiohttp.ClientTimeout(total=30)) as response:
        if response.status != 200:
            raise RetryableError(f"POST {url} {kind}: HTTP {response.status}")
        return await response.read()


# -- funding history ---------------------------------------------------------------------------
# POST /info {"type": "fundingHistory", "coin", "startTime", "endTime"} (https://hyperliquid.
# gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint/perpetuals#retrieve-historical-
# funding-rates): rows ``{coin, fundingRate, premium, time (ms)}`` oldest first, at most 500 per
# answer (continue from the last ``time``); ``time`` is a few ms past the hour (snapped). Info
# requests share 1200 weight / min per IP; fundingHistory weighs 20 plus one per 20 rows (up to
# 45): one request every 2.5 s.
FUNDING_HISTORY_PATH = "/info"
FUNDING_HISTORY = HistorySpec(page_size=500, paging=Paging.FORWARD, min_interval_s=2.5)


def funding_history_request(instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
    body = {"type": "fundingHistory", "coin": instrument.native_symbol, "startTime": start_ms, "endTime": end_ms}
    return HistoryRequest(FUNDING_HISTORY_PATH, json_body=body)


def parse_funding_history(payload: Any, instrument: Instrument) -> list[FundingSettlement]:
    if not isinstance(payload, list):
        raise FrameError(f"fundingHistory: expected a list ({str(payload)[:200]})")
    try:
        return [settlement(instrument, dec(r["fundingRate"]), ms_to_ns(r["time"])) for r in payload]
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"fundingHistory: bad row ({exc!r})") from exc


VENUE = Hyperliquid
