"""An ``arbstream worker`` under test, and how the bench knows what it has processed.

Every tick the worker processes writes its symbol's row of the ``symbols``
table exactly once, and every row write is one record on the table's changelog
topic. So the changelog's end offsets count processed ticks, exactly, without
reading the worker's logs or waiting for its offset commits (every 2.8 s).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from arbstream.bench.common import BASES
from arbstream.bench.kafka_io import OffsetProbe, make_producer, send_all
from arbstream.bench.procs import Service, service_env
from arbstream.bench.ticks import TickSource
from processors.app import SYMBOLS_TABLE
from schemas.topics import topic_name

APP_NAME = "arbstream"
READY_TICKS = 200
READY_TIMEOUT_S = 90.0


def changelog(namespace: str) -> list[str]:
    """The symbols table's changelog topic (Faust names it ``<app id>-<table>-changelog``)."""
    return [f"{topic_name(APP_NAME, namespace)}-{SYMBOLS_TABLE}-changelog"]


def worker_env(bootstrap: str, namespace: str, work_dir: Path, partitions: int, **extra: str) -> dict[str, str]:
    """Alert on every opening (one tick, no cooldown) so the latency stage sees every planted dislocation."""
    return service_env(
        bootstrap,
        namespace,
        ARBSTREAM_APP_NAME=APP_NAME,
        ARBSTREAM_SYMBOLS=",".join(BASES),
        ARBSTREAM_MIN_TICKS="1",
        ARBSTREAM_COOLDOWN_S="0",
        ARBSTREAM_MIN_PERSIST_MS="0",
        ARBSTREAM_TOPIC_PARTITIONS=str(partitions),
        ARBSTREAM_WORKER_DATA_DIR=str(work_dir / f"faust-{namespace}"),
        ARBSTREAM_WORKER_WEB_ENABLED="false",
        **extra,
    )


async def processed(probe: OffsetProbe, namespace: str) -> int:
    """Ticks processed so far (0 until the worker has created its changelog)."""
    try:
        return await probe.total(changelog(namespace))
    except Exception:  # noqa: BLE001 - the worker creates the topic at start; not there yet
        return 0


async def wait_processed(probe: OffsetProbe, namespace: str, target: int, timeout_s: float) -> float | None:
    """Monotonic time the worker had processed ``target`` ticks in total; None on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await processed(probe, namespace) >= target:
            return time.monotonic()
        await asyncio.sleep(0.02)
    return None


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
