"""``arbstream soak``: the report's arithmetic, and a one-minute soak with every fault kind at a high rate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from arbstream.soak import parse_metrics
from arbstream.soak_report import (
    FAULT_KINDS,
    Fault,
    SoakReport,
    fault_counts,
    memory_summary,
    recovery_times,
    to_dict,
    to_markdown,
)
from tests.helpers import REPO_ROOT

METRICS = """# HELP arbstream_ingest_events_total quotes and funding parsed
# TYPE arbstream_ingest_events_total counter
arbstream_ingest_events_total{connection="okx-0",venue="okx"} 120.0
arbstream_ingest_events_total{connection="okx-1",venue="okx"} 30.0
arbstream_ingest_events_total{connection="binance-0",venue="binance"} 7.0
arbstream_ingest_streaming{connection="okx-0",venue="okx"} 1.0
arbstream_ingest_streaming{connection="okx-1",venue="okx"} 0.0
arbstream_ingest_streaming{connection="binance-0",venue="binance"} 1.0
arbstream_ingest_delivered_total 157.0
"""


def test_metrics_sum_counters_per_venue_and_take_the_worst_connection() -> None:
    parsed = parse_metrics(METRICS)
    assert parsed["arbstream_ingest_events_total"] == {"okx": 150.0, "binance": 7.0}
    assert parsed["arbstream_ingest_streaming"] == {"okx": 0.0, "binance": 1.0}  # one okx socket down
    assert parsed["arbstream_ingest_delivered_total"] == {"": 157.0}


def test_fault_counts_and_recovery_times() -> None:
    faults = [
        Fault("drop", "okx", 10.0, recovered_s=2.0, health_back_s=1.0),
        Fault("drop", "bybit", 70.0, recovered_s=6.0, health_back_s=None),
        Fault("drop", "okx", 130.0, recovered_s=4.0, health_back_s=0.0),
        Fault("worker_kill", "worker", 40.0, recovered_s=None),
    ]
    counts = fault_counts(faults)
    assert counts["drop"] == {"injected": 3, "recovered": 3, "health_back": 2}
    assert counts["worker_kill"] == {"injected": 1, "recovered": 0, "health_back": 0}
    assert counts["stall"] == {"injected": 0, "recovered": 0, "health_back": 0}
    assert list(counts) == list(FAULT_KINDS)
    assert recovery_times(faults) == {"drop": {"median_s": 4.0, "max_s": 6.0}}


def test_memory_summary_fits_a_slope_per_hour() -> None:
    report = SoakReport(minutes=1, fault_every_s=10)
    for minute in range(5):
        report.sample(minute * 60.0, {"ingest": 100.0 + minute, "worker": 80.0, "gone": None})
    summary = memory_summary(report.memory_mb)
    assert summary["ingest"] == {
        "samples": 5,
        "start_mb": 100.0,
        "end_mb": 104.0,
        "peak_mb": 104.0,
        "slope_mb_per_h": 60.0,  # 1 MiB a minute
    }
    assert summary["worker"]["slope_mb_per_h"] == 0.0
    assert "gone" not in summary  # a process that was not running was not sampled


def test_gauges_are_summarised_and_reported_next_to_memory() -> None:
    report = SoakReport(minutes=1, fault_every_s=10)
    for minute, held in enumerate((1000, 3000, 4000, 4000, 4000)):
        report.gauge(minute * 60.0, "api spread-history samples", held)
    row = to_dict(report)["gauge_summary"]["api spread-history samples"]  # type: ignore[index]
    assert row == {"samples": 5, "start": 1000, "end": 4000, "peak": 4000, "slope_per_h": 42000.0}
    assert "| api spread-history samples | 5 | 1,000 | 4,000 | 4,000 | 42,000 |" in to_markdown(report)


def test_markdown_lists_faults_memory_and_breaches() -> None:
    report = SoakReport(minutes=1, fault_every_s=10, baseline_health="ok", elapsed_s=60.0)
    report.faults.append(Fault("stall", "okx", 10.0, recovered_s=1.5, health_back_s=0.0))
    report.sample(0.0, {"api": 70.0})
    report.breach(42.0, "worker exited on its own (code -9); restarted")
    text = to_markdown(report)
    assert "| stall | 1 | 1 | 1 | 1.5 | 1.5 |" in text
    assert "| api | 1 | 70.0 | 70.0 | 70.0 | 0.0 |" in text
    assert "- 42 s: worker exited on its own (code -9); restarted" in text


@pytest.fixture(scope="module")
def soak_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One real soak: ~1 minute of faults, every kind once or more, on a small universe."""
    work = tmp_path_factory.mktemp("soak")
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP", "ARBSTREAM_KAFKA_BOOTSTRAP"}},
        "ARBSTREAM_KAFKA_DATA_DIR": str(work / "kafka"),
        "ARBSTREAM_VENUES": "binance,bybit,okx",
        "ARBSTREAM_SYMBOLS": "BTC,ETH,SOL",
        "ARBSTREAM_SOAK_SAMPLE_EVERY_S": "3",
        "ARBSTREAM_SOAK_STALL_S": "3",
        "ARBSTREAM_SOAK_HEALTH_BOUND_S": "20",
        "ARBSTREAM_WORKER_INSTANCE_ID": "soak-worker",  # static membership: a restarted worker takes over at once
    }
    out = work / "out"
    cmd = [sys.executable, "-m", "arbstream.cli", "soak", "--minutes", "1", "--fault-every", "8", "--out", str(out)]
    done = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    report_file = out / "soak.json"
    assert report_file.exists(), f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = json.loads(report_file.read_text())
    report["exit_code"] = done.returncode
    report["markdown"] = (out / "soak.md").read_text()
    yield report


def test_soak_recovers_every_fault_and_samples_memory(soak_report: dict[str, Any]) -> None:
    counts = soak_report["fault_counts"]
    assert all(counts[kind]["injected"] >= 1 for kind in FAULT_KINDS), counts
    assert all(row["recovered"] == row["injected"] for row in counts.values()), counts
    memory = soak_report["memory_summary"]
    assert set(memory) == {"broker", "simulator", "ingest", "worker", "api"}
    assert all(row["samples"] >= 10 and row["end_mb"] > 20 for row in memory.values()), memory
    gauges = soak_report["gauge_summary"]  # read from the API's /metrics
    assert gauges["api spread-history samples"]["samples"] >= 5 and gauges["api spread-history samples"]["peak"] > 0
    assert set(gauges) == {"api spread-history samples", "api closed episodes held", "api alerts held"}, gauges
    assert soak_report["duplicate_alerts"] == 0, soak_report["markdown"]
    died = [b["what"] for b in soak_report["breaches"] if "exited on its own" in b["what"]]
    assert not died, soak_report["markdown"]
    assert "| drop |" in soak_report["markdown"]


def test_soak_health_back_after_venue_and_worker_faults(soak_report: dict[str, Any]) -> None:
    counts = soak_report["fault_counts"]
    for kind in ("drop", "stall", "malformed", "worker_kill"):
        assert counts[kind]["health_back"] == counts[kind]["injected"], (kind, soak_report["markdown"])


def test_soak_no_invariant_broken(soak_report: dict[str, Any]) -> None:
    counts = soak_report["fault_counts"]
    assert counts["broker_restart"]["health_back"] == counts["broker_restart"]["injected"], soak_report["markdown"]
    assert soak_report["breaches"] == [], soak_report["markdown"]
    assert soak_report["exit_code"] == 0
