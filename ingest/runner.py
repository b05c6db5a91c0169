"""The shared venue runner: connect, subscribe, heartbeat, watch, reconnect, publish.

One :class:`ConnectionRunner` per planned connection of a venue. It never
gives up: any failure (network, venue close, stale data, sequence gap) ends the
current session, is reported on ``health`` and is followed by a reconnect with
capped exponential backoff and jitter, then a fresh subscribe. A frame the
venue module cannot parse is counted and logged, never raised out of the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp
import socketio
from websockets.exceptions import WebSocketException

from ingest.links import Link, open_link
from ingest.recorder import Recorder
from ingest.venues.base import Connection, FrameError, Venue
from plumbing.errors import RetryableError
from schemas.market import Funding, Health, HealthState, Instrument, Quote

log = logging.getLogger(__name__)

EventSink = Callable[[list[Quote | Funding]], Awaitable[None]]
HealthSink = Callable[[Health], Awaitable[None]]

FRAMES_PER_TURN = 64
"""Frames a connection handles in a row before it yields to the event loop. Frames already queued
on a socket are handed over without a wait, so a connection that is always behind would otherwise
run until its queue is empty: at saturation each loop turn took tens of milliseconds and the
publisher's drain, which needs a few turns per produce round trip, fell behind (decision 0042)."""


class SessionEnded(Exception):
    """The current socket session must end; the runner reconnects."""

    def __init__(self, state: HealthState, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


@dataclass
class ConnectionStats:
    frames: int = 0
    events: int = 0
    malformed: int = 0
    parse_errors: int = 0
    venue_errors: int = 0
    resyncs: int = 0
    reconnects: int = 0
    last_data_ts_ns: int | None = None


@dataclass(frozen=True)
class RunnerConfig:
    ws_base: str
    rest_base: str
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    stale_after_s: float | None = None
    health_every_s: float = 5.0


class ConnectionRunner:
    def __init__(
        self,
        venue_cls: type[Venue],
        instruments: Sequence[Instrument],
        plan: Connection,
        config: RunnerConfig,
        on_events: EventSink,
        on_health: HealthSink,
        http: aiohttp.ClientSession,
        recorder: Recorder | None = None,
    ) -> None:
        self.venue_cls = venue_cls
        self.instruments = list(instruments)
        self.plan = plan
        self.config = config
        self.on_events = on_events
        self.on_health = on_health
        self.http = http
        self.recorder = recorder
        self.stats = ConnectionStats()
        self.state = HealthState.DISCONNECTED
        self._last_data = time.monotonic()
        self._log_budget = 20  # per session: a flood of bad frames must not flood the log

    @property
    def stale_after_s(self) -> float:
        return self.config.stale_after_s or self.venue_cls.stale_after_s

    async def run_forever(self) -> None:
        attempt = 0
        while True:
            venue = self.venue_cls(self.instruments)  # fresh parse state for every session
            try:
                await self._session(venue)
                state, reason = HealthState.DISCONNECTED, "closed by venue"
            except SessionEnded as ended:
                state, reason = ended.state, ended.reason
            except (
                OSError,
                TimeoutError,
                aiohttp.ClientError,
                WebSocketException,
                socketio.exceptions.SocketIOError,
                RetryableError,  # e.g. KuCoin's token endpoint unreachable
            ) as exc:
                state, reason = HealthState.DISCONNECTED, f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # the runner must survive anything and say why
                log.exception("%s: unexpected error", self.plan.label)
                state, reason = HealthState.ERROR, f"{type(exc).__name__}: {exc}"
            if self.stats.last_data_ts_ns is not None and self.state is HealthState.STREAMING:
                attempt = 0  # the session worked; start backoff afresh
            self.stats.reconnects += 1
            await self._health(state, reason)
            delay = min(self.config.backoff_max_s, self.config.backoff_initial_s * 2**attempt)
            attempt += 1
            log.warning("%s: %s (%s); reconnecting in %.1fs", self.plan.label, state.value, reason, delay)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _session(self, venue: Venue) -> None:
        url = await venue.resolve_url(self.plan, self.config.rest_base, self.http)
        async with open_link(venue.transport, url, venue.ws_headers) as link:
            self._log_budget = 20
            await self._health(HealthState.CONNECTED, url)
            if venue.subscribe_after_first_frame:
                await self._handle(venue, link, await link.recv(15))
            for request in venue.on_connect():
                await link.send(request)
            self._last_data = time.monotonic()
            # Subscribing hundreds of topics at the venue's pace takes seconds (Hyperliquid ~20 s):
            # frames are read, and heartbeats sent, from the first subscription on, not after the last.
            helpers = [
                asyncio.create_task(self._subscribe(venue, link)),
                asyncio.create_task(self._watchdog(link)),
                asyncio.create_task(self._status_loop()),
            ]
            if venue.ping_interval_s and venue.ping_message() is not None:
                helpers.append(asyncio.create_task(self._pinger(venue, link)))
            try:
                handled = 0
                async for frame in link.frames():
                    await self._handle(venue, link, frame)
                    handled += 1
                    if handled % FRAMES_PER_TURN == 0:
                        # A busy socket's queued frames never make the loop wait: let the others,
                        # and the publisher's drain, have their turn (decision 0042).
                        await asyncio.sleep(0)
            finally:
                for task in helpers:
                    task.cancel()
                outcome = await asyncio.gather(*helpers, return_exceptions=True)
            ended = next((r for r in outcome if isinstance(r, SessionEnded)), None)
            if ended is not None:
                raise ended
            if (reason := link.closed_reason()) is not None:
                raise SessionEnded(HealthState.DISCONNECTED, reason)

    async def _subscribe(self, venue: Venue, link: Link) -> None:
        for request in venue.subscribe_messages(self.plan.topics):
            await link.send(request)
            await asyncio.sleep(venue.subscribe_interval_s)

    async def _handle(self, venue: Venue, link: Link, frame: str | bytes) -> None:
        receipt_ts_ns = time.time_ns()
        self.stats.frames += 1
        if self.recorder is not None:
            self.recorder.write(self.plan.label, receipt_ts_ns, frame)
        try:
            parsed = venue.parse(frame, receipt_ts_ns)
        except FrameError as exc:
            self.stats.malformed += 1
            self._complain("malformed frame (%s): %.200r", exc, frame)
            return
        except Exception as exc:  # noqa: BLE001 - a parser bug must not kill the connection
            self.stats.parse_errors += 1
            self._complain("parser error %r on frame %.200r", exc, frame)
            return
        for reply in parsed.replies:
            await link.send(reply)
        if parsed.subscribed and self.state is HealthState.CONNECTED:
            await self._health(HealthState.SUBSCRIBED, "")
        if parsed.error is not None:
            self.stats.venue_errors += 1
            await self._health(HealthState.ERROR, parsed.error)
        if parsed.events:
            self._last_data = time.monotonic()
            self.stats.events += len(parsed.events)
            self.stats.last_data_ts_ns = receipt_ts_ns
            if self.state is not HealthState.STREAMING:
                await self._health(HealthState.STREAMING, "")
            await self.on_events(parsed.events)
        if parsed.resyncs:
            self.stats.resyncs += len(parsed.resyncs)
            self._complain("sequence skipped for %s: quotes withheld until the next snapshot", parsed.resyncs)
        if parsed.gap is not None:
            raise SessionEnded(HealthState.GAP, parsed.gap)

    def _complain(self, message: str, *args: object) -> None:
        if self._log_budget > 0:
            self._log_budget -= 1
            log.warning("%s: " + message, self.plan.label, *args)

    async def _watchdog(self, link: Link) -> None:
        """No market data for stale_after_s on a live subscription: report and reconnect."""
        while True:
            await asyncio.sleep(min(1.0, self.stale_after_s / 4))
            silent = time.monotonic() - self._last_data
            if silent > self.stale_after_s:
                reason = f"no data for {silent:.1f}s (threshold {self.stale_after_s:.0f}s)"
                await self._health(HealthState.STALE, reason)
                with contextlib.suppress(Exception):
                    await link.close("stale")
                raise SessionEnded(HealthState.STALE, reason)

    async def _pinger(self, venue: Venue, link: Link) -> None:
        assert venue.ping_interval_s is not None
        while True:
            await asyncio.sleep(venue.ping_interval_s)
            message = venue.ping_message()
            if message is not None:
                await link.send(message)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.health_every_s)
            await self._health(self.state, "")

    async def _health(self, state: HealthState, reason: str) -> None:
        self.state = state
        now = time.time_ns()
        health = Health(
            venue=self.venue_cls.name,
            connection=self.plan.label,
            state=state,
            reason=reason,
            reconnects=self.stats.reconnects,
            frames_total=self.stats.frames,
            events_total=self.stats.events,
            malformed_total=self.stats.malformed + self.stats.parse_errors,
            resyncs_total=self.stats.resyncs,
            last_data_ts_ns=self.stats.last_data_ts_ns,
            exchange_ts_ns=now,
            receipt_ts_ns=now,
        )
        if self.recorder is not None:
            self.recorder.write_health(health)  # a replay sees the venue health live saw
        await self.on_health(health)
