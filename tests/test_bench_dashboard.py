"""``arbstream bench --stages dashboard``: the Prices screen at whole-market size in Chromium.

Never timed here (a benchmark is not a test): the stage runs once, briefly, through the real JSON and
Markdown output, and the figures must be the page's, not placeholders.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from arbstream.bench import dashboard_stage
from arbstream.bench.common import Plan
from arbstream.bench.report import summary_rows
from arbstream.bench.runner import run_bench
from tests.helpers import require_browser

LINE = (
    '{"instruments":6300,"offered_updates_per_s":6300,"applied_updates_per_s":6290.5,"fps":56.3,'
    '"long_frames_over_50ms":0,"max_frame_ms":33.4,"message_to_screen_ms":{"p50":48.7,"p95":79.4,"p99":84.9},'
    '"fps_while_scrolling":44.9,"main_thread_cpu_per_s":0.379,"script_s_per_s":0.169,'
    '"style_layout_s_per_s":0.092,"errors":[]}'
)


def test_the_result_is_the_scripts_last_json_line_and_the_rows_take_medians() -> None:
    result = dashboard_stage.stress_result(f"warming up\n{LINE}\n")
    assert (result["fps"], result["message_to_screen_ms"]["p99"]) == (56.3, 84.9)
    slower = {**result, "fps": 30.0, "fps_while_scrolling": 20.0, "message_to_screen_ms": {"p50": 90.0, "p99": 200.0}}
    faster = {**result, "fps": 60.0, "fps_while_scrolling": 50.0, "message_to_screen_ms": {"p50": 10.0, "p99": 20.0}}
    stage = {"symbols": 450, "instruments": 6300, "offered_updates_per_s": 6300, "runs": [slower, result, faster]}
    rows = {figure: value for name, figure, value, _ in summary_rows({"dashboard": stage}) if name == "9 Dashboard"}
    assert rows == {
        "Prices screen fps while updating (6,300 instruments, 6,300 updates/s, 3 runs)": "56.3",
        "Prices screen fps while scrolling the matrix": "44.9",
        "message → screen p50 / p99 ms": "48.7 / 84.9",
        "renderer main thread, CPU-s per s": "0.38",
    }


def test_without_a_browser_the_stage_says_what_is_missing(tmp_path: Path) -> None:
    assert "missing" in (dashboard_stage.missing_prerequisite(tmp_path / "no-chromium") or "")


def test_the_stage_measures_the_built_page_in_chromium(tmp_path: Path) -> None:
    require_browser()
    plan = dataclasses.replace(Plan.make(quick=True), runs=1)

    run_bench(plan, tmp_path, stages=("dashboard",))

    stage = json.loads((tmp_path / "latest.json").read_text())["stages"]["dashboard"]
    (run,) = stage["runs"]
    assert run["errors"] == []
    assert run["instruments"] == dashboard_stage.SYMBOLS * 14
    assert run["applied_updates_per_s"] > 0 and run["fps"] > 0 and run["main_thread_cpu_per_s"] > 0
    assert "| 9 Dashboard | Prices screen fps while updating" in (tmp_path / "latest.md").read_text()
