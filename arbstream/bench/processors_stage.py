"""Stage 4: one ``arbstream worker`` — backlog drain rate, per-tick logic cost, latency at fixed loads.

Drain: the worker is paused (SIGSTOP) while N ticks are produced, so they form a
real backlog, then resumed; the rate is N over the time until the changelog
shows all N processed. The worker's own logic is also timed in-process on the
same ticks without Faust and Kafka, so the framework's share is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from arbstream.bench.common import Result, median, not_measured
from arbstream.bench.kafka_io import OffsetProbe
from arbstream.bench.latency import latency_run
from arbstream.bench.procs import Service
from arbstream.bench.ticks import TickSource
from arbstream.bench.worker import (
    DRAIN_STEP_NS,
    READY_TICKS,
    changelog,
    processed,
    produce_ticks,
    start_ready,
    topic_bytes,
    wait_processed,
    worker_env,
    worker_stats,
)
from plumbing.kafka import ensure_topics
from schemas.arbitrage import WorkerStats
from schemas.topics import base_of_ticks_topic

DISLOCATE_EVERY = 200
"""Backlog ticks carry a dislocation every 200 ticks, so drains include alert and episode work."""
JUMP_OFF = {"ARBSTREAM_WORKER_SKIP_BEHIND_MS": "0"}
"""The latency ladder and the first overload run: no backlog jump (comparable with the runs before it
became the worker's default), whatever the caller's environment says."""
EXACT = {"ARBSTREAM_WORKER_CONFLATE_AFTER_MS": "0", **JUMP_OFF}
"""Drains measure processing every tick: a backlog is exactly what a conflating or jumping worker would skip."""
JUMP_BEHIND_MS = 200
"""The second overload run's ``worker_skip_behind_ms`` (the backlog jump, decision 0034)."""
SCALE_OUT_BASES = ("BTC", "ETH", "SOL", "PEPE")
SCALE_OUT_PARTITIONS = 4
"""Faust's assignor hands out partition numbers: 4 split evenly between 2 workers (3 would not)."""
SETTLE_S = 3.0
THROTTLE_RUN_S, THROTTLE_STOP_S = 0.010, 0.030


async def _drain_run(
    bootstrap: str, probe: OffsetProbe, source: TickSource, ns: str, workers: list[Service], n: int
) -> Result:
    """Conflation is off for drains (``worker_env(..., conflate=False)``): every tick is processed."""
    before = await processed(probe, ns)
    for worker in workers:
        worker.signal(signal.SIGSTOP)
    try:
        records = await produce_ticks(bootstrap, source, ns, n, DISLOCATE_EVERY)
    finally:
        for worker in workers:
            worker.signal(signal.SIGCONT)
    resumed, cpu0 = time.monotonic(), sum(w.cpu_seconds() for w in workers)
    done = await wait_processed(probe, ns, before + records, timeout_s=max(60.0, n / 100))
    if done is None:
        return {"ticks_per_s": float("nan"), "worker_cpu": float("nan"), "error": "backlog not drained in time"}
    cpu = sum(w.cpu_seconds() for w in workers) - cpu0
    return {"ticks_per_s": n / (done - resumed), "worker_cpu": cpu / (done - resumed), "ticks_per_record": n / records}


@dataclass(frozen=True)
class _Record:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


def logic_only(source: TickSource, count: int) -> float:
    """Ticks per CPU-second of the worker's per-tick path (decode, checks, state, pre-filter, exact
    arithmetic), no Kafka."""
    from processors.engine import Engine
    from processors.settings import WorkerSettings

    settings = WorkerSettings(min_ticks=1, cooldown_s=0)
    engine = Engine(settings.arb_config(), settings.funding_config(), conflate_after_ms=0)
    now_ms = time.time_ns() // 1_000_000
    batches = source.batches("", count, time.time_ns(), DRAIN_STEP_NS, DISLOCATE_EVERY)
    records = [
        (base_of_ticks_topic(topic), _Record(offset, key, value, now_ms))
        for offset, (topic, key, value, _) in enumerate(batches)
    ]
    # One record at a time (a publisher window's ticks of one symbol), as a worker that keeps up sees them.
    started = time.process_time()  # CPU seconds: steadier than wall time on a shared machine
    for base, record in records:
        engine.apply_batch(base, [record], {}, now_ms)
    return count / (time.process_time() - started)


async def _latency_ladder(
    bootstrap: str,
    probe: OffsetProbe,
    source: TickSource,
    worker: Service,
    ns: str,
    loads: tuple[int, ...],
    duration_s: float,
    runs: int,
    partitions: int,
) -> list[Result]:
    """Each load ``runs`` times, median per figure; stops after the first load the worker cannot sustain.

    A saturated run is not repeated: the next run would start on its leftover backlog.
    """
    ladder = []
    for rate in loads:
        results: list[Result] = []
        while len(results) < runs and not (results and results[-1]["saturated"]):
            results.append(await latency_run(bootstrap, probe, source, worker, ns, rate, duration_s, partitions))
        ladder.append(_merge_runs(results))
        if ladder[-1]["saturated"]:
            break
    return ladder


def _merge_runs(results: list[Result]) -> Result:
    def med(path: tuple[str, ...]) -> float:
        values: list[float] = []
        for r in results:
            value = r
            for part in path:
                value = value[part]
            if isinstance(value, int | float):
                values.append(float(value))
        return median(values)

    merged: Result = {"offered_ticks_per_s": results[0]["offered_ticks_per_s"], "runs": len(results)}
    for key in ("sent_ticks_per_s", "processed_ticks_per_s", "catch_up_s", "worker_cpu"):
        merged[key] = med((key,))
    merged["saturated"] = any(r["saturated"] for r in results)
    for block in ("tick_to_topic", "in_worker"):
        merged[block] = {k: med((block, k)) for k in ("p50_ms", "p99_ms", "p99_9_ms", "max_ms")}
        merged[block]["samples"] = sum(r[block]["samples"] for r in results)
    return merged


async def _throttle(worker: Service, run_s: float, stop_s: float) -> None:
    """Let the worker run ``run_s`` out of every ``run_s + stop_s`` (SIGSTOP/SIGCONT), until cancelled."""
    try:
        while True:
            await asyncio.sleep(run_s)
            worker.signal(signal.SIGSTOP)
            await asyncio.sleep(stop_s)
            worker.signal(signal.SIGCONT)
    finally:
        worker.signal(signal.SIGCONT)


async def _overload(
    bootstrap: str,
    probe: OffsetProbe,
    source: TickSource,
    worker: Service,
    ns: str,
    drain_rate: float,
    duration_s: float,
    parts: int,
) -> Result:
    """3x what the worker sustains, offered; conflated ticks counted from worker-stats.

    One Python producer on this machine cannot offer 3x an unthrottled worker's drain rate, so
    the worker gets a quarter of the CPU time (run 10 ms, stopped 30 ms) and is offered 3x a
    quarter of its drain rate. Dislocations are held 30 ms (see ``ticks.STICKY_S``).
    """
    rate = int(3 * drain_rate * THROTTLE_RUN_S / (THROTTLE_RUN_S + THROTTLE_STOP_S))
    before = await worker_stats(bootstrap, ns)
    throttle = asyncio.create_task(_throttle(worker, THROTTLE_RUN_S, THROTTLE_STOP_S))
    try:
        run = await latency_run(bootstrap, probe, source, worker, ns, rate, duration_s, parts, sticky=True)
    finally:
        throttle.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await throttle
    after = await worker_stats(bootstrap, ns)

    def total(stats: dict[str, WorkerStats], field: str) -> int:
        return sum(int(getattr(s, field)) for s in stats.values())

    fields = ("processed", "conflated", "rebuilt", "rejected", "skipped_records")
    counts = {f: total(after, f) - total(before, f) for f in fields}
    return {**run, "worker_cpu_share": THROTTLE_RUN_S / (THROTTLE_RUN_S + THROTTLE_STOP_S), "worker_counts": counts}


@contextlib.asynccontextmanager
async def _fresh_worker(
    bootstrap: str, ns: str, work_dir: Path, source: TickSource, parts: int, log_name: str, **extra: str
) -> AsyncIterator[tuple[Service, OffsetProbe, bool]]:
    """A worker on namespace ``ns``'s own topics, fed until it processes: (worker, probe, ready)."""
    await ensure_topics(bootstrap, source.topics(ns), parts)
    worker = Service(["worker"], worker_env(bootstrap, ns, work_dir, parts, **extra), work_dir / log_name)
    try:
        async with OffsetProbe(bootstrap, parts) as probe:
            yield worker, probe, await start_ready(worker, probe, bootstrap, source, ns) is not None
    finally:
        worker.stop()


async def _overload_jumping(
    bootstrap: str, namespace: str, work_dir: Path, source: TickSource, drain_rate: float, duration_s: float, parts: int
) -> Result:
    """The overload run again, on a fresh worker that jumps over a backlog older than ``JUMP_BEHIND_MS``."""
    ns = f"{namespace}-jump"
    jumping = {"ARBSTREAM_WORKER_SKIP_BEHIND_MS": str(JUMP_BEHIND_MS)}
    async with _fresh_worker(bootstrap, ns, work_dir, source, parts, "worker-jump.log", **jumping) as started:
        worker, probe, ready = started
        if not ready:
            return not_measured(f"`arbstream worker` never processed a tick; log tail:\n{worker.log_tail()}")
        run = await _overload(bootstrap, probe, source, worker, ns, drain_rate, duration_s, parts)
    return {**run, "skip_behind_ms": JUMP_BEHIND_MS}


async def _scale_out(
    bootstrap: str, namespace: str, work_dir: Path, source: TickSource, n: int, runs: int, parts: int
) -> Result:
    """Drain rate with 1 then 2 workers in one group, on ``parts`` partitions per tick topic.

    On the two-symbol bench mix it uses 4 symbols instead (2 are too few to split evenly).
    """
    if source.order is None:
        source = TickSource.build(SCALE_OUT_BASES)
    bases = sorted({i.base for i in source.instruments})
    rates: Result = {"bases": bases if len(bases) <= len(SCALE_OUT_BASES) else [f"{len(bases)} bases"]}
    rates["partitions"] = parts
    for count in (1, 2):
        ns = f"{namespace}-x{count}"
        await ensure_topics(bootstrap, source.topics(ns), parts)
        env = worker_env(bootstrap, ns, work_dir, parts, ARBSTREAM_SYMBOLS=",".join(bases[:4]), **EXACT)
        workers = [Service(["worker"], env, work_dir / f"scale-{count}-{i}.log") for i in range(count)]
        try:
            async with OffsetProbe(bootstrap, parts) as probe:
                for extra in workers[1:]:
                    extra.start()
                if await start_ready(workers[0], probe, bootstrap, source, ns) is None:
                    return not_measured(f"workers never processed; log tail:\n{workers[0].log_tail()}")
                await asyncio.sleep(SETTLE_S)  # every member joined and restored: one stable assignment
                drains = [await _drain_run(bootstrap, probe, source, ns, workers, n) for _ in range(runs)]
        finally:
            for worker in workers:
                worker.stop()
        rates[f"workers_{count}"] = {
            "drain_ticks_per_s": median([d["ticks_per_s"] for d in drains]),
            "workers_cpu": median([d["worker_cpu"] for d in drains]),
            "drain_runs": [d["ticks_per_s"] for d in drains],
        }
    rates["speedup"] = rates["workers_2"]["drain_ticks_per_s"] / rates["workers_1"]["drain_ticks_per_s"]
    return rates


async def _market_drain(bootstrap: str, namespace: str, work_dir: Path, n: int, runs: int, parts: int) -> Result:
    """Backlog drain on the simulator's whole market (480 bases, ~4k instruments, heavy-tailed rates)."""
    source = TickSource.market_mix()
    ns = f"{namespace}-market"
    async with _fresh_worker(bootstrap, ns, work_dir, source, parts, "worker-market.log", **EXACT) as started:
        worker, probe, ready = started
        if not ready:
            return not_measured(f"worker never processed the market mix; log tail:\n{worker.log_tail()}")
        drains = [await _drain_run(bootstrap, probe, source, ns, [worker], n) for _ in range(runs)]
    return {
        "bases": len({i.base for i in source.instruments}),
        "instruments": len(source.instruments),
        "drain_ticks_per_s": median([d["ticks_per_s"] for d in drains]),
        "drain_worker_cpu": median([d["worker_cpu"] for d in drains]),
        "drain_runs": [d["ticks_per_s"] for d in drains],
        "drain_ticks_per_record": median([d.get("ticks_per_record", math.nan) for d in drains]),
        "logic_only_ticks_per_cpu_s": median([logic_only(source, min(n, 20_000)) for _ in range(runs)]),
    }


async def run_processors_stage(
    bootstrap: str,
    namespace: str,
    work_dir: Path,
    source: TickSource,
    *,
    drain_ticks: int,
    drain_runs: int,
    loads: tuple[int, ...],
    duration_s: float,
    latency_runs: int,
    partitions: int,
) -> Result:
    await ensure_topics(bootstrap, source.topics(namespace), partitions)
    exact = worker_env(bootstrap, namespace, work_dir, partitions, **EXACT)
    live = worker_env(bootstrap, f"{namespace}-live", work_dir, partitions, **JUMP_OFF)
    worker = Service(["worker"], exact, work_dir / "worker.log")
    try:
        async with OffsetProbe(bootstrap, partitions) as probe:
            ready_s = await start_ready(worker, probe, bootstrap, source, namespace)
            if ready_s is None:
                return not_measured(f"`arbstream worker` never processed a tick; log tail:\n{worker.log_tail()}")
            drains = [
                await _drain_run(bootstrap, probe, source, namespace, [worker], drain_ticks) for _ in range(drain_runs)
            ]
            changelog_records, changelog_size = await topic_bytes(bootstrap, changelog(namespace)[0])
    finally:
        worker.stop()
    handled = READY_TICKS + drain_ticks * len(drains)  # ticks: committed offsets count records
    drain_rate = median([d["ticks_per_s"] for d in drains])
    ns_live = f"{namespace}-live"
    await ensure_topics(bootstrap, source.topics(ns_live), partitions)
    worker = Service(["worker"], live, work_dir / "worker-live.log")
    try:
        async with OffsetProbe(bootstrap, partitions) as probe:
            if await start_ready(worker, probe, bootstrap, source, ns_live) is None:
                return not_measured(f"`arbstream worker` never processed a tick; log tail:\n{worker.log_tail()}")
            ladder = await _latency_ladder(
                bootstrap, probe, source, worker, ns_live, loads, duration_s, latency_runs, partitions
            )
            overload = (
                await _overload(bootstrap, probe, source, worker, ns_live, drain_rate, duration_s, partitions)
                | {"skip_behind_ms": 0}
                if math.isfinite(drain_rate)
                else not_measured("no drain rate to triple")
            )
    finally:
        worker.stop()
    jumping = (
        await _overload_jumping(bootstrap, namespace, work_dir, source, drain_rate, duration_s, partitions)
        if math.isfinite(drain_rate)
        else not_measured("no drain rate to triple")
    )
    scale = await _scale_out(
        bootstrap, namespace, work_dir, source, drain_ticks, drain_runs, max(SCALE_OUT_PARTITIONS, partitions)
    )
    # On the market mix the drain above is already the whole market's.
    market = (
        await _market_drain(bootstrap, namespace, work_dir, drain_ticks, drain_runs, partitions)
        if source.order is None
        else {}
    )
    logic = [logic_only(source, min(drain_ticks, 20_000)) for _ in range(drain_runs)]
    return {
        "unit": "ticks/s per worker process",
        "bases": len({i.base for i in source.instruments}),
        "instruments": len(source.instruments),
        "startup_to_first_tick_s": ready_s,
        "drain_ticks_per_s": drain_rate,
        "drain_worker_cpu": median([d["worker_cpu"] for d in drains]),
        "drain_ticks_per_run": drain_ticks,
        "drain_runs": [d["ticks_per_s"] for d in drains],
        "drain_ticks_per_record": median([d.get("ticks_per_record", math.nan) for d in drains]),
        "changelog_records": changelog_records,
        "changelog_bytes_per_tick": changelog_size / handled if handled else math.nan,
        "logic_only_ticks_per_cpu_s": median(logic),
        "latency": ladder,
        "overload": overload,
        "overload_jumping": jumping,
        "scale_out": scale,
        "market_mix": market,
    }
