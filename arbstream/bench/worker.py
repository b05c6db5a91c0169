"""An ``arbstream worker`` under test, and how the bench knows what it has processed.

The worker commits, per tick partition, the offset after the last record it has finished
with (every tick in it processed, conflated, rebuilt, forwarded or rejected), and only once
what that record produced is on the broker. Records are per-symbol batches of ticks, as
ingest publishes them, so the group's committed offsets count *records*: the bench counts the
records it writes and converts back to ticks. The bench has the worker commit every
``COMMIT_INTERVAL_MS`` (production default 500 ms), which bounds the resolution of every "done"
time below.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from arbstream.bench.common import BASES
from arbstream.bench.kafka_io import OffsetProbe, make_producer, send_all
from arbstream.bench.procs import Service, service_env
from arbstream.bench.ticks import TickSource
from schemas.arbitrage import WorkerStats, decode_worker_stats
from schemas.topics import WORKER_STATS, symbols_changelog, topic_name

APP_NAME = "arbstream"
READY_TICKS = 200
DRAIN_STEP_NS = 100_000
"""Backlog ticks are 100 µs apart in receipt time (10k ticks/s of event time): 50 ticks per
publisher window, so records hold ~25 ticks per symbol on the two-symbol bench market."""
READY_TIMEOUT_S = 90.0
COMMIT_INTERVAL_MS = 50


def changelog(namespace: str) -> list[str]:
    """The worker's per-symbol state topic (compacted)."""
    return [symbols_changelog(APP_NAME, namespace)]


def group(namespace: str) -> str:
    return topic_name(APP_NAME, namespace)


def worker_env(bootstrap: str, namespace: str, work_dir: Path, partitions: int, **extra: str) -> dict[str, str]:
    """Alert on every opening (one tick, no cooldown) so the latency stage sees every planted dislocation."""
    defaults = {
        "ARBSTREAM_APP_NAME": APP_NAME,
        "ARBSTREAM_SYMBOLS": ",".join(BASES),
        "ARBSTREAM_MIN_TICKS": "1",
        "ARBSTREAM_COOLDOWN_S": "0",
        "ARBSTREAM_MIN_PERSIST_MS": "0",
        "ARBSTREAM_TOPIC_PARTITIONS": str(partitions),
        "ARBSTREAM_WORKER_COMMIT_INTERVAL_MS": str(COMMIT_INTERVAL_MS),
    }
    return service_env(bootstrap, namespace, **{**defaults, **extra})


async def processed(probe: OffsetProbe, namespace: str) -> int:
    """Records the worker group has finished with so far (0 until it first commits)."""
    try:
        return await probe.committed(group(namespace))
    except Exception:  # noqa: BLE001 - the group does not exist before the worker joins
        return 0


async def wait_processed(probe: OffsetProbe, namespace: str, target: int, timeout_s: float) -> float | None:
    """Monotonic time the worker had processed ``target`` records in total; None on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await processed(probe, namespace) >= target:
            return time.monotonic()
        await asyncio.sleep(0.02)
    return None


async def worker_stats(bootstrap: str, namespace: str) -> dict[str, WorkerStats]:
    """The latest ``worker-stats`` record of every worker (their counters: processed, conflated, ...)."""
    consumer = AIOKafkaConsumer(
        topic_name(WORKER_STATS, namespace), bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    latest: dict[str, WorkerStats] = {}
    try:
        while batch := await consumer.getmany(timeout_ms=1_000):
            for records in batch.values():
                for record in records:
                    stats = decode_worker_stats(record.value or b"")
                    latest[stats.worker_id] = stats
    finally:
        await consumer.stop()
    return latest


async def topic_bytes(bootstrap: str, topic: str) -> tuple[int, int]:
    """(records, bytes of keys + values) of a whole topic, read to its end."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    count = size = 0
    try:
        while batch := await consumer.getmany(timeout_ms=1_000, max_records=50_000):
            for records in batch.values():
                count += len(records)
                size += sum(len(r.key or b"") + len(r.value or b"") for r in records)
    finally:
        await consumer.stop()
    return count, size


async def produce_ticks(bootstrap: str, source: TickSource, namespace: str, count: int, dislocate_every: int) -> int:
    """``count`` pre-encoded ticks as one burst, event times 100 µs apart ending now (all fresh),
    batched per symbol and publisher window; returns the number of records written."""
    start_ns = time.time_ns() - count * DRAIN_STEP_NS
    batches = source.batches(namespace, count, start_ns, DRAIN_STEP_NS, dislocate_every)
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await send_all(producer, [(topic, key, value) for topic, key, value, _ in batches])
    finally:
        await producer.stop()
    return len(batches)


async def start_ready(
    service: Service, probe: OffsetProbe, bootstrap: str, source: TickSource, namespace: str
) -> float | None:
    """Start the worker and feed it until it processes; seconds from start to first processing, None if never."""
    started = time.monotonic()
    service.start()
    before = await processed(probe, namespace)
    records = await produce_ticks(bootstrap, source, namespace, READY_TICKS, 0)
    done = await wait_processed(probe, namespace, before + records, READY_TIMEOUT_S)
    return None if done is None else done - started
