"""Batched, keyed publishing of ingest events to Kafka.

Sockets put events on a bounded queue (back-pressure instead of unbounded memory). One drain
task takes the first waiting event, lets the batch window (``linger_ms``) pass, takes whatever
else has arrived, and hands aiokafka one record per symbol holding all of that symbol's ticks
(a ``TickBatch``, at most ``MAX_BATCH_TICKS``), keyed and partitioned by the symbol. The window
replaces the producer's own linger (set to 0), so a tick waits no longer than it did before
batching. Several ticks per record is what lets one worker process keep up with the whole
market (decision 0019). Delivery results arrive in callbacks: failures are counted and
re-queued up to ``retries`` times, then logged as lost — never silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from plumbing.kafka import symbol_partitioner
from schemas.market import Funding, Health, Quote, encode, encode_ticks
from schemas.topics import HEALTH, ticks_topic, topic_name

log = logging.getLogger(__name__)

MAX_BATCH_TICKS = 256
"""Ticks per record at most (~100 KB of JSON, well under the producer's batch and request sizes)."""


@dataclass
class _Record:
    topic: str
    key: bytes
    value: bytes
    ticks: int = 1
    """Events the record carries (a health record: 1)."""
    attempt: int = 0


def tick_records(
    events: Iterable[Quote | Funding], namespace: str, max_ticks: int = MAX_BATCH_TICKS
) -> list[tuple[str, bytes, bytes, int]]:
    """(topic, key, value, tick count): one record per symbol (more past ``max_ticks``), ticks in order.

    The key is the symbol, so :func:`plumbing.kafka.symbol_partitioner` puts every record of a
    symbol on one partition and the records keep the ticks' order."""
    by_base: dict[str, list[Quote | Funding]] = {}
    for event in events:
        by_base.setdefault(event.base, []).append(event)
    records = []
    for base, ticks in by_base.items():
        topic = ticks_topic(base, namespace)
        for start in range(0, len(ticks), max_ticks):
            chunk = ticks[start : start + max_ticks]
            records.append((topic, base.encode(), encode_ticks(chunk), len(chunk)))
    return records


@dataclass
class PublisherStats:
    queued: int = 0
    """Events (ticks and health) accepted."""
    delivered: int = 0
    delivery_errors: int = 0
    """Failed record deliveries (each retried or counted lost)."""
    lost: int = 0
    """Events in records that failed past every retry."""
    records: int = 0
    """Records sent: ``delivered / records`` is the mean ticks per record."""


class Publisher:
    def __init__(self, bootstrap: str, namespace: str, queue_size: int, linger_ms: int = 5, retries: int = 5) -> None:
        self.namespace = namespace
        self.retries = retries
        self.window_s = linger_ms / 1000
        self.stats = PublisherStats()
        self._queue: asyncio.Queue[Quote | Funding | _Record] = asyncio.Queue(maxsize=queue_size)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            linger_ms=0,  # the batch window is the linger (see the module doc)
            acks="all",
            max_batch_size=256 * 1024,
            partitioner=symbol_partitioner,  # a symbol's ticks from every venue share a partition
        )
        self._drain_task: asyncio.Task[None] | None = None
        self._health_topic = topic_name(HEALTH, namespace)

    async def start(self) -> None:
        await self._producer.start()
        self._drain_task = asyncio.create_task(self._drain(), name="publisher-drain")

    async def stop(self) -> None:
        """Flush what is queued, then stop the producer."""
        await self._queue.join()
        if self._drain_task is not None:
            self._drain_task.cancel()
        await self._producer.flush()
        await self._producer.stop()

    async def publish(self, events: Iterable[Quote | Funding]) -> None:
        for event in events:
            await self._put(event)

    async def publish_health(self, health: Health) -> None:
        await self._put(_Record(self._health_topic, health.venue.encode(), encode(health)))

    async def _put(self, item: Quote | Funding | _Record) -> None:
        self.stats.queued += 1
        await self._queue.put(item)

    async def _drain(self) -> None:
        while True:
            items = [await self._queue.get()]
            try:
                if self.window_s > 0:
                    await asyncio.sleep(self.window_s)
                while not self._queue.empty():
                    items.append(self._queue.get_nowait())
                for record in self._records(items):
                    await self._send(record)
            finally:
                for _ in items:
                    self._queue.task_done()

    def _records(self, items: list[Quote | Funding | _Record]) -> list[_Record]:
        ready = [item for item in items if isinstance(item, _Record)]
        ticks = [item for item in items if not isinstance(item, _Record)]
        batched = [
            _Record(topic, key, value, count) for topic, key, value, count in tick_records(ticks, self.namespace)
        ]
        return ready + batched

    async def _send(self, record: _Record) -> None:
        try:
            future = await self._producer.send(record.topic, record.value, key=record.key)
            future.add_done_callback(lambda f, r=record: self._on_delivery(f, r))
            self.stats.records += 1
        except Exception as exc:  # noqa: BLE001 - any send failure is retried or reported below
            self._failed(record, exc)

    def _on_delivery(self, future: asyncio.Future[object], record: _Record) -> None:
        if future.cancelled():
            self._failed(record, asyncio.CancelledError())
        elif (exc := future.exception()) is not None:
            self._failed(record, exc)
        else:
            self.stats.delivered += record.ticks

    def _failed(self, record: _Record, exc: BaseException) -> None:
        self.stats.delivery_errors += 1
        if record.attempt < self.retries:
            record.attempt += 1
            log.warning("delivery to %s failed (%r); retry %d/%d", record.topic, exc, record.attempt, self.retries)
            try:
                self._queue.put_nowait(record)
            except asyncio.QueueFull:
                asyncio.get_running_loop().create_task(self._queue.put(record))
            return
        self.stats.lost += record.ticks
        log.error(
            "LOST %d events for %s key %r after %d attempts: %r",
            record.ticks,
            record.topic,
            record.key,
            record.attempt,
            exc,
        )
