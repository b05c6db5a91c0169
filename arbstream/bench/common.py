"""The benchmark plan (how much of everything, quick or full) and the statistics every stage uses."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from plumbing.errors import ConfigError

Result = dict[str, Any]
"""One stage's JSON-ready figures."""

MIXES = ("market", "bench")
"""Tick mixes of the broker stages: the simulator's whole market, or the two default symbols."""
BASES = ("BTC", "ETH")
"""What the product tracks by default; every stage uses these symbols' real instruments."""


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions. ``quick`` must finish in a few minutes on a 2-core machine."""

    quick: bool
    runs: int
    parse_frames: int
    broker_messages: int
    ingest_window_s: float
    ingest_warmup_s: float
    drain_ticks: int
    drain_runs: int
    latency_loads: tuple[int, ...]
    latency_duration_s: float
    latency_runs: int
    recovery_ticks: int
    recovery_runs: int
    market_step_s: float
    market_catch_up_s: float
    market_rate_cap: int
    market_start: int = 2_500
    market_floor: int = 300
    mix: str = "market"
    """Ticks of the broker stages: ``market`` (the simulator's whole market) or ``bench`` (BTC and ETH)."""
    partitions: int = 1
    """Partitions per topic of the broker stages: the product's default (decision 0029); ``--partitions``."""

    @classmethod
    def make(cls, quick: bool, mix: str = "market") -> Plan:
        if mix not in MIXES:
            raise ConfigError(f"unknown tick mix {mix!r}; mixes: {', '.join(MIXES)}")
        if quick:
            return cls(
                mix=mix,
                quick=True,
                runs=3,
                parse_frames=5_000,
                broker_messages=50_000,
                ingest_window_s=3.0,
                ingest_warmup_s=3.0,
                drain_ticks=50_000,  # seconds per run: long beside the 500 ms commit the drain is timed by
                drain_runs=2,
                latency_loads=(250, 500, 1_000, 10_000),
                latency_duration_s=2.0,
                latency_runs=2,
                recovery_ticks=5_000,
                recovery_runs=1,
                market_step_s=4.0,
                market_catch_up_s=8.0,
                market_rate_cap=40_000,
            )
        return cls(
            mix=mix,
            quick=False,
            runs=5,
            parse_frames=50_000,
            broker_messages=300_000,
            ingest_window_s=10.0,
            ingest_warmup_s=8.0,
            drain_ticks=200_000,  # ~10 s per run on the market mix, ~5 s on BTC + ETH
            drain_runs=3,
            latency_loads=(250, 500, 1_000, 2_500, 5_000, 10_000, 30_000),
            latency_duration_s=10.0,
            latency_runs=3,
            recovery_ticks=50_000,
            recovery_runs=3,
            market_step_s=10.0,
            market_catch_up_s=20.0,
            market_rate_cap=160_000,
        )


def median(values: Sequence[float]) -> float:
    """Median of the runs: one slow run (GC pause, page cache, JIT) must not move the figure."""
    return float(statistics.median(values)) if values else math.nan


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values: always an observed sample."""
    if not sorted_values:
        return math.nan
    # Rounded first: 99.9 / 100 * 1000 is 999.0000000000001 in binary floating point, whose ceiling
    # would take the maximum instead of the 999th sample.
    rank = max(1, math.ceil(round(q / 100 * len(sorted_values), 9)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def latency_summary(samples_ms: Sequence[float]) -> Result:
    ordered = sorted(samples_ms)
    return {
        "samples": len(ordered),
        "p50_ms": percentile(ordered, 50),
        "p99_ms": percentile(ordered, 99),
        "p99_9_ms": percentile(ordered, 99.9),
        "max_ms": ordered[-1] if ordered else math.nan,
    }


def not_measured(reason: str) -> Result:
    """What a stage reports when it could not run: the reason, never an invented figure."""
    return {"status": "not measured", "reason": reason}
