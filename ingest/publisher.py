"""Batched, keyed publishing of ingest events to Kafka.

Sockets hand events to :meth:`Publisher.publish`, which never blocks: a socket that stopped
reading while the broker is slow or down would stamp the frames it reads later with a receipt
time after the outage, and old prices would look fresh (issue 13 item 4). One drain task lets the
batch window (``linger_ms``) pass, takes everything pending, and hands aiokafka one record per
symbol holding all of that symbol's ticks (a ``TickBatch``, at most ``MAX_BATCH_TICKS``), keyed
and partitioned by the symbol. The window replaces the producer's own linger (set to 0), so a
tick waits no longer than it did before batching (decision 0019).

Overload degrades resolution, never freshness: when more than ``max_pending`` events wait (the
broker is down, or slower than the venues), or when what the drain takes has waited longer than
``conflate_after_ms`` (the producer is behind: every event taken in one go lengthens the next wait),
the pending events are *conflated* — only the newest quote and funding state per instrument and
the newest health per connection stay, in order — and every event dropped that way is counted
(``conflated``). Memory is bounded by the tracked
universe, whatever the outage's length. The recorder keeps every raw frame regardless.

Delivery results arrive in callbacks. A failed record's events are retried up to ``retries``
times, minus those an already-sent newer event of the same instrument superseded (counted
conflated: re-sending them would put an older quote behind a newer one, issue 13 item 3); an
event past its retries is counted lost. :meth:`stop` flushes for at most ``stop_timeout_s`` and
counts whatever the broker did not take as lost — never silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

from aiokafka import AIOKafkaProducer

from plumbing.aio import cancel_requested
from plumbing.kafka import symbol_partitioner
from schemas.market import Funding, Health, Quote, encode, encode_ticks
from schemas.topics import HEALTH, ticks_topic, topic_name

log = logging.getLogger(__name__)

MAX_BATCH_TICKS = 256
"""Ticks per record at most (~100 KB of JSON, well under the producer's batch and request sizes)."""
PRODUCE_BATCH_BYTES = 1 << 20
"""aiokafka's batch per partition, and the most one drain hands the producer for a partition.
Handed more, ``send()`` waits for the full batch to go (a produce round trip each), the next drain
finds more pending and waits longer: at saturation drains took 0.25-0.7 s and half the parsed ticks
were conflated (decision 0042). 1 MiB: Kafka's default ``message.max.bytes`` is 1 MiB + 12 bytes,
Redpanda's batch limit 1 MiB; the worker's producer uses the same."""
BATCH_OVERHEAD, RECORD_OVERHEAD = 64, 32
"""Bytes a record batch's header and each record's own fields take at most (v2 format: 61 and ~20)."""


Pending: TypeAlias = Quote | Funding | Health


@dataclass
class _Record:
    topic: str
    key: bytes
    value: bytes
    events: list[Pending]
    """What the record carries, kept to retry it (a health record: the one Health)."""
    attempt: int = 0

    @property
    def ticks(self) -> int:
        return len(self.events)


def _identity(event: Pending) -> tuple[type[Pending], str]:
    """What a newer event replaces: the instrument's quote, its funding state, a connection's health."""
    if isinstance(event, Health):
        return (Health, f"{event.venue}/{event.connection}")
    return (type(event), event.instrument_id)


def conflate(events: list[Pending]) -> list[Pending]:
    """The newest event per identity, in their original order (what overload keeps)."""
    newest = {_identity(event): index for index, event in enumerate(events)}
    keep = set(newest.values())
    return [event for index, event in enumerate(events) if index in keep]


Chunk: TypeAlias = tuple[str, bytes, bytes, list[Pending]]
"""(topic, key, value, ticks) of one record."""


def tick_chunks(events: Iterable[Quote | Funding], namespace: str, max_ticks: int = MAX_BATCH_TICKS) -> list[Chunk]:
    """(topic, key, value, ticks): one record per symbol (more past ``max_ticks``), ticks in order.

    The key is the symbol, so :func:`plumbing.kafka.symbol_partitioner` puts every record of a
    symbol on one partition and the records keep the ticks' order."""
    return budgeted_chunks(events, namespace, max_ticks=max_ticks)[0]


def budgeted_chunks(
    events: Iterable[Quote | Funding], namespace: str, max_bytes: int | None = None, max_ticks: int = MAX_BATCH_TICKS
) -> tuple[list[Chunk], list[Quote | Funding]]:
    """:func:`tick_chunks`, each symbol's records ending before they would fill more than
    ``max_bytes`` of one producer batch (its first record always goes), and the ticks left out —
    a tail of each such symbol's ticks, in order."""
    by_base: dict[str, list[Quote | Funding]] = {}
    for event in events:
        by_base.setdefault(event.base, []).append(event)
    records: list[Chunk] = []
    left: list[Quote | Funding] = []
    for base, ticks in by_base.items():
        topic, key, batch_bytes = ticks_topic(base, namespace), base.encode(), BATCH_OVERHEAD
        for start in range(0, len(ticks), max_ticks):
            chunk = ticks[start : start + max_ticks]
            value = encode_ticks(chunk)
            batch_bytes += len(key) + len(value) + RECORD_OVERHEAD
            if max_bytes is not None and batch_bytes > max_bytes and start > 0:
                left += ticks[start:]
                break
            records.append((topic, key, value, list[Pending](chunk)))
    return records, left


def tick_records(
    events: Iterable[Quote | Funding], namespace: str, max_ticks: int = MAX_BATCH_TICKS
) -> list[tuple[str, bytes, bytes, int]]:
    """(topic, key, value, tick count) of :func:`tick_chunks` (what readers and the bench need)."""
    return [(topic, key, value, len(chunk)) for topic, key, value, chunk in tick_chunks(events, namespace, max_ticks)]


@dataclass
class PublisherStats:
    queued: int = 0
    """Events (ticks and health) accepted."""
    delivered: int = 0
    delivery_errors: int = 0
    """Failed record deliveries (each retried or counted lost)."""
    lost: int = 0
    """Events the broker never took: past every retry, or still pending when stop() gave up."""
    conflated: int = 0
    """Events replaced by a newer one of the same instrument/connection before they were sent."""
    records: int = 0
    """Records sent: ``delivered / records`` is the mean ticks per record."""
    held_over: int = 0
    """Ticks a drain left for the next one: their partition's producer batch was full."""
    pending: int = 0
    """Events waiting for the drain (a gauge)."""
    in_flight: int = 0
    """Events handed to the producer, not yet acknowledged (a gauge)."""


class Publisher:
    def __init__(
        self,
        bootstrap: str,
        namespace: str,
        max_pending: int,
        linger_ms: int = 5,
        retries: int = 5,
        stop_timeout_s: float = 10.0,
        conflate_when_full: bool = True,
        conflate_after_ms: int = 0,
    ) -> None:
        """``conflate_when_full=False`` makes :meth:`publish` wait for room instead (replay: a
        recording is replayed whole, back-pressure only slows it down), and never conflates.
        ``conflate_after_ms`` (0: off): pending events whose oldest waited this long when the drain
        takes them are conflated before sending."""
        self.namespace = namespace
        self.retries = retries
        self.window_s = linger_ms / 1000
        self.max_pending = max_pending
        self.stop_timeout_s = stop_timeout_s
        self.conflate_when_full = conflate_when_full
        self.conflate_after_s = conflate_after_ms / 1000
        self._conflate_at = max_pending
        self._pending_since: float | None = None
        """Monotonic time the oldest pending event was accepted (None: nothing pending)."""
        self._room = asyncio.Event()
        self.stats = PublisherStats()
        self._pending: list[Pending] = []
        self._retry: list[_Record] = []
        """Failed records to send again, ahead of everything pending (their events are older)."""
        self._wakeup = asyncio.Event()
        self._unacked: list[asyncio.Future[object]] = []
        """Delivery futures of the last drain's records (see :meth:`_sent_delivered`)."""
        self._last_sent_ns: dict[tuple[type[Pending], str], int] = {}
        """Receipt time of the newest event sent per identity: a retry never goes behind it."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            linger_ms=0,  # the batch window is the linger (see the module doc)
            acks="all",
            max_batch_size=PRODUCE_BATCH_BYTES,
            partitioner=symbol_partitioner,  # a symbol's ticks from every venue share a partition
        )
        self._drain_task: asyncio.Task[None] | None = None
        self._health_topic = topic_name(HEALTH, namespace)

    async def start(self) -> None:
        await self._producer.start()
        self._drain_task = asyncio.create_task(self._drain(), name="publisher-drain")

    async def stop(self) -> None:
        """Flush for at most ``stop_timeout_s``; whatever the broker did not take is counted lost."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout_s
        while (self._pending or self._retry or self.stats.in_flight) and loop.time() < deadline:
            self._wakeup.set()
            await asyncio.sleep(0.02)
        if self._drain_task is not None:
            self._drain_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain_task
        try:
            await asyncio.wait_for(self._producer.stop(), max(0.1, deadline - loop.time()))
        except asyncio.CancelledError:
            if cancel_requested():
                raise
        except Exception as exc:  # noqa: BLE001 - what it did not deliver is counted below
            log.warning("producer did not stop cleanly: %r", exc)
        await asyncio.sleep(0)  # delivery callbacks of the last batches
        left = len(self._pending) + sum(r.ticks for r in self._retry) + self.stats.in_flight
        if left:
            self.stats.lost += left
            log.error(
                "LOST %d events at shutdown: the broker did not take them within %.0fs", left, self.stop_timeout_s
            )
        self._pending.clear()
        self._pending_since = None
        self._retry.clear()
        self.stats.pending = self.stats.in_flight = 0

    async def publish(self, events: Iterable[Quote | Funding]) -> None:
        """Accept events at once (never blocks the socket that parsed them, unless built not to conflate)."""
        while not self.conflate_when_full and len(self._pending) >= self.max_pending:
            self._room.clear()
            await self._room.wait()
        before = len(self._pending)
        self._pending.extend(events)
        self._accepted(len(self._pending) - before)

    async def publish_health(self, health: Health) -> None:
        self._pending.append(health)
        self._accepted(1)

    def _accepted(self, count: int) -> None:
        self.stats.queued += count
        if self._pending_since is None and self._pending:
            self._pending_since = time.monotonic()
        if self.conflate_when_full and len(self._pending) > self._conflate_at:
            kept = conflate(self._pending)
            self.stats.conflated += len(self._pending) - len(kept)
            self._pending = kept
            # A universe larger than max_pending must not re-conflate on every event (quadratic).
            self._conflate_at = max(self.max_pending, 2 * len(kept))
        self.stats.pending = len(self._pending)
        self._wakeup.set()

    async def _drain(self) -> None:
        while True:
            await self._wakeup.wait()
            if self.window_s > 0:
                await asyncio.sleep(self.window_s)
            await self._sent_delivered()
            self._wakeup.clear()
            items, self._pending, since = self._pending, [], self._pending_since
            items = self._fresh(items)
            self._conflate_at = self.max_pending
            retry, self._retry = self._retry, []
            records, left = self._records(items)
            records = retry + records
            self._hold_over(left, since)
            # In flight from now on: a stop() while send() waits on a dead broker counts them lost.
            self.stats.in_flight += sum(record.ticks for record in records)
            for record in records:
                await self._send(record)

    async def _sent_delivered(self) -> None:
        """Until the broker answered for everything the last drain handed the producer.

        aiokafka keeps one produce request in flight per broker; records handed to it meanwhile
        wait in its accumulator, where nothing can conflate them, and a producer that is behind
        queues seconds there. Waiting here instead keeps newer events pending, where they are
        conflated by count (or age, if set) (decision 0039: at 120,000 ticks/s offered, p99 stamp
        -> delivery 361 ms against 4.0-4.8 s; letting one more drain wait in the accumulator gave
        1.3-1.7 s). A failed record is retried by its callback; a dead broker fails the sends
        after the producer's request timeout, as before."""
        if self._unacked:
            unacked, self._unacked = self._unacked, []
            await asyncio.wait(unacked)

    def _fresh(self, items: list[Pending]) -> list[Pending]:
        """``items`` conflated when the oldest of them waited ``conflate_after_s`` or more."""
        since, self._pending_since = self._pending_since, None
        if not (self.conflate_when_full and self.conflate_after_s and since is not None):
            return items
        if time.monotonic() - since < self.conflate_after_s:
            return items
        kept = conflate(items)
        self.stats.conflated += len(items) - len(kept)
        return kept

    def _records(self, items: list[Pending]) -> tuple[list[_Record], list[Quote | Funding]]:
        """The records to hand the producer now, and the ticks that would overfill a partition's batch."""
        health = [
            _Record(self._health_topic, item.venue.encode(), encode(item), [item])
            for item in items
            if isinstance(item, Health)
        ]
        ticks = [item for item in items if not isinstance(item, Health)]
        chunks, left = budgeted_chunks(ticks, self.namespace, PRODUCE_BATCH_BYTES)
        return health + [_Record(topic, key, value, chunk) for topic, key, value, chunk in chunks], left

    def _hold_over(self, left: list[Quote | Funding], since: float | None) -> None:
        """Ticks that did not fit this drain go first in the next (they are older than anything
        pending now), where overload conflates them like any pending event."""
        if left:
            self._pending[:0] = left
            self.stats.held_over += len(left)
            self._pending_since = since
            self._wakeup.set()
        self.stats.pending = len(self._pending)
        if len(self._pending) < self.max_pending:
            self._room.set()

    async def _send(self, record: _Record) -> None:
        last_sent = self._last_sent_ns
        for event in record.events:
            if type(event) is not Health:
                last_sent[_identity(event)] = event.receipt_ts_ns
        try:
            future = await self._producer.send(record.topic, record.value, key=record.key)
            future.add_done_callback(lambda f, r=record: self._on_delivery(f, r))
            self._unacked.append(future)
            self.stats.records += 1
        except Exception as exc:  # noqa: BLE001 - any send failure is retried or reported below
            self._failed(record, exc)

    def _on_delivery(self, future: asyncio.Future[object], record: _Record) -> None:
        if future.cancelled():
            self._failed(record, asyncio.CancelledError())
        elif (exc := future.exception()) is not None:
            self._failed(record, exc)
        else:
            self.stats.in_flight -= record.ticks
            self.stats.delivered += record.ticks

    def _failed(self, record: _Record, exc: BaseException) -> None:
        self.stats.in_flight -= record.ticks
        self.stats.delivery_errors += 1
        if record.attempt >= self.retries:
            self.stats.lost += record.ticks
            log.error(
                "LOST %d events for %s key %r after %d attempts: %r",
                record.ticks,
                record.topic,
                record.key,
                record.attempt,
                exc,
            )
            return
        retry = [event for event in record.events if not self._superseded(event)]
        self.stats.conflated += record.ticks - len(retry)
        log.warning("delivery to %s failed (%r); retry %d/%d", record.topic, exc, record.attempt + 1, self.retries)
        if not retry:
            return
        if len(retry) < record.ticks:  # encode only what is still the newest of its instrument
            record.value = encode_ticks([event for event in retry if not isinstance(event, Health)])
        self._retry.append(_Record(record.topic, record.key, record.value, retry, record.attempt + 1))
        self._wakeup.set()

    def _superseded(self, event: Pending) -> bool:
        if isinstance(event, Health):
            return False
        return self._last_sent_ns.get(_identity(event), -1) > event.receipt_ts_ns
