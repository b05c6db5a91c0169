"""Stage ``market``: the whole-market mix end to end — ingest's publisher -> Kafka -> ``arbstream worker``
-> ``opportunities``, on an offered-rate ladder until the worker saturates, then 3× what it sustained.

The ingest side is a separate process (:mod:`arbstream.bench.market_feed`) publishing the
simulator's generated market (480 bases, heavy-tailed per-instrument rates) through ingest's own
``Publisher``: one ``TickBatch`` record per symbol and 5 ms window. The worker is the real
``arbstream worker`` (Faust) with its production conflation. Per step: offered and sent ticks/s,
what the worker processed, tick→opportunity p50/p99/p99.9, the worker's own counters (processed,
conflated, ...) from ``worker-stats``, and CPU cores of the feed, worker, broker and bench
processes (and per 10k ticks/s, to size a cluster). A step is saturated when the backlog grows
during it or the worker needs more than ``BACKLOG_TOLERANCE_S`` to catch up after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from arbstream.bench.common import Result, latency_summary, not_measured
from arbstream.bench.kafka_io import OffsetProbe
from arbstream.bench.latency import AlertCollector, opportunity_latencies
from arbstream.bench.machine import jit_cpu_s, pid_cpu_s
from arbstream.bench.market_feed import FeedProcess
from arbstream.bench.procs import Service
from arbstream.bench.ticks import TickSource
from arbstream.bench.worker import group, processed, start_ready, worker_env, worker_stats
from plumbing.kafka import ensure_topics
from schemas.arbitrage import WorkerStats
from schemas.topics import OPPORTUNITIES, topic_name

BACKLOG_TOLERANCE_S = 1.0
"""Saturated: the worker needs longer than this after the last tick to catch up."""
GROWTH_TOLERANCE = 0.10
"""Saturated: the backlog grew during the step by more than this share of the records offered."""
SAMPLE_S = 0.5
DISLOCATIONS_PER_S = 20
OVERLOAD_FACTOR = 3
PRODUCER_SHORTFALL = 0.9
"""The feed sent under this share of the offered rate: the step measures the feed, not the worker."""
SETTLE_TIMEOUT_S = 120.0
IDLE_S = 3.0
COUNTERS = ("processed", "conflated", "rebuilt", "rejected", "skipped_records")
PRODUCTION_COMMITS = {"ARBSTREAM_WORKER_COMMIT_INTERVAL_MS": "500"}
"""The production commit interval: the other stages commit every 50 ms for a finer "done" time,
but over the market's 1,440 partitions a commit takes longer than that and never stops. Catch-up
times are therefore known to ±0.5 s."""


@dataclass(frozen=True)
class LadderPlan:
    start: int
    cap: int
    floor: int
    step_s: float
    catch_up_s: float
    """Longest wait for the worker to catch up after a step (a saturated one may never)."""


@dataclass(frozen=True)
class StepOutcome:
    rate: int
    saturated: bool
    producer_limited: bool = False


def next_rate(steps: Sequence[StepOutcome], plan: LadderPlan) -> int | None:
    """The next offered rate: double while the worker keeps up, halve while it never has; None: done.

    The ladder ends at the first saturated step above a sustained one (the knee), when the feed
    cannot offer the rate (its limit, not the worker's), or outside ``floor .. cap``.
    """
    if not steps:
        return plan.start
    last = steps[-1]
    if last.producer_limited:
        return None
    if not last.saturated:
        higher = last.rate * 2
        already_saturated = any(s.saturated and s.rate <= higher for s in steps)
        return higher if higher <= plan.cap and not already_saturated else None
    if any(not s.saturated for s in steps):
        return None
    lower = last.rate // 2
    return lower if lower >= plan.floor else None


def sustained_rate(steps: Sequence[StepOutcome]) -> int | None:
    """The highest offered rate the worker kept up with (None: it kept up with none)."""
    kept = [s.rate for s in steps if not s.saturated and not s.producer_limited]
    return max(kept) if kept else None


def overload_basis(sustained: int | None, processed_rates: Sequence[float]) -> int | None:
    """What the overload run triples: the sustained rate, or, when the worker kept up with no step
    (not even the floor), the most it processed on any step (its capacity as measured)."""
    if sustained:
        return sustained
    best = max((r for r in processed_rates if r > 0), default=0.0)
    return int(best) if best >= 1 else None


def slope(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (time, value) samples; 0 with fewer than two distinct times."""
    if len(samples) < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / len(samples)
    mean_v = sum(v for _, v in samples) / len(samples)
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread


def is_saturated(catch_up_s: float | None, backlog: Sequence[tuple[float, float]], records_per_s: float) -> bool:
    """Lag grows: no catch-up, a slow one, or a backlog that grew by a sizeable share of the offered
    records and ended above ``BACKLOG_TOLERANCE_S`` of them.

    The size condition matters: the group commits every 0.5 s, so the backlog seen from the broker
    is a sawtooth up to half a second of records high, and over a few samples its fitted slope can
    be steep while the worker keeps up.
    """
    if catch_up_s is None or catch_up_s > BACKLOG_TOLERANCE_S:
        return True
    if records_per_s <= 0 or not backlog:
        return False
    growing = slope(backlog) > GROWTH_TOLERANCE * records_per_s
    return growing and backlog[-1][1] > BACKLOG_TOLERANCE_S * records_per_s


def per_10k(cores: float, ticks_per_s: float) -> float:
    """CPU cores a stage spends per 10,000 ticks/s (what sizing a cluster needs)."""
    return cores / (ticks_per_s / 10_000) if ticks_per_s > 0 else float("nan")


def counter_deltas(before: dict[str, WorkerStats], after: dict[str, WorkerStats]) -> dict[str, int]:
    """Change of each counter summed over workers (a worker absent before counts from zero)."""

    def total(stats: dict[str, WorkerStats], name: str) -> int:
        return sum(int(getattr(s, name)) for s in stats.values())

    return {name: total(after, name) - total(before, name) for name in COUNTERS}


@dataclass
class _Pipeline:
    bootstrap: str
    namespace: str
    probe: OffsetProbe
    feed: FeedProcess
    worker: Service
    broker_pid: int | None
    topics: list[str]

    def cpu(self) -> dict[str, float]:
        jit = jit_cpu_s(self.broker_pid) if self.broker_pid else 0.0
        return {
            "feed": self.feed.cpu_seconds(),
            "worker": self.worker.cpu_seconds(),
            # Without its JIT compiler threads (reported as broker_jit): what a warm broker spends.
            "broker": pid_cpu_s(self.broker_pid) - jit if self.broker_pid else 0.0,
            "broker_jit": jit,
            "bench": time.process_time(),
        }

    async def backlog(self) -> int:
        """Tick records on the broker that the worker group has not finished with."""
        return await self.probe.total(self.topics) - await processed(self.probe, self.namespace)

    async def settle(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await self.backlog() <= 0:
                return True
            await asyncio.sleep(0.1)
        return False


async def _sample_backlog(pipe: _Pipeline, started: float, sink: list[tuple[float, float]]) -> None:
    while True:
        sink.append((time.monotonic() - started, float(await pipe.backlog())))
        await asyncio.sleep(SAMPLE_S)


async def _caught_up(pipe: _Pipeline, timeout_s: float) -> float | None:
    """Monotonic time the group had finished every record now on the broker; None on timeout."""
    target = await pipe.probe.total(pipe.topics)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await processed(pipe.probe, pipe.namespace) >= target:
            return time.monotonic()
        await asyncio.sleep(0.02)
    return None


async def run_step(pipe: _Pipeline, rate: int, plan: LadderPlan, sticky: bool = False) -> Result:
    """One offered rate for ``plan.step_s``: see the module doc for what is reported."""
    settled = await pipe.settle(SETTLE_TIMEOUT_S)
    stats_before = await worker_stats(pipe.bootstrap, pipe.namespace)
    alerts_topic = topic_name(OPPORTUNITIES, pipe.namespace)
    async with AlertCollector(pipe.bootstrap, alerts_topic, pipe.probe.partitions) as alerts:
        since_ns, cpu0, before = time.time_ns(), pipe.cpu(), await processed(pipe.probe, pipe.namespace)
        started = time.monotonic()
        backlog: list[tuple[float, float]] = []
        sampler = asyncio.create_task(_sample_backlog(pipe, started, backlog))
        try:
            fed = await pipe.feed.offer(rate, plan.step_s, DISLOCATIONS_PER_S, sticky)
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        sent_at = time.monotonic()
        done = await _caught_up(pipe, plan.catch_up_s)
        end = done if done is not None else time.monotonic()
        cpu1, handled_records = pipe.cpu(), await processed(pipe.probe, pipe.namespace) - before
        await asyncio.sleep(0.3)  # the last alerts are in flight to the collector
    await asyncio.sleep(1.2)  # one more worker-stats period, so the counters include the step's end
    counts = counter_deltas(stats_before, await worker_stats(pipe.bootstrap, pipe.namespace))
    # Committed offsets also pass the records a worker skipped (ARBSTREAM_WORKER_SKIP_BEHIND_MS).
    handled_records -= counts["skipped_records"]
    return _step_result(rate, fed, backlog, started, sent_at, done, end, cpu0, cpu1, handled_records, settled) | {
        "worker_counts": counts,
        **opportunity_figures(alerts.arrivals, since_ns),
    }


def _step_result(
    rate: int,
    fed: Result,
    backlog: list[tuple[float, float]],
    started: float,
    sent_at: float,
    done: float | None,
    end: float,
    cpu0: dict[str, float],
    cpu1: dict[str, float],
    handled_records: int,
    settled: bool,
) -> Result:
    records, ticks = max(1, int(fed["records"])), int(fed["sent_ticks"])
    handled = ticks * min(records, handled_records) / records  # committed offsets count records
    processed_rate = handled / (end - started)
    cores = {name: (cpu1[name] - cpu0[name]) / (end - started) for name in cpu0}
    catch_up_s = None if done is None else done - sent_at
    records_per_s = records / max(1e-9, sent_at - started)
    return {
        "offered_ticks_per_s": rate,
        "sent_ticks_per_s": fed["sent_ticks_per_s"],
        "ticks_per_record": ticks / records,
        "lost_ticks": fed["lost_ticks"],
        "conflated_in_ingest": fed.get("conflated_in_ingest", 0),
        "processed_ticks_per_s": processed_rate,
        "catch_up_s": catch_up_s,
        "backlog_growth_records_per_s": slope(backlog),
        "max_backlog_records": max((v for _, v in backlog), default=0.0),
        "saturated": is_saturated(catch_up_s, backlog, records_per_s),
        "producer_limited": fed["sent_ticks_per_s"] < PRODUCER_SHORTFALL * rate,
        "started_settled": settled,
        "cpu_cores": cores,
        "cpu_cores_per_10k_ticks_per_s": {name: per_10k(c, processed_rate) for name, c in cores.items()},
    }


def opportunity_figures(arrivals: list[tuple[int, bytes]], since_ns: int) -> Result:
    to_topic, in_worker = opportunity_latencies(arrivals, since_ns)
    return {"tick_to_opportunity": latency_summary(to_topic), "in_worker": latency_summary(in_worker)}


def _outcome(step: Result) -> StepOutcome:
    return StepOutcome(step["offered_ticks_per_s"], step["saturated"], step["producer_limited"])


async def idle_cores(pipe: _Pipeline) -> dict[str, float]:
    """CPU cores each process spends with no ticks at all, once caught up: what holding the
    market's partitions costs before the first tick (Faust's timers walk every partition)."""
    await pipe.settle(SETTLE_TIMEOUT_S)
    cpu0, started = pipe.cpu(), time.monotonic()
    await asyncio.sleep(IDLE_S)
    cpu1, elapsed = pipe.cpu(), time.monotonic() - started
    return {name: (cpu1[name] - cpu0[name]) / elapsed for name in cpu0}


async def _ladder(pipe: _Pipeline, plan: LadderPlan) -> list[Result]:
    steps: list[Result] = []
    while (rate := next_rate([_outcome(s) for s in steps], plan)) is not None:
        steps.append(await run_step(pipe, rate, plan))
    return steps


async def run_market_stage(
    bootstrap: str,
    namespace: str,
    work_dir: Path,
    source: TickSource,
    plan: LadderPlan,
    partitions: int,
    broker_pid: int | None,
) -> Result:
    topics = source.topics(namespace)
    await ensure_topics(bootstrap, topics, partitions)
    env = worker_env(bootstrap, namespace, work_dir, partitions, **PRODUCTION_COMMITS)
    worker = Service(["worker"], env, work_dir / "market-worker.log")
    feed = FeedProcess(bootstrap, namespace, work_dir / "market-feed.log")
    try:
        async with OffsetProbe(bootstrap, partitions) as probe:
            await probe.prime(topics)
            ready_s = await start_ready(worker, probe, bootstrap, source, namespace)
            if ready_s is None:
                return not_measured(f"the worker never processed the market mix; log tail:\n{worker.log_tail()}")
            hello = await feed.start()
            pipe = _Pipeline(bootstrap, namespace, probe, feed, worker, broker_pid, topics)
            # Unreported: a fresh broker compiles its hot paths in its first minute (see broker_jit),
            # competing for the machine's two cores with what the first steps measure.
            warm_up = await run_step(pipe, plan.start, plan)
            idle = await idle_cores(pipe)
            ladder = await _ladder(pipe, plan)
            sustained = sustained_rate([_outcome(s) for s in ladder])
            basis = overload_basis(sustained, [s["processed_ticks_per_s"] for s in ladder])
            overload = (
                await run_step(pipe, OVERLOAD_FACTOR * basis, plan, sticky=True)
                if basis
                else not_measured("the worker processed nothing on the ladder")
            )
    finally:
        feed.stop()
        worker.stop()
    return {
        "unit": "ticks/s end to end, one worker process",
        "bases": len({i.base for i in source.instruments}),
        "instruments": hello.get("instruments", len(source.instruments)),
        "partitions": partitions,
        "group": group(namespace),
        "startup_to_first_tick_s": ready_s,
        "feed_warm_up_s": hello.get("warm_up_s"),
        "idle_cpu_cores": idle,
        "warm_up_step": warm_up,
        "step_s": plan.step_s,
        "ladder": ladder,
        "sustained_ticks_per_s": sustained,
        "overload_basis_ticks_per_s": basis,
        "overload": overload,
    }
