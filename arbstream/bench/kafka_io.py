"""The bench's broker (external or a local one it starts) and its Kafka measuring tools."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from plumbing.broker import RAM_DISK, LocalKafka, free_port
from plumbing.kafka import symbol_partitioner
from plumbing.settings import BrokerSettings, CommonSettings

Record = tuple[str, bytes, bytes]
"""(topic, key, value) ready to send."""


@dataclass(frozen=True)
class BrokerInfo:
    bootstrap: str
    kafka_version: str
    local: bool
    pid: int | None = None
    """The local broker's JVM, whose CPU counts as the bench's own."""


@contextmanager
def bench_broker(data_dir: Path) -> Iterator[BrokerInfo]:
    """KAFKA_BOOTSTRAP / ARBSTREAM_KAFKA_BOOTSTRAP when set, else a local broker on free ports, stopped at exit."""
    external = CommonSettings().kafka_bootstrap
    if external:
        # The broker software version is not visible to a client; say so instead of guessing.
        yield BrokerInfo(external, "external (version not reported by the client)", local=False)
        return
    settings = BrokerSettings()
    broker = LocalKafka(settings, data_dir=data_dir, port=free_port(), controller_port=free_port())
    broker.start()
    try:
        pid = broker.process.pid if broker.process is not None else None
        where = "in RAM (tmpfs)" if data_dir.is_relative_to(RAM_DISK) else "on disk"
        version = f"Apache Kafka {settings.kafka_version} (local, KRaft, data {where})"
        yield BrokerInfo(broker.bootstrap, version, local=True, pid=pid)
    finally:
        broker.stop()


def make_producer(bootstrap: str, linger_ms: int = 5) -> AIOKafkaProducer:
    """The same producer settings as ingest's Publisher, so the limit is the one ingest can reach."""
    # The same partitioner as ingest: a symbol's ticks share a partition (see plumbing.kafka.tick_partition).
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=linger_ms,
        acks="all",
        max_batch_size=256 * 1024,
        partitioner=symbol_partitioner,
    )


async def prime_producer(producer: AIOKafkaProducer, topics: Sequence[str]) -> None:
    """Fetch every topic's partitions before the first send (see :meth:`OffsetProbe.prime`).

    A send to a topic the producer has not seen waits for that topic's metadata; on the market
    mix's 480 topics, one after the other, that held the first records of a timed run for seconds.
    """
    await asyncio.gather(*(producer.partitions_for(topic) for topic in set(topics)))


async def send_all(producer: AIOKafkaProducer, records: Sequence[Record]) -> None:
    """Hand every record to the producer's accumulator without awaiting each delivery, then flush.

    Raises the first delivery error, so a benchmark never reports messages that were lost.
    """
    await prime_producer(producer, [topic for topic, _, _ in records])
    futures = [await producer.send(topic, value, key=key) for topic, key, value in records]
    await producer.flush()
    await asyncio.gather(*futures)


class OffsetProbe:
    """Sums of topics' end offsets: how many records have arrived, without consuming them.

    Counting by end offsets costs the bench almost no CPU, so it does not steal
    time from the services it measures on a small machine.
    """

    def __init__(self, bootstrap: str, partitions: int) -> None:
        self.partitions = partitions
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)

    async def __aenter__(self) -> OffsetProbe:
        await self._consumer.start()
        await self._admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def committed(self, group: str) -> int:
        """Sum of a consumer group's committed offsets: records it has finished with (0: none yet)."""
        offsets = await self._admin.list_consumer_group_offsets(group)
        return int(sum(meta.offset for meta in offsets.values() if meta.offset > 0))

    async def prime(self, topics: Sequence[str]) -> None:
        """Learn every topic's partition leaders at once, so later :meth:`total` calls answer promptly.

        The consumer learns an unknown topic only when an offset request fails on it, one topic per
        retry (~0.1 s each): 480 new topics would outlast the request timeout. Asking for all of
        them concurrently lets one metadata refresh cover them; it also waits for new topics' leaders.
        """
        await asyncio.gather(*(self._consumer.end_offsets([TopicPartition(t, 0)]) for t in topics))

    async def total(self, topics: Sequence[str]) -> int:
        tps = [TopicPartition(t, p) for t in topics for p in range(self.partitions)]
        ends = await self._consumer.end_offsets(tps)
        return int(sum(ends.values()))

    async def wait_for(
        self, topics: Sequence[str], target: int, timeout_s: float, poll_s: float = 0.02
    ) -> float | None:
        """Monotonic time at which the topics' total reached ``target``; None on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await self.total(topics) >= target:
                return time.monotonic()
            await asyncio.sleep(poll_s)
        return None
