"""Stage 4: one ``arbstream worker`` — backlog drain rate, per-tick logic cost, latency at fixed loads.

Drain: the worker is paused (SIGSTOP) while N ticks are produced, so they form a
real backlog, then resumed; the rate is N over the time until the changelog
shows all N processed. The worker's own logic is also timed in-process on the
same ticks without Faust and Kafka, so the framework's share is visible.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from arbstream.bench.common import Result, median, not_measured
from arbstream.bench.kafka_io import OffsetProbe
from arbstream.bench.latency import latency_run
from arbstream.bench.procs import Service
from arbstream.bench.ticks import TickSource
from arbstream.bench.worker import processed, produce_ticks, start_ready, wait_processed, worker_env
from arbstream.kafka import ensure_topics
from schemas.market import Funding, decode_tick

DISLOCATE_EVERY = 200
"""Backlog ticks carry a dislocation every 200 ticks, so drains include alert and episode work."""


async def _drain_run(
    bootstrap: str, probe: OffsetProbe, source: TickSource, ns: str, worker: Service, n: int
) -> Result:
    before = await processed(probe, ns)
    worker.signal(signal.SIGSTOP)
    try:
        await produce_ticks(bootstrap, source, ns, n, DISLOCATE_EVERY)
    finally:
        worker.signal(signal.SIGCONT)
    resumed, cpu0 = time.monotonic(), worker.cpu_seconds()
    done = await wait_processed(probe, ns, before + n, timeout_s=max(60.0, n / 100))
    if done is None:
        return {"ticks_per_s": float("nan"), "worker_cpu": float("nan"), "error": "backlog not drained in time"}
    return {"ticks_per_s": n / (done - resumed), "worker_cpu": (worker.cpu_seconds() - cpu0) / (done - resumed)}


def logic_only(source: TickSource, count: int) -> float:
    """Ticks/s of the detect agent's body (decode, state, process_quote, encode) on one core, no Faust."""
    from arbstream.kafka import symbol_of
    from processors.app import StateCache
    from processors.arbitrage import process_quote
    from processors.settings import WorkerSettings

    config = WorkerSettings(min_ticks=1, cooldown_s=0).arb_config()
    payloads = [(key, value) for _, key, value in source.records("", count, time.time_ns(), 1_000_000, DISLOCATE_EVERY)]
    cache = StateCache()
    table: dict[bytes, bytes] = {}
    started = time.perf_counter()
    for instrument_id, payload in payloads:
        key = symbol_of(instrument_id)
        event = decode_tick(payload)
        state = cache.get(key, table.get(key))
        if not isinstance(event, Funding):
            process_quote(key.decode(), state, event, {}, event.receipt_ts_ns, config)
        else:
            state.funding[event.instrument_id] = event
        table[key] = cache.put(key, state)
    return count / (time.perf_counter() - started)


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
    env = worker_env(bootstrap, namespace, work_dir, partitions)
    worker = Service(["worker"], env, work_dir / "worker.log")
    try:
        async with OffsetProbe(bootstrap, partitions) as probe:
            ready_s = await start_ready(worker, probe, bootstrap, source, namespace)
            if ready_s is None:
                return not_measured(f"`arbstream worker` never processed a tick; log tail:\n{worker.log_tail()}")
            drains = [
                await _drain_run(bootstrap, probe, source, namespace, worker, drain_ticks) for _ in range(drain_runs)
            ]
            ladder = await _latency_ladder(
                bootstrap, probe, source, worker, namespace, loads, duration_s, latency_runs, partitions
            )
    finally:
        worker.stop()
    logic = [logic_only(source, min(drain_ticks, 20_000)) for _ in range(drain_runs)]
    return {
        "unit": "ticks/s per worker process",
        "startup_to_first_tick_s": ready_s,
        "drain_ticks_per_s": median([d["ticks_per_s"] for d in drains]),
        "drain_worker_cpu": median([d["worker_cpu"] for d in drains]),
        "drain_ticks_per_run": drain_ticks,
        "drain_runs": [d["ticks_per_s"] for d in drains],
        "logic_only_ticks_per_s": median(logic),
        "latency": ladder,
    }
