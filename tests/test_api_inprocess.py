"""The API over an in-process read model built with the worker's own logic (no broker): fast checks."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from api.main import build_context, create_app
from api.readmodel import ReadModel
from api.universe import Universe
from schemas.market import Quote
from tests.test_api_expected import check_all
from tests.test_api_support import get_json, in_process_model, scenario, scenario_settings, serve


def test_every_endpoint_answers_the_scenario_values() -> None:
    t0 = time.time_ns()
    settings = scenario_settings()
    ctx = build_context(settings, None, model=in_process_model(t0, settings), universe=Universe())
    with serve(create_app(ctx)) as url:
        fed = [t for t in scenario(t0) if isinstance(t, Quote)]
        check_all(lambda path: get_json(url + path), t0, fed, cooldown_s=120)


def test_nothing_is_served_half_loaded() -> None:
    ctx = build_context(scenario_settings(), None, model=ReadModel(), universe=Universe())
    with serve(create_app(ctx)) as url:
        for path in ("/api/prices", "/api/summary", "/api/arbitrage", "/api/venues", "/api/prices/BTC"):
            status, body = get_json(url + path)
            assert status == 503 and "loading" in body["detail"], path
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(url + "/api/prices", timeout=10)
        assert error.value.headers["retry-after"] == "1"
        status, health = get_json(url + "/health")
        assert (status, health["status"], health["complete"]) == (503, "starting", False)
        assert "read model loading" in health["reasons"]
        info = get_json(url + "/api/info")[1]
        assert (info["complete"], info["demo"]) == (False, False)


def test_dashboard_is_served_without_shadowing_the_api(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    files = {"index.html": "<html>dashboard</html>", "assets/app-1234.js": "console.log(1)", "favicon.svg": "<svg/>"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    settings = scenario_settings(demo=True)
    ctx = build_context(settings, None, model=in_process_model(time.time_ns(), settings), universe=Universe())
    with serve(create_app(ctx, dashboard_dist=tmp_path)) as url:
        info = get_json(url + "/api/info")[1]
        assert info["demo"] is True  # drives the dashboard's DEMO banner
        # The dashboard greys quotes with the worker's own staleness rule.
        assert (info["max_quote_age_ms"], info["max_quote_age_ms_by_venue"]) == (
            settings.max_quote_age_ms,
            settings.max_quote_age_ms_by_venue,
        )
        for path, text in [("/", files["index.html"]), *((f"/{name}", text) for name, text in files.items())]:
            with urllib.request.urlopen(url + path, timeout=10) as response:
                assert response.read().decode() == text, path
        assert get_json(url + "/api/prices")[0] == 200
        assert get_json(url + "/api/nope")[0] == 404
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(urllib.request.Request(url + "/api/prices", method="PUT"), timeout=10)
        assert (error.value.code, error.value.headers["allow"]) == (405, "GET")
