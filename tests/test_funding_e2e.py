"""The Funding screen in Chromium: the planted pair ranks first with its APR and break-even, the
coin page draws the settled history (``dashboard/e2e/funding.e2e.mjs`` against an in-process API
serving ``dashboard/dist`` and the funding scenario of ``tests/test_funding_support.py``)."""

from __future__ import annotations

import os
import subprocess
import time
from decimal import Decimal

import msgspec
import pytest

from api.main import build_context, create_app
from api.universe import Universe
from tests.helpers import CHROMIUM, DASHBOARD, REPO_ROOT, require_browser
from tests.test_api_support import scenario_settings, serve
from tests.test_funding_support import BY, funding_history, funding_model, funding_universe

pytestmark = pytest.mark.integration
D = Decimal


def test_funding_screen_shows_the_planted_pair_and_the_history_chart() -> None:
    require_browser()
    now = time.time_ns()
    # Bybit's listing caps its rate at 0.00018 per interval, the rate it pays now: "at cap".
    capped = [
        msgspec.structs.replace(i, funding_cap=D("0.00018"), funding_floor=D("-0.00018"))
        if i.instrument_id == BY
        else i
        for i in funding_universe().published.values()
    ]
    ctx = build_context(scenario_settings(), None, model=funding_model(now), universe=Universe(instruments=capped))
    assert ctx.funding is not None
    for settlement in funding_history(now):
        ctx.funding.add_settlement(settlement)
    with serve(create_app(ctx, dashboard_dist=DASHBOARD / "dist")) as url:
        env = {
            **os.environ,
            "E2E_BASE": url,
            "E2E_CHROMIUM": str(CHROMIUM),
            "E2E_ARTIFACTS": str(REPO_ROOT / "test-artifacts" / "funding"),
            "E2E_AT_CAP": "bybit",
        }
        run = subprocess.run(
            ["node", "e2e/funding.e2e.mjs"], cwd=DASHBOARD, env=env, capture_output=True, text=True, timeout=120
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "E2E_RESULT" in run.stdout
