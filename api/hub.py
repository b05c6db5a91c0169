"""WebSocket fan-out: per-client subscriptions, bounded queues, coalescing, sequence numbers.

Why it is shaped like this:

- Publishing never awaits. :meth:`Hub.on_changes` runs in the Kafka consumer's
  task and only appends to each client's own buffers (``put``-style, O(1) per
  client), so a client whose socket is blocked cannot delay the read model or any
  other client. Each client has its own sender task that drains its buffers.
- Two kinds of buffers per client. *State* messages (``price_update`` per
  instrument, ``episodes`` per symbol, ``venue_health`` per venue,
  ``market_summary``, the ``arbitrage_opportunities`` top list) are coalesced: only the latest per key is
  kept and flushed at most once per ``ws_coalesce_ms``, so a slow client gets
  fewer, fresher updates ("degraded") and memory stays bounded by the number of
  keys. *Events* (``opportunity``, ``episode_closed``, errors) are queued in a
  deque of ``ws_queue_size``; on overflow the oldest is dropped and its sequence
  number is burnt, so the client sees a gap and can ask for a resync.
- A client whose socket accepts nothing for ``ws_send_timeout_s`` is dropped.
- Each snapshot (``subscribe``, ``resync``) serialises the whole subscribed
  state: at most ``ws_snapshots_per_min`` per client per minute, beyond that the
  client gets a ``rate_limited`` error saying when to retry.
- Sequence numbers are per connection, assigned when a message is sent:
  consecutive unless events were dropped. A snapshot supersedes everything
  queued before it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, get_args

from api.metrics import ApiMetrics

Channel = Literal["prices", "arbitrage", "summary", "opportunities", "episodes", "health", "funding"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)


class SlowClientError(Exception):
    """The client's socket did not accept a message within the send timeout."""


@dataclass(frozen=True)
class Filter:
    """A client's subscription. ``None`` means "no restriction"."""

    channels: frozenset[str] = frozenset(CHANNELS)
    symbols: frozenset[str] | None = None
    venues: frozenset[str] | None = None
    min_net_spread: Decimal | None = None
    """Fraction (0.002 = 0.2 %), compared with the events' ``net_spread``."""
    all_instruments: bool = False
    """Seed clients key prices by (symbol, venue), so by default only each venue's main
    contract (see ``api.views_prices.primary_quotes``) is streamed; subscribers get all."""

    def symbol_ok(self, symbol: str) -> bool:
        return self.symbols is None or symbol in self.symbols

    def venue_ok(self, venue: str) -> bool:
        return self.venues is None or venue in self.venues

    def legs_ok(self, buy_venue: str, sell_venue: str) -> bool:
        """Both legs must be tradable by the subscriber."""
        return self.venue_ok(buy_venue) and self.venue_ok(sell_venue)

    def net_ok(self, net: Decimal) -> bool:
        return self.min_net_spread is None or net >= self.min_net_spread


@dataclass(frozen=True)
class Limits:
    queue_size: int = 1_000
    coalesce_s: float = 0.1
    send_timeout_s: float = 10.0
    max_list: int = 1_000
    """Longest ``symbols``/``venues`` list of a subscribe op."""
    snapshots_per_min: int = 30
    max_message_bytes: int = 16_384


Message = tuple[str, str]
"""(type, data as JSON text): data is serialised once per change, shared by every client."""


class Delivery:
    """One event on its way to every client that wants it: when the last one's socket has taken it
    (or the event left that client's queue unsent: dropped, replaced by a snapshot, disconnected),
    the time since publishing goes to ``arbstream_api_ws_delivery_seconds``. The API's own part of
    an alert's latency to its WebSocket clients, whatever the clients' machines do."""

    __slots__ = ("_metrics", "_pending", "_started")

    def __init__(self, metrics: ApiMetrics) -> None:
        self._metrics = metrics
        self._pending = 0
        self._started = time.perf_counter()

    def add(self) -> None:
        self._pending += 1

    def done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._metrics.ws_delivery_seconds.observe(time.perf_counter() - self._started)


Queued = tuple[str, str, Delivery | None]


class Client:
    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        snapshot: Callable[[Filter], str],
        limits: Limits,
        metrics: ApiMetrics,
    ) -> None:
        self.filter = Filter()
        self.seq = 0
        self.dropped = 0
        self._send_text = send
        self._snapshot = snapshot
        self._limits = limits
        self._metrics = metrics
        self._events: deque[Queued] = deque()
        self._latest: dict[str, Message] = {}
        self._snapshot_due = False
        self._snapshot_times: deque[float] = deque()
        self._wake = asyncio.Event()
        self._last_flush = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def offer_event(self, kind: str, data: str, delivery: Delivery | None = None) -> None:
        if len(self._events) >= self._limits.queue_size:
            _finish(self._events.popleft())
            self.seq += 1  # burn the dropped message's number: the client sees the gap
            self.dropped += 1
            self._metrics.ws_dropped.inc()
        if delivery is not None:
            delivery.add()
        self._events.append((kind, data, delivery))
        self._wake.set()

    def offer_latest(self, key: str, kind: str, data: str) -> None:
        self._latest[key] = (kind, data)
        self._wake.set()

    @property
    def limits(self) -> Limits:
        return self._limits

    def snapshot_retry_in(self, now: float) -> float | None:
        """None and counted when a snapshot may be sent now; else seconds until the next one may."""
        window = self._snapshot_times
        while window and now - window[0] >= 60.0:
            window.popleft()
        if len(window) >= self._limits.snapshots_per_min:
            return 60.0 - (now - window[0])
        window.append(now)
        return None

    async def send_now(self, kind: str, data: str) -> None:
        """Send one message directly (the last words before a close; the sender task is stopped)."""
        await self._send(kind, data)

    def request_snapshot(self) -> None:
        self._snapshot_due = True
        self._wake.set()

    async def run(self) -> None:
        """The client's sender: the only place that awaits its socket. Raises SlowClientError."""
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._snapshot_due:
                self._snapshot_due = False
                self._drop_events()
                self._latest.clear()
                await self._send("snapshot", self._snapshot(self.filter))
            while self._events:
                kind, data, delivery = self._events.popleft()
                try:
                    await self._send(kind, data)
                finally:  # sent, or never will be (a slow or closed socket): done for this client
                    if delivery is not None:
                        delivery.done()
            if self._latest:
                wait = self._last_flush + self._limits.coalesce_s - loop.time()
                if wait > 0:
                    self._arm(loop, wait)
                    continue
                batch, self._latest = self._latest, {}
                self._last_flush = loop.time()
                for message in batch.values():
                    await self._send(*message)

    def _arm(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        if self._timer is None or self._timer.cancelled() or self._timer.when() <= loop.time():
            self._timer = loop.call_later(delay, self._wake.set)

    async def _send(self, kind: str, data: str) -> None:
        self.seq += 1
        text = f'{{"type":"{kind}","seq":{self.seq},"data":{data}}}'
        try:
            # asyncio.timeout, not wait_for: no extra task per message on the hottest path.
            async with asyncio.timeout(self._limits.send_timeout_s):
                await self._send_text(text)
        except TimeoutError as exc:
            raise SlowClientError(f"socket blocked for {self._limits.send_timeout_s}s") from exc
        self._metrics.sent(kind)

    def _drop_events(self) -> None:
        while self._events:
            _finish(self._events.popleft())

    def close(self) -> None:
        self._drop_events()
        if self._timer is not None:
            self._timer.cancel()


def _finish(queued: Queued) -> None:
    """An event leaves a client's queue unsent: its delivery no longer waits for this client."""
    delivery = queued[2]
    if delivery is not None:
        delivery.done()


class Hub:
    """The set of connected clients; publishing is synchronous and never awaits a socket."""

    def __init__(self, metrics: ApiMetrics) -> None:
        self.clients: set[Client] = set()
        self.connections = 0
        """Open sockets, including those still waiting for the read model (capped by ws_max_connections)."""
        self._metrics = metrics

    def add(self, client: Client) -> None:
        self.clients.add(client)
        self._metrics.ws_clients.set(len(self.clients))

    def remove(self, client: Client) -> None:
        self.clients.discard(client)
        client.close()
        self._metrics.ws_clients.set(len(self.clients))

    def publish_latest(self, key: str, kind: str, channel: str, data: str, wants: Callable[[Filter], bool]) -> None:
        for client in self.clients:
            if channel in client.filter.channels and wants(client.filter):
                client.offer_latest(key, kind, data)

    def publish_event(self, kind: str, channel: str, data: str, wants: Callable[[Filter], bool]) -> None:
        delivery = Delivery(self._metrics)
        for client in self.clients:
            if channel in client.filter.channels and wants(client.filter):
                client.offer_event(kind, data, delivery)

    def publish_per_filter(
        self,
        key: str,
        kind: str,
        channel: str,
        render: Callable[[Filter], str],
        wants: Callable[[Filter], bool] | None = None,
    ) -> None:
        """A state message whose content depends on the subscription, rendered once per distinct filter."""
        rendered: dict[Filter, str] = {}
        for client in self.clients:
            if channel in client.filter.channels and (wants is None or wants(client.filter)):
                flt = client.filter
                if flt not in rendered:
                    rendered[flt] = render(flt)
                client.offer_latest(key, kind, rendered[flt])

    def timed(self) -> _Timer:
        return _Timer(self._metrics)


class _Timer:
    def __init__(self, metrics: ApiMetrics) -> None:
        self._metrics = metrics
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self._metrics.ws_fanout_seconds.observe(time.perf_counter() - self._start)
