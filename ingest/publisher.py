"""Batched, keyed publishing of ingest events to Kafka.

Sockets put events on a bounded queue (back-pressure instead of unbounded
memory); one drain task hands them to aiokafka's accumulator without awaiting
each delivery. Delivery results arrive in callbacks: failures are counted and
re-queued up to ``retries`` times, then logged as lost — never silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from arbstream.kafka import symbol_partitioner
from schemas.market import Funding, Health, Quote, encode
from schemas.topics import HEALTH, ticks_topic, topic_name

log = logging.getLogger(__name__)


@dataclass
class _Record:
    topic: str
    key: bytes
    value: bytes
    attempt: int = 0


@dataclass
class PublisherStats:
    queued: int = 0
    delivered: int = 0
    delivery_errors: int = 0
    lost: int = 0


class Publisher:
    def __init__(self, bootstrap: str, namespace: str, queue_size: int, linger_ms: int = 5, retries: int = 5) -> None:
        self.namespace = namespace
        self.retries = retries
        self.stats = PublisherStats()
        self._queue: asyncio.Queue[_Record] = asyncio.Queue(maxsize=queue_size)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            linger_ms=linger_ms,
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
            await self._put(
                _Record(ticks_topic(event.base, self.namespace), event.instrument_id.encode(), encode(event))
            )

    async def publish_health(self, health: Health) -> None:
        await self._put(_Record(self._health_topic, health.venue.encode(), encode(health)))

    async def _put(self, record: _Record) -> None:
        self.stats.queued += 1
        await self._queue.put(record)

    async def _drain(self) -> None:
        while True:
            record = await self._queue.get()
            try:
                future = await self._producer.send(record.topic, record.value, key=record.key)
                future.add_done_callback(lambda f, r=record: self._on_delivery(f, r))
            except Exception as exc:  # noqa: BLE001 - any send failure is retried or reported below
                self._failed(record, exc)
            finally:
                self._queue.task_done()

    def _on_delivery(self, future: asyncio.Future[object], record: _Record) -> None:
        if future.cancelled():
            self._failed(record, asyncio.CancelledError())
        elif (exc := future.exception()) is not None:
            self._failed(record, exc)
        else:
            self.stats.delivered += 1

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
        self.stats.lost += 1
        log.error("LOST message for %s key %r after %d attempts: %r", record.topic, record.key, record.attempt, exc)
