"""Smoke test of ``arbstream bench``: the parse stage on a few frames, through the real JSON/Markdown output.

A benchmark is never timed in tests; this only checks that the machinery runs
and writes the structure the README and the issue rely on. No broker needed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from arbstream.bench.common import Plan
from arbstream.bench.runner import run_bench
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
