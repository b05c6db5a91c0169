"""The API against the real stack: broker + `arbstream worker` + two `arbstream api` replicas."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from plumbing.broker import free_port
from schemas.market import Quote
from tests.helpers import running
from tests.test_api_expected import check_all
from tests.test_api_support import Stack, get_json, stable, wait_healthy
from tests.test_api_support import api_stack as api_stack

pytestmark = pytest.mark.integration

PATHS = [
    "/api/prices",
    "/api/prices/BTC",
    "/api/best-prices/BTC",
    "/api/summary",
    "/api/arbitrage?limit=1000",
    "/api/arbitrage/ETH",
    "/api/spread/BTC/binance/bybit",
    "/api/arbitrage/BTC/alert-status",
    "/api/opportunities",
    "/api/episodes",
    "/api/venues",
]


def answers(base_url: str) -> dict[str, Any]:
    out = {}
    for path in PATHS:
        status, body = get_json(base_url + path)
        assert status == 200, (base_url, path, status, body)
        out[path] = stable(body)
    return out


def test_every_endpoint_matches_the_ticks_fed_in(api_stack: Stack) -> None:
    fed = [t for t in api_stack.fed if isinstance(t, Quote)]
    for url in api_stack.api_urls:
        check_all(lambda path, url=url: get_json(url + path), api_stack.t0, fed, cooldown_s=120)  # type: ignore[misc]
        health = wait_healthy(url)
        assert health["broker"]["reachable"] is True and health["complete"] is True
        assert health["consumer"]["lag_total"] == 0 and health["consumer"]["records_applied"] > 0
        assert health["venues_unhealthy"] == ["kucoin"]
        streaming = {v["venue"] for v in health["venues"] if v["state"] == "streaming"}
        assert streaming == {"binance", "bybit", "okx", "bitmex", "coindcx"}


def test_two_replicas_answer_the_same(api_stack: Stack) -> None:
    first, second = (answers(url) for url in api_stack.api_urls)
    assert first == second


def test_restart_restores_state_without_serving_half_loaded_data(api_stack: Stack, tmp_path: Path) -> None:
    reference = answers(api_stack.api_urls[1])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for attempt in ("first start", "restart"):
        with running(["api"], api_stack.api_env_for(port), tmp_path / f"{attempt}.log"):
            seen = _poll_until_loaded(url, reference["/api/summary"])
            assert answers(url) == reference, attempt
        assert seen, f"{attempt}: no answer observed while starting"


def _poll_until_loaded(url: str, final_summary: Any, timeout_s: float = 60) -> list[int]:
    """While the API starts, a data endpoint may answer 503 or the complete state, never a part of it."""
    statuses = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status, body = get_json(url + "/api/summary", 5)
        except OSError:
            time.sleep(0.05)
            continue
        statuses.append(status)
        if status == 503:
            assert "loading" in body["detail"]
        else:
            assert status == 200 and stable(body) == final_summary, body
            return statuses
    raise AssertionError(f"{url} did not load in {timeout_s}s")


def test_reload_config_rereads_the_symbols_file(api_stack: Stack) -> None:
    url = api_stack.api_urls[0]
    symbols_file = Path(api_stack.api_env["ARBSTREAM_SYMBOLS_FILE"])
    original = symbols_file.read_text()
    try:
        symbols_file.write_text(original + "ETH:ETH-USDT-SWAP:okx\n")
        reloaded = _post_json(url + "/api/reload-config")
        assert (reloaded["added"], reloaded["removed"], reloaded["instruments"]) == (["ETH-USDT-PERP@okx"], [], 3)
        okx = next(v for v in get_json(url + "/api/venues")[1]["venues"] if v["venue"] == "okx")
        assert "ETH-USDT-PERP@okx" in okx["instruments"]

        symbols_file.write_text("BTC:NOSUCHSYMBOL:binance\n")
        status, body = _post(url + "/api/reload-config")
        assert status == 422 and "unchanged" in body["detail"]
        assert get_json(url + "/api/prices/ETH")[0] == 200
    finally:
        symbols_file.write_text(original)
        assert _post_json(url + "/api/reload-config")["removed"] == ["ETH-USDT-PERP@okx"]


def _post(url: str) -> tuple[int, Any]:
    import json

    request = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _post_json(url: str) -> Any:
    status, body = _post(url)
    assert status == 200, body
    return body


def test_metrics_and_cors_allowlist(api_stack: Stack) -> None:
    url = api_stack.api_urls[0]
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    changelog = f"{api_stack.namespace}.arbstream-symbols-changelog"
    [line] = [x for x in text.splitlines() if x.startswith(f'arbstream_api_records_total{{topic="{changelog}"}}')]
    assert float(line.split()[-1]) >= 1
    assert f'arbstream_api_consumer_lag{{topic="{changelog}"}} 0.0' in text

    def preflight(origin: str) -> str | None:
        headers = {"Origin": origin, "Access-Control-Request-Method": "GET"}
        request = urllib.request.Request(url + "/api/prices", method="OPTIONS", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                allowed: str | None = response.headers.get("access-control-allow-origin")
        except urllib.error.HTTPError as exc:
            allowed = exc.headers.get("access-control-allow-origin")
        return allowed

    assert preflight("http://127.0.0.1:5173") == "http://127.0.0.1:5173"  # the dev dashboard
    assert preflight("http://evil.example") is None
