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
- Under the API's own uvicorn protocol (:mod:`api.direct_ws`) frames go straight to
  the socket: an event for an idle client whose socket takes writes is written while
  publishing (no task switch per client, decision 0037); the events of one batch of
  changes (:meth:`Hub.batched`) reach each client in one write at the batch's end, and
  a sender task writes everything it found queued in one write. A client with a
  backlog, a snapshot due or a full socket buffer is served by its sender task, so
  each client's order is kept.
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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol, get_args

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


class DirectWriter(Protocol):
    """Synchronous writes of whole messages to one client's socket (:mod:`api.direct_ws`)."""

    def ready(self) -> bool:
        """Open and taking writes now."""

    def write(self, texts: Sequence[str]) -> None:
        """All texts, one message each, in one write; ConnectionResetError once closed."""

    async def drained(self) -> None:
        """Returns once the socket takes writes again."""


class Delivery:
    """One event on its way to every client that wants it: when the last one's socket has taken it
    (or the event left that client's queue unsent: dropped, replaced by a snapshot, disconnected),
    the time since publishing goes to ``arbstream_api_ws_delivery_seconds``. The API's own part of
    an alert's latency to its WebSocket clients, whatever the clients' machines do. The publisher
    holds it (:meth:`release`) until every client has been offered the event; nothing is observed
    for an event no client wanted."""

    __slots__ = ("_metrics", "_pending", "_started", "_wanted")

    def __init__(self, metrics: ApiMetrics) -> None:
        self._metrics = metrics
        self._pending = 1  # the publisher's hold
        self._wanted = False
        self._started = time.perf_counter()

    def add(self) -> None:
        """A client queued it."""
        self._pending += 1
        self._wanted = True

    def taken(self) -> None:
        """A client's socket took it while publishing."""
        self._wanted = True

    def done(self) -> None:
        """A client that queued it has sent it, or never will."""
        self._pending -= 1
        if self._pending == 0 and self._wanted:
            self._metrics.ws_delivery_seconds.observe(time.perf_counter() - self._started)

    release = done


Queued = tuple[str, str, Delivery | None]


Pending = tuple[str, str, str, Callable[["Filter"], bool], Delivery]
"""An event published inside :meth:`Hub.batched`: (type, channel, data, wants, delivery)."""


class Client:
    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        snapshot: Callable[[Filter], str],
        limits: Limits,
        metrics: ApiMetrics,
        direct: DirectWriter | None = None,
    ) -> None:
        self.filter = Filter()
        self.seq = 0
        self.dropped = 0
        self._send_text = send
        self._direct = direct
        self._snapshot = snapshot
        self._limits = limits
        self._metrics = metrics
        self._events: deque[Queued] = deque()
        self._latest: dict[str, Message] = {}
        self._snapshot_due = False
        self._sending = False
        """The sender task holds messages taken from the queues: nothing may overtake them."""
        self._snapshot_times: deque[float] = deque()
        self._wake = asyncio.Event()
        self._last_flush = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def offer_event(self, kind: str, data: str, delivery: Delivery | None = None) -> None:
        if self._write_now(((kind, data, delivery),)):
            self._metrics.sent(kind)
        else:
            self._enqueue(kind, data, delivery)

    def offer_batch(self, events: list[Pending], sent: dict[str, int]) -> None:
        """The events of one batch this client wants, in one write (or queued, in order, when it
        cannot take them now). ``sent`` counts what was written, per type."""
        f = self.filter
        wanted = [(kind, data, d) for kind, channel, data, wants, d in events if channel in f.channels and wants(f)]
        if not wanted:
            return
        if self._write_now(wanted):
            for kind, _, _ in wanted:
                sent[kind] = sent.get(kind, 0) + 1
        else:
            for kind, data, delivery in wanted:
                self._enqueue(kind, data, delivery)

    def _write_now(self, events: Sequence[Queued]) -> bool:
        """Write events while publishing, in one write, when nothing is ahead of them and the socket
        takes writes now; False (nothing written) otherwise."""
        direct = self._direct
        if direct is None or self._events or self._snapshot_due or self._sending or not direct.ready():
            return False
        try:
            direct.write([self._text(self.seq + i, kind, data) for i, (kind, data, _) in enumerate(events, 1)])
        except ConnectionResetError:
            return False  # closing: queued, and dropped when the connection is removed
        self.seq += len(events)
        for _, _, delivery in events:
            if delivery is not None:
                delivery.taken()
        return True

    def _enqueue(self, kind: str, data: str, delivery: Delivery | None) -> None:
        """For the sender task; on overflow the oldest event is dropped."""
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
            batch: list[Message] = []
            deliveries: list[Delivery] = []
            if self._snapshot_due:
                self._snapshot_due = False
                self._drop_events()
                self._latest.clear()
                batch.append(("snapshot", self._snapshot(self.filter)))
            while self._events:
                kind, data, delivery = self._events.popleft()
                batch.append((kind, data))
                if delivery is not None:
                    deliveries.append(delivery)
            if self._latest:
                wait = self._last_flush + self._limits.coalesce_s - loop.time()
                if wait > 0:
                    self._arm(loop, wait)
                else:
                    batch.extend(self._latest.values())
                    self._latest = {}
                    self._last_flush = loop.time()
            self._sending = True
            try:
                await self._send_batch(batch)
            finally:  # sent, or never will be (a slow or closed socket): done for this client
                self._sending = False
                for delivery in deliveries:
                    delivery.done()

    def _arm(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        if self._timer is None or self._timer.cancelled() or self._timer.when() <= loop.time():
            self._timer = loop.call_later(delay, self._wake.set)

    async def _send_batch(self, batch: list[Message]) -> None:
        direct = self._direct
        if direct is None:
            for kind, data in batch:
                await self._send(kind, data)
            return
        if not batch:
            return
        if not direct.ready():
            try:
                async with asyncio.timeout(self._limits.send_timeout_s):
                    await direct.drained()
            except TimeoutError as exc:
                raise SlowClientError(f"socket blocked for {self._limits.send_timeout_s}s") from exc
        texts = [self._text(self.seq + i, kind, data) for i, (kind, data) in enumerate(batch, 1)]
        direct.write(texts)
        self.seq += len(batch)
        for kind, _ in batch:
            self._metrics.sent(kind)

    @staticmethod
    def _text(seq: int, kind: str, data: str) -> str:
        return f'{{"type":"{kind}","seq":{seq},"data":{data}}}'

    async def _send(self, kind: str, data: str) -> None:
        self.seq += 1
        text = self._text(self.seq, kind, data)
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
        self._pending: list[Pending] | None = None
        """Events published inside :meth:`batched`, delivered when it ends."""
        self._rotation = 0

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Publish one batch of changes: its events reach each client in one write at the end (one
        system call per client per batch, not per message), client after client, starting each
        batch one client further on so that no client is always served last."""
        self._pending = []
        try:
            yield
        finally:
            events, self._pending = self._pending, None
            if events:
                self._deliver(events)

    def _deliver(self, events: list[Pending]) -> None:
        clients = list(self.clients)
        start = self._rotation % len(clients) if clients else 0
        self._rotation += 1
        sent: dict[str, int] = {}
        for client in clients[start:] + clients[:start]:
            client.offer_batch(events, sent)
        for *_, delivery in events:
            delivery.release()
        for kind, count in sent.items():
            self._metrics.sent(kind, count)

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
        if self._pending is not None:
            self._pending.append((kind, channel, data, wants, delivery))
            return
        for client in self.clients:
            if channel in client.filter.channels and wants(client.filter):
                client.offer_event(kind, data, delivery)
        delivery.release()

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
