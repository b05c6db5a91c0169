"""The dashboard end to end: the real stack in demo mode, driven in Debian's Chromium.

simulator -> `arbstream ingest` -> Kafka -> `arbstream worker` -> `arbstream api` (serving
dashboard/dist) -> Chromium, run by ``dashboard/e2e/dashboard.e2e.mjs`` (playwright-core, no
downloaded browser). The script asserts what the page shows; this test starts the stack, runs it,
and keeps its screenshots and measurements in ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ingest.venues import implemented_venues
from plumbing.broker import free_port
from tests.helpers import CHROMIUM, DASHBOARD, REPO_ROOT, require_browser, running, service_env

pytestmark = pytest.mark.integration

SCRIPT = DASHBOARD / "e2e" / "dashboard.e2e.mjs"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "dashboard"
SYMBOLS = "BTC,ETH"
STALL_VENUE = "okx"


def _get(url: str, accept: str = "*/*") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": accept}), timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait(what: str, timeout_s: float, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _result(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith("E2E_RESULT "):
            parsed: dict[str, Any] = json.loads(line.removeprefix("E2E_RESULT "))
            return parsed
    return {}


def _tails(logs: dict[str, Path], chars: int = 1500) -> str:
    return "\n".join(f"--- {name} ---\n{path.read_text(errors='replace')[-chars:]}" for name, path in logs.items())


def test_dashboard_against_the_demo_stack(kafka_bootstrap: str, namespace: str, tmp_path: Path) -> None:
    require_browser()
    venues = implemented_venues()
    assert STALL_VENUE in venues
    sim_port, api_port = free_port(), free_port()
    env = service_env(
        kafka_bootstrap,
        namespace,
        ARBSTREAM_DEMO="true",
        ARBSTREAM_SYMBOLS=SYMBOLS,
        # simulator: only the dislocation this test plants, so its alert is the symbol's first
        ARBSTREAM_SIMULATOR_PORT=str(sim_port),
        ARBSTREAM_SIMULATOR_AUTO_DISLOCATIONS="false",
        ARBSTREAM_SIMULATOR_TICK_MS="200",
        # ingest: notice a stalled venue quickly, report health every second
        ARBSTREAM_SIMULATOR_URL=f"http://127.0.0.1:{sim_port}",
        ARBSTREAM_STALE_AFTER_S="3",
        ARBSTREAM_HEALTH_EVERY_S="1",
        ARBSTREAM_BACKOFF_INITIAL_S="0.2",
        ARBSTREAM_BACKOFF_MAX_S="1",
        # worker and api
        ARBSTREAM_WORKER_DATA_DIR=str(tmp_path / "faust"),
        ARBSTREAM_API_HOST="127.0.0.1",
        ARBSTREAM_API_PORT=str(api_port),
    )
    logs = {name: tmp_path / f"{name}.log" for name in ("simulate", "worker", "ingest", "api")}
    base = f"http://127.0.0.1:{api_port}"
    # Written in this run's own directory (runs may overlap), published to ARTIFACTS at the end.
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    with ExitStack() as stack:
        procs = {name: stack.enter_context(running([name], env, logs[name])) for name in logs}
        _wait("the API to load its read model", 60, lambda: _get(f"{base}/health")[0] == 200)
        _wait("the dashboard at /", 10, lambda: b'id="root"' in _get(f"{base}/", "text/html")[1])
        completed = subprocess.run(
            ["node", str(SCRIPT)],
            cwd=DASHBOARD,
            env={
                **os.environ,
                "E2E_BASE": base,
                "E2E_SIM": f"http://127.0.0.1:{sim_port}",
                "E2E_VENUES": ",".join(venues),
                "E2E_STALL_VENUE": STALL_VENUE,
                "E2E_EXPECT_TOAST": "1",
                "E2E_PERF_SECONDS": "6",
                "E2E_OPPORTUNITY_WITHIN_S": "25",
                "E2E_ARTIFACTS": str(artifacts),
                "E2E_CHROMIUM": str(CHROMIUM),
            },
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        output = completed.stdout + completed.stderr
        result = _result(output)
        dead = [name for name, proc in procs.items() if proc.poll() is not None]
    (artifacts / "e2e.log").write_text(output)
    (artifacts / "result.json").write_text(json.dumps(result, indent=2))
    for name, path in logs.items():
        shutil.copy(path, artifacts / f"{name}.log")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    shutil.copytree(artifacts, ARTIFACTS, dirs_exist_ok=True)
    context = f"{output[-4000:]}\n{_tails(logs)}"
    assert not dead, f"services exited during the test: {dead}\n{context}"
    assert completed.returncode == 0 and result.get("ok") is True, context
    assert set(result["steps"]) == {
        "prices_for_every_venue",
        "price_filters",
        "opportunity_from_dislocation",
        "opportunity_filters",
        "symbol_detail",
        "stalled_venue_not_connected",
        "stalled_venue_greyed",
    }
    assert result["toast"] is True
    assert result["demo"] is True, "the API reports demo mode and the page shows the DEMO banner"
    assert result["stalled"]["venue"] == STALL_VENUE
    assert result["stalled"]["after"] in {"stale", "disconnected", "error", "gap"}
    perf = result["perf"]
    assert perf["symbols"] == len(SYMBOLS.split(",")) and perf["venues"] == len(venues)
    assert perf["ws"] == "live" and perf["updates"] > 0
    for name in ("01-prices", "03-opportunities", "05-symbol", "06-venues-stalled", "07-prices-stalled"):
        assert (artifacts / f"{name}.png").stat().st_size > 10_000
