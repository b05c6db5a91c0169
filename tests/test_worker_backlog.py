"""A worker far behind jumps over its stale backlog (``ARBSTREAM_WORKER_SKIP_BEHIND_MS``), on the real
broker and Faust's real consumer: every tick is either processed or counted as skipped, and the
group's committed offset still reaches the end of the partition (the jump is recorded as a gap in
Faust's acknowledgements: :mod:`processors.backlog` relies on a private Faust method for it).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from ingest.publisher import tick_records
from plumbing.kafka import symbol_partition, symbol_partitioner
from processors.app import prepare_topics
from processors.settings import WorkerSettings
from processors.topics import WorkerTopics
from schemas.arbitrage import decode_worker_stats
from schemas.topics import WORKER_STATS, topic_name
from tests.helpers import TopicWatcher, running
from tests.test_processors_pipeline import MS, tick, worker_env

pytestmark = pytest.mark.integration
BACKLOG = 6_000
"""Records of one tick each: far more than one fetch (128 KiB per partition, ~400 of them)."""


async def _send_stale_backlog(bootstrap: str, namespace: str, t0: int) -> None:
    """``BACKLOG`` records of ADA, stamped a minute ago in Kafka (a worker that fell that far behind)."""
    quotes = [tick("ADA", "binance", "1.000", "1.001", t0 + i * MS) for i in range(BACKLOG)]
    records = tick_records(quotes, namespace, max_ticks=1)
    minute_ago_ms = int(time.time() * 1000) - 60_000
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, partitioner=symbol_partitioner, linger_ms=5)
    await producer.start()
    try:
        for topic, key, value, _ in records:
            await producer.send(topic, value, key=key, timestamp_ms=minute_ago_ms)
        await producer.flush()
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    found = offsets.get(tp)
    return found.offset if found is not None else -1


async def test_a_stale_backlog_is_skipped_counted_and_committed_past(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    env = worker_env(kafka_bootstrap, namespace, tmp_path, "ADA") | {
        "ARBSTREAM_WORKER_POLL_RECORDS": "300",
        "ARBSTREAM_WORKER_BATCH_QUEUE": "1",
    }
    del env["ARBSTREAM_WORKER_SKIP_BEHIND_MS"]  # the product's default: on
    topic = topic_name("ticks.ADA", namespace)
    settings = WorkerSettings(
        kafka_bootstrap=kafka_bootstrap, namespace=namespace, symbols=["ADA"], topic_partitions=3
    )  # as worker_env
    await prepare_topics(kafka_bootstrap, settings)
    await _send_stale_backlog(kafka_bootstrap, namespace, time.time_ns())
    stats_topic = topic_name(WORKER_STATS, namespace)
    tp = TopicPartition(topic, symbol_partition(b"ADA", 3))
    with running(["worker"], env, tmp_path / "w.log"):
        async with TopicWatcher(kafka_bootstrap, [stats_topic]) as watcher:

            def all_accounted(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
                stats = [decode_worker_stats(r.value) for r in records]
                return any(s.processed + s.skipped_records == BACKLOG for s in stats)

            try:
                await watcher.wait_for(all_accounted, 60, "every backlog tick processed or skipped")
            except AssertionError as failure:
                last = [decode_worker_stats(r.value) for r in watcher.records][-1:]
                log_tail = (tmp_path / "w.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{failure}; last stats {last}\n{log_tail}") from None
            final = [decode_worker_stats(r.value) for r in watcher.records][-1]
            deadline = time.monotonic() + 30
            committed = -1
            while time.monotonic() < deadline and committed < BACKLOG:
                committed = await _committed(kafka_bootstrap, WorkerTopics.of(settings).group, tp)
                await asyncio.sleep(0.5)
    log = (tmp_path / "w.log").read_text(errors="replace")
    assert final.skipped_records > BACKLOG // 2, log[-3000:]  # most of it was never read
    assert final.processed + final.skipped_records == BACKLOG and final.conflated == 0
    assert committed == BACKLOG, f"committed offset stuck at {committed}\n{log[-3000:]}"
