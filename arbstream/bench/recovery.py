"""Stage 6: SIGKILL the worker, start a replacement in the same group, time until it processes again.

The total is measured from the kill to the replacement's first committed tick. The
worker's log splits it into phases: process start, joining the group, restoring (changelog
rows and the last seconds of ticks), and resuming. The replacement uses the dead worker's
static membership id (``ARBSTREAM_WORKER_INSTANCE_ID``), as a restarted pod or service
would: the group hands it the dead member's partitions at once instead of waiting out the
session timeout (``SESSION_TIMEOUT_S``, reported with the figure).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from datetime import datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from arbstream.bench.common import Result, median, not_measured
from arbstream.bench.kafka_io import OffsetProbe, make_producer, prime_producer
from arbstream.bench.procs import Service
from arbstream.bench.ticks import TickSource, stamped
from arbstream.bench.worker import changelog, processed, produce_ticks, start_ready, wait_processed, worker_env
from ingest.publisher import tick_records
from plumbing.kafka import ensure_topics

SESSION_TIMEOUT_S = 10
FEED_TICKS_PER_S = 100
"""Live ticks keep arriving during the outage, so "processing again" is observable."""
RESUME_TIMEOUT_S = 180.0

# aiokafka/Faust/worker log lines that mark the phases (first occurrence after the replacement starts).
PHASES = {
    "joining": re.compile(r"\(Re-\)joining group"),
    "joined": re.compile(r"Joined group"),
    "restoring": re.compile(r"Setting newly assigned partitions"),
    "restored": re.compile(r"Recovery\]: Restore complete"),
    "ready": re.compile(r"Recovery\]: Worker ready"),
}
_STAMP = re.compile(r"^\[?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]? ")
"""Faust's log lines start ``[2026-12-06 10:50:48,965] [pid] [INFO]``."""
INSTANCE_ID = "bench-recovery"


def phase_times(log: Path) -> dict[str, float]:
    """Wall-clock time (epoch seconds) of each phase's first log line."""
    found: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        stamp_match = _STAMP.match(line)
        if stamp_match is None:
            continue
        for phase, pattern in PHASES.items():
            if phase not in found and pattern.search(line):
                found[phase] = datetime.strptime(stamp_match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return found


def _breakdown(killed_wall: float, resumed_wall: float, phases: dict[str, float]) -> Result:
    def span(start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else end - start

    return {
        "start_to_join_s": span(killed_wall, phases.get("joining")),
        "group_wait_s": span(phases.get("joining"), phases.get("joined")),
        "table_restore_s": span(phases.get("restoring"), phases.get("restored")),
        "ready_to_first_tick_s": span(phases.get("ready"), resumed_wall),
    }


async def _feed(bootstrap: str, source: TickSource, namespace: str) -> None:
    """Ten ticks every 100 ms, one record per symbol (as ingest batches them)."""
    producer = make_producer(bootstrap)
    await producer.start()
    await prime_producer(producer, source.topics(namespace))
    sent = 0
    try:
        while True:
            ticks = [stamped(event, time.time_ns()) for _, event in source.events(FEED_TICKS_PER_S // 10, start=sent)]
            for topic, key, value, _ in tick_records(ticks, namespace):
                await producer.send(topic, value, key=key)
            sent += FEED_TICKS_PER_S // 10
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()


async def _replace(probe: OffsetProbe, victim: Service, replacement: Service, namespace: str) -> Result:
    """Kill ``victim``, start ``replacement``, and time until the replacement writes its first tick."""
    killed, killed_wall = time.monotonic(), time.time()
    victim.kill()
    replacement.start()
    # Count after the victim is gone (its last writes may still land for a moment); the
    # replacement needs well over a second to start, so it cannot have written yet.
    await asyncio.sleep(0.3)
    handled = await processed(probe, namespace)
    resumed = await wait_processed(probe, namespace, handled + 1, RESUME_TIMEOUT_S)
    if resumed is None:
        return {"recovery_s": float("nan"), "error": f"no tick processed in {RESUME_TIMEOUT_S:.0f}s"}
    resumed_wall = killed_wall + (resumed - killed)
    return {
        "recovery_s": resumed - killed,
        "changelog_records": await probe.total(changelog(namespace)),
        **_breakdown(killed_wall, resumed_wall, phase_times(replacement.log_path)),
    }


async def run_recovery(
    bootstrap: str, namespace: str, work_dir: Path, source: TickSource, ticks: int, runs: int, partitions: int
) -> Result:
    await ensure_topics(bootstrap, source.topics(namespace), partitions)
    env = worker_env(
        bootstrap,
        namespace,
        work_dir,
        partitions,
        ARBSTREAM_WORKER_SESSION_TIMEOUT_S=str(SESSION_TIMEOUT_S),
        ARBSTREAM_WORKER_INSTANCE_ID=INSTANCE_ID,
    )
    workers = [Service(["worker"], env, work_dir / f"recovery-worker-{n}.log") for n in range(runs + 1)]
    feeder: asyncio.Task[None] | None = None
    try:
        async with OffsetProbe(bootstrap, partitions) as probe:
            if await start_ready(workers[0], probe, bootstrap, source, namespace) is None:
                return not_measured(f"the first worker never processed a tick; log tail:\n{workers[0].log_tail()}")
            before = await processed(probe, namespace)
            records = await produce_ticks(bootstrap, source, namespace, ticks, 200)  # the table's history to restore
            await wait_processed(probe, namespace, before + records, max(60.0, ticks / 100))
            feeder = asyncio.create_task(_feed(bootstrap, source, namespace))
            results = [await _replace(probe, workers[n], workers[n + 1], namespace) for n in range(runs)]
            record_bytes = await _last_record_bytes(bootstrap, changelog(namespace)[0], partitions)
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        for worker in workers:
            worker.stop()
    keys = ("recovery_s", "start_to_join_s", "group_wait_s", "table_restore_s", "ready_to_first_tick_s")
    return {
        **{key: median([r[key] for r in results if isinstance(r.get(key), float)]) for key in keys},
        "session_timeout_s": SESSION_TIMEOUT_S,
        "changelog_records": results[-1].get("changelog_records"),
        "changelog_record_bytes": record_bytes,
        "runs": runs,
        "per_run": results,
    }


async def _last_record_bytes(bootstrap: str, topic: str, partitions: int) -> int | None:
    """Size of the newest changelog record: the whole symbol row, rewritten on every tick."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        tp = max(tps, key=lambda t: ends[t])
        if ends[tp] == 0:
            return None
        consumer.assign([tp])
        consumer.seek(tp, ends[tp] - 1)
        record = await asyncio.wait_for(consumer.getone(), 10)
        return len(record.value or b"") + len(record.key or b"")
    finally:
        await consumer.stop()
