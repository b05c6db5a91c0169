"""Smoke test of ``arbstream bench``: the parse stage on a few frames, through the real JSON/Markdown output.

A benchmark is never timed in tests; this only checks that the machinery runs
and writes the structure the README and the issue rely on. Only the replay stage's test needs
the broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from pathlib import Path

import pytest

from arbstream.backtest import SAMPLE_DIR
from arbstream.bench import report
from arbstream.bench.common import Plan
from arbstream.bench.replay_stage import run_replay_stage
from arbstream.bench.runner import run_bench
from ingest.replay import Replayer
from ingest.venues import implemented_venues


def test_parse_stage_reports_every_venue(tmp_path: Path) -> None:
    plan = dataclasses.replace(Plan.make(quick=True), parse_frames=40, runs=1)

    summary, paths = run_bench(plan, tmp_path, stages=("parse",))

    assert {p.name for p in paths} == {p.name for p in tmp_path.glob("bench-*")}
    written = json.loads((tmp_path / "latest.json").read_text())
    assert written["stages"].keys() == {"parse"} == summary["stages"].keys()
    assert {"cpu_model", "logical_cpus", "ram_gib", "python"} <= written["machine"].keys()
    venues = written["stages"]["parse"]["venues"]
    assert venues.keys() == set(implemented_venues())
    for name, figures in venues.items():
        assert figures["frames_per_s"] > 0, name
        assert figures["errors"] == 0, name
        assert figures["events_per_frame"] > 0, name
    markdown = (tmp_path / "latest.md").read_text()
    assert all(f"| {name} |" in markdown for name in venues)


@pytest.mark.integration
def test_replay_stage_times_the_sample_through_the_broker(kafka_bootstrap: str, namespace: str) -> None:
    """Stage 8 on the real broker: every event of the sample published and acknowledged, timed."""
    result = asyncio.run(run_replay_stage(kafka_bootstrap, namespace, runs=1))
    counted = Replayer([SAMPLE_DIR])
    events = sum(1 for _ in counted.events())
    assert (counted.counts.frames, counted.counts.events, counted.counts.health) == (6141, 6094, 72)
    assert (result["frames"], result["events"]) == (6141, events) == (6141, 6094 + 72)
    assert result["published_events"] == events  # ticks and the recorded health, none lost
    for figure in ("replay_events_per_s", "publish_events_per_s", "backtest_ticks_per_s", "backtest_ticks_per_cpu_s"):
        assert math.isfinite(result[figure]) and result[figure] > 0, figure
    # Publishing re-parses too, so it cannot beat parsing alone by more than the timer's noise.
    assert result["publish_events_per_s"] < 1.5 * result["replay_events_per_s"]
    # The same runs: ticks are the events less the 72 health records.
    ratio = result["publish_ticks_per_s"] / result["publish_events_per_s"]
    assert abs(ratio - 6094 / (6094 + 72)) < 1e-9
    rows = [row for row in report.summary_rows({"replay": result}) if row[0] == "8 Replay"]
    assert [row[1].split(",")[0] for row in rows] == [
        "replay --speed max to the broker",
        "replay parse only (no publishing)",
        "backtest (replay + worker engine)",
    ]
    assert rows[0][2] == f"{result['publish_ticks_per_s']:,.0f} ({result['publish_events_per_s']:,.0f})"


def test_ingest_rows_give_the_whole_market_figure_beside_the_saturated_one() -> None:
    saturated = {"ticks_per_s": 38_054.0, "ingest_cpu": 0.88, "ticks_per_cpu_s": 41_976.0, "bound_by": "ingest"}
    market = {
        "ticks_per_s": 11_343.5,
        "ingest_cpu": 0.86,
        "ticks_per_cpu_s": 13_209.6,
        "conflated_per_s": 0.0,
        "offered_updates_per_s": 10_000,
        "bases": 480,
        "instruments": 3_966,
    }
    rows = [row for row in report.summary_rows({"ingest": {**saturated, "market": market}}) if row[0] == "3 Ingest"]
    assert [row[2] for row in rows] == ["38,054", "41,976", "13,210"]
    assert rows[2][1] == (
        "ticks per ingest CPU-second, whole market (480 bases, 3,966 instruments) at 10,000 updates/s offered "
        "(delivered 11,344/s, ingest CPU 0.86, conflated 0/s)"
    )
    missing = {"status": "not measured", "reason": "no ticks from `arbstream ingest` on the market\nlog tail"}
    rows = [row for row in report.summary_rows({"ingest": {**saturated, "market": missing}}) if row[0] == "3 Ingest"]
    assert rows[2][2] == "not measured: no ticks from `arbstream ingest` on the market"


def test_the_worker_overload_rows_show_both_runs_and_what_the_jump_skipped() -> None:
    def run(p99_ms: float, counts: dict[str, int], **extra: int) -> dict[str, object]:
        latency = {"samples": 50, "p50_ms": p99_ms / 2, "p99_ms": p99_ms, "p99_9_ms": p99_ms}
        return {
            "offered_ticks_per_s": 18_750,
            "sent_ticks_per_s": 18_400.0,
            "processed_ticks_per_s": 9_000.0,
            "worker_cpu": 0.24,
            "saturated": True,
            "tick_to_topic": latency,
            "worker_cpu_share": 0.25,
            "worker_counts": {"processed": 100, "conflated": 20, "rebuilt": 0, "rejected": 0, **counts},
            **extra,
        }

    proc = {
        "drain_worker_cpu": 0.9,
        "drain_ticks_per_s": 25_000.0,
        "logic_only_ticks_per_cpu_s": 45_000.0,
        "changelog_records": 10,
        "changelog_bytes_per_tick": 4.0,
        "latency": [],
        "overload": run(3_500.0, {"skipped_records": 0}, skip_behind_ms=0),
        "overload_jumping": run(1_200.0, {"skipped_records": 30_000}, skip_behind_ms=200),
    }
    rows = [row for row in report.summary_rows({"processors": proc}) if row[0] == "4 Overload"]
    assert [row[2] for row in rows] == ["1,750.0 / 3,500.0 / 3,500.0", "600.0 / 1,200.0 / 1,200.0"]
    assert rows[0][1].startswith(
        "OVERLOAD (worker at 25% CPU time, offered 3× that capacity, no backlog jump), 20 conflated / 100 "
    )
    assert "skipped" not in rows[0][1]
    assert rows[1][1].startswith(
        "OVERLOAD (worker at 25% CPU time, offered 3× that capacity, backlog jump at 200 ms), "
        "20 conflated / 100 processed / 30,000 records skipped; tick→topic"
    )
