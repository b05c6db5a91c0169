"""An ``arbstream worker`` under test, and how the bench knows what it has processed.

The worker commits, per tick partition, the offset after the last record it has finished
with (processed, conflated, rebuilt, forwarded or rejected: every record ends in one of
them), and only once what that record produced is on the broker. So the group's committed
offsets count handled ticks exactly, without reading the worker's logs; the bench has the
worker commit every ``COMMIT_INTERVAL_MS`` (production default 500 ms), which bounds the
resolution of every "done" time below.
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
    """Ticks the worker group has finished with so far (0 until it first commits)."""
    try:
        return await probe.committed(group(namespace))
    except Exception:  # noqa: BLE001 - the group does not exist before the worker joins
        return 0


async def wait_processed(probe: OffsetProbe, namespace: str, target: int, timeout_s: float) -> float | None:
    """Monotonic time the worker had processed ``target`` ticks in total; None on timeout."""
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


async def produce_ticks(bootstrap: str, source: TickSource, namespace: str, count: int, dislocate_every: int) -> None:
    """``count`` pre-encoded ticks as one burst, event times 100 µs apart ending now (all fresh)."""
    step_ns = 100_000
    records = source.records(namespace, count, time.time_ns() - count * step_ns, step_ns, dislocate_every)
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await send_all(producer, records)
    finally:
        await producer.stop()


async def start_ready(
    service: Service, probe: OffsetProbe, bootstrap: str, source: TickSource, namespace: str
) -> float | None:
    """Start the worker and feed it until it processes; seconds from start to first processing, None if never."""
    started = time.monotonic()
    service.start()
    before = await processed(probe, namespace)
    await produce_ticks(bootstrap, source, namespace, READY_TICKS, 0)
    done = await wait_processed(probe, namespace, before + READY_TICKS, READY_TIMEOUT_S)
    return None if done is None else done - started
