"""Stage dashboard: the Prices screen at whole-market size in Debian's Chromium (issue 11: ≥ 50 fps).

No broker and no API: ``dashboard/e2e/stress.mjs`` serves the built page (``dashboard/dist``) with
its REST answers stubbed and its WebSocket replaced by a generator speaking the API's protocol, so
the figures are the page's own — JSON parse, store, React render, paint — for ``SYMBOLS`` symbols
× 14 venues, each instrument updating ``UPDATES_PER_INSTRUMENT`` times a second. Reported: frames
per second while updating and while scrolling the matrix, message → screen latency, and the
renderer main thread's CPU (which a busy machine does not inflate the way it lowers the frame
rate). Needs node, Chromium and the built dashboard (``make test`` / ``make dashboard`` provide
them); without them the stage says what is missing instead of a figure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from arbstream.bench.common import Result, not_measured
from plumbing.settings import REPO_ROOT

DASHBOARD = REPO_ROOT / "dashboard"
SCRIPT = DASHBOARD / "e2e" / "stress.mjs"
SYMBOLS = 450
UPDATES_PER_INSTRUMENT = 1
TIMEOUT_S = 180


def missing_prerequisite(chromium: Path) -> str | None:
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not chromium.exists():
        return f"{chromium} missing (Debian's chromium; `make test` installs it)"
    if not (DASHBOARD / "node_modules" / "playwright-core").exists():
        return "dashboard/node_modules missing (`make dashboard`)"
    if not (DASHBOARD / "dist" / "index.html").exists():
        return "dashboard/dist missing (`make dashboard`)"
    return None


def stress_result(output: str) -> Result:
    """The JSON object stress.mjs prints last (its only JSON line)."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            parsed: Result = json.loads(line)
            return parsed
    raise ValueError(f"no result line in the stress script's output: {output[-500:]!r}")


def _run_once(seconds: int, chromium: Path) -> Result:
    completed = subprocess.run(
        ["node", str(SCRIPT), str(SYMBOLS), str(UPDATES_PER_INSTRUMENT), str(seconds)],
        cwd=DASHBOARD,
        env={**os.environ, "E2E_CHROMIUM": str(chromium)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"stress.mjs exited {completed.returncode}: {completed.stderr[-800:]}")
    return stress_result(completed.stdout)


def run_dashboard_stage(runs: int, quick: bool) -> Result:
    chromium = Path(os.environ.get("ARBSTREAM_E2E_CHROMIUM", "/usr/bin/chromium"))
    missing = missing_prerequisite(chromium)
    if missing is not None:
        return not_measured(missing)
    measured = [_run_once(6 if quick else 15, chromium) for _ in range(runs)]
    errors = [error for run in measured for error in run["errors"]]
    if errors:
        raise RuntimeError(f"the page reported errors: {errors[:5]}")
    return {
        "symbols": SYMBOLS,
        "instruments": measured[0]["instruments"],
        "offered_updates_per_s": measured[0]["offered_updates_per_s"],
        "runs": measured,
    }
