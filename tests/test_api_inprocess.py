"""The API over an in-process read model built with the worker's own logic (no broker): fast checks."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from api.history import SpreadHistory
from api.main import build_context, create_app
from api.readmodel import Changes, ReadModel
from api.universe import Universe
from schemas.arbitrage import SymbolState
from schemas.market import Quote
from tests.test_api_expected import PCT, check_all
from tests.test_api_support import D, get_json, in_process_model, quote, scenario, scenario_settings, serve


def _unlabelled_metrics(url: str) -> dict[str, float]:
    """The API's ``/metrics`` samples without labels, by name."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in lines)
        if "{" not in name and name[:1] != "#"
    }


def test_every_endpoint_answers_the_scenario_values() -> None:
    t0 = time.time_ns()
    settings = scenario_settings()
    ctx = build_context(settings, None, model=in_process_model(t0, settings), universe=Universe())
    with serve(create_app(ctx)) as url:
        fed = [t for t in scenario(t0) if isinstance(t, Quote)]
        check_all(lambda path: get_json(url + path), t0, fed, cooldown_s=120)
        # What the model holds in memory is on /metrics (the soak samples it with the API's RSS).
        scraped = _unlabelled_metrics(url)
        held = (scraped["arbstream_api_alerts_held"], scraped["arbstream_api_closed_episodes_held"])
        assert held == (len(ctx.model.alerts), len(ctx.model.closed))
        assert len(ctx.model.alerts) > 0 and len(ctx.model.closed) > 0


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
            browser = urllib.request.Request(url + path, headers={"Accept": "text/html,*/*;q=0.8"})
            with urllib.request.urlopen(browser, timeout=10) as response:
                assert response.read().decode() == text, path
        # A script (no text/html in Accept) gets the seed's JSON at / instead of the page.
        root = get_json(url + "/")[1]
        assert (root["status"], root["service"], root["demo"]) == ("running", "arbstream", True)
        assert get_json(url + "/api/prices")[0] == 200
        assert get_json(url + "/api/nope")[0] == 404
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(urllib.request.Request(url + "/api/prices", method="PUT"), timeout=10)
        assert (error.value.code, error.value.headers["allow"]) == (405, "GET")


def _btc(binance: tuple[str, str], bybit: tuple[str, str], t: int) -> SymbolState:
    quotes = [
        quote("BTC-USDT-PERP@binance", *binance, t),
        quote("BTC-USDT-PERP@bybit", *bybit, t),
        quote("BTC-USD-INV-PERP@bitmex", "99000", "99010", t),  # never comparable with the USDT contracts
    ]
    return SymbolState(quotes={q.instrument_id: q for q in quotes})


def test_spread_history_samples_each_state_change_per_pair() -> None:
    now = time.time_ns()
    t0, s = now - 100 * 1_000_000_000, 1_000_000_000
    clock = [t0 - 50 * s]
    settings = scenario_settings()
    model = ReadModel()
    model.attach_history(SpreadHistory(settings.arb_config().quote_bridges, points=400, clock=lambda: clock[0]))
    # 400 points x 250 ms: a 100 s window holds every sample below (the last is 90 s after the first).
    ctx = build_context(settings, None, model=model, universe=Universe())

    def apply(state: SymbolState, at: int) -> None:
        clock[0] = at
        model.apply_state("BTC", state, Changes())

    # While loading nothing is sampled (replayed states would all carry the load time) ...
    apply(_btc(("100000", "100001"), ("101000", "101001"), t0 - 60 * s), t0 - 50 * s)
    apply(_btc(("100000", "100001"), ("100400", "100401"), t0 - 40 * s), t0 - 40 * s)
    clock[0] = t0
    model.mark_complete()  # ... then every pair is sampled once, at completion
    apply(_btc(("100000", "100001"), ("100500", "100501"), t0), t0 + s // 10)  # within 250 ms: overwrites
    apply(_btc(("100100", "100101"), ("100500", "100501"), t0), t0 + 3 * s // 10)
    apply(_btc(("100100", "100101"), ("100000", "100001"), t0), t0 + 90 * s)
    mid_binance, mid_bybit = D("100000.5"), D("100500.5")
    expected = [
        (t0, D(500), PCT(D(500) / mid_binance * 100)),
        (t0 + 3 * s // 10, D(400), PCT(D(400) / D("100100.5") * 100)),
        (t0 + 90 * s, D(-100), PCT(D(-100) / D("100100.5") * 100)),
    ]
    with serve(create_app(ctx)) as url:

        def points(path: str) -> list[tuple[int, Decimal, Decimal]]:
            status, body = get_json(url + path)
            assert status == 200, body
            return [(p["ts_ns"], D(p["spread"]), D(p["spread_percentage"])) for p in body["points"]]

        assert points("/api/spread/BTC/binance/bybit/history?seconds=3600") == expected
        assert points("/api/spread/BTC/binance/bybit/history") == expected  # default: 600 s
        assert points("/api/spread/BTCUSDT/binance/bybit/history?seconds=60") == expected[-1:]
        reverse = points("/api/spread/BTC/bybit/binance/history?seconds=3600")
        assert reverse[0] == (t0, D(-500), PCT(D(-500) / mid_bybit * 100))
        assert [p[1] for p in reverse] == [D(-500), D(-400), D(100)]
        # The latest sample is what /api/spread answers now.
        now_spread = get_json(url + "/api/spread/BTC/binance/bybit")[1]
        diff = (now_spread["price_difference"], now_spread["price_difference_percentage"])
        assert diff == expected[-1][1:]  # the signed difference; the seed's `spread` is its size
        assert (now_spread["spread"], now_spread["higher"]) == (100, "binance")
        body = get_json(url + "/api/spread/BTC/binance/bybit/history?seconds=5")[1]
        assert (body["symbol"], body["exchange1"], body["exchange2"], body["seconds"], body["interval_ms"]) == (
            "BTC", "binance", "bybit", 5, 250,
        )  # fmt: skip
        assert body["points"] == []
        # Errors exactly as /api/spread: 404 unknown or not comparable, 422 same venue; 422 bad window.
        for tail, status in [
            ("BTC/binance/bitmex", 404),
            ("BTC/binance/nosuchvenue", 404),
            ("NOSUCH/binance/bybit", 404),
            ("BTC/binance/binance", 422),
        ]:
            assert get_json(f"{url}/api/spread/{tail}")[0] == status, tail
            assert get_json(f"{url}/api/spread/{tail}/history")[0] == status, tail
        for bad in ("0", "3601", "-5", "abc", "1.5"):
            status, body = get_json(f"{url}/api/spread/BTC/binance/bybit/history?seconds={bad}")
            assert status == 422 and "seconds" in str(body["detail"]), bad
        assert get_json(f"{url}/api/spread/BTC/binance/bybit/history?seconds=1")[0] == 200
        assert get_json(f"{url}/api/spread/BTC/binance/bybit/history?seconds=3600")[0] == 200
        # What the history holds is on /metrics (it is most of the API's memory at market size).
        scraped = _unlabelled_metrics(url)
        assert model.history is not None and model.history.samples >= 3  # the pair above holds three
        assert scraped["arbstream_api_spread_history_samples"] == model.history.samples
        assert scraped["arbstream_api_spread_history_pairs"] == model.history.pairs > 0


def test_spread_history_is_bounded_and_forgets_removed_symbols() -> None:
    clock = [0]
    history = SpreadHistory({}, points=3, interval_ms=250, clock=lambda: clock[0])
    for i in range(10):
        clock[0] = i * 300_000_000
        history.record("BTC", _btc(("100000", "100001"), (str(100000 + i), str(100001 + i)), 0))
    assert [(p.ts_ns, p.spread) for p in history.since("BTC", "binance", "bybit", 0)] == [
        (7 * 300_000_000, D(7)),
        (8 * 300_000_000, D(8)),
        (9 * 300_000_000, D(9)),
    ]
    history.record("BTC", None)  # tombstone
    assert history.since("BTC", "binance", "bybit", 0) == []
