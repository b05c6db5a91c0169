"""`arbstream backtest`: the worker's engine over replayed events, and its report."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from arbstream.backtest import FileSource, backtest, parse_overrides, worker_settings
from arbstream.backtest.report import percentiles
from arbstream.backtest.run import run_backtest
from plumbing.errors import ConfigError
from schemas.market import Funding, Health, HealthState, Quote

T0 = 1_790_000_000_000_000_000
MS = 1_000_000
S = 1_000 * MS


def quote(venue: str, bid: str, ask: str, ts: int, base: str = "BTC", size: str = "2") -> Quote:
    return Quote(
        instrument_id=f"{base}-USDT-PERP@{venue}",
        venue=venue,
        native_symbol=f"{base}USDT",
        base=base,
        bid=Decimal(bid),
        bid_size=Decimal(size),
        ask=Decimal(ask),
        ask_size=Decimal(size),
        exchange_ts_ns=ts - MS,
        receipt_ts_ns=ts,
    )


def market(dislocations: list[tuple[int, int]], seconds: int = 60, base: str = "BTC") -> list[Quote]:
    """Quotes every 100 ms on binance and okx; okx's bid is 1 % higher during each (start, end) second range."""
    events = []
    for step in range(seconds * 10):
        ts = T0 + step * 100 * MS
        second = step // 10
        high = any(start <= second < end for start, end in dislocations)
        events.append(quote("binance", "99.99", "100.00", ts, base))
        events.append(quote("okx", "101.00" if high else "99.99", "101.01" if high else "100.00", ts + MS, base))
    return events


SETTINGS = {"min_ticks": "2", "cooldown_s": "20"}


def test_planted_dislocations_are_found_exactly_and_the_cooldown_suppresses() -> None:
    result = run_backtest(market([(5, 8), (15, 17), (40, 43)]), worker_settings(SETTINGS))
    # Episode starts at the first tick of each dislocation; the second one falls in the 20 s cooldown.
    starts = [T0 + 5 * S + MS, T0 + 15 * S + MS, T0 + 40 * S + MS]
    assert [a.event_id for a in result.alerts] == [f"BTC:binance->okx:{starts[0]}", f"BTC:binance->okx:{starts[2]}"]
    assert [(e.event_id, e.alerted) for e in result.closed] == [
        (f"BTC:binance->okx:{starts[0]}", True),
        (f"BTC:binance->okx:{starts[1]}", False),
        (f"BTC:binance->okx:{starts[2]}", True),
    ]
    assert [e.duration_ms for e in result.closed] == [3000, 2000, 3000]
    assert result.alerts[0].net_spread == Decimal("0.0090")  # (101 - 100) / 100 - 2 x 0.0005
    assert (result.ticks, result.rejected, result.still_open) == (1200, 0, [])


def health(second: int, state: HealthState) -> Health:
    ts = T0 + second * S
    return Health(venue="okx", connection="okx-0", state=state, exchange_ts_ns=ts, receipt_ts_ns=ts)


def test_an_unhealthy_venue_yields_no_alert_as_live() -> None:
    stale, back = health(4, HealthState.STALE), health(9, HealthState.STREAMING)
    ticks: list[Quote | Health] = [*market([(5, 8), (10, 12)]), stale, back]
    events = sorted(ticks, key=lambda e: e.receipt_ts_ns)
    result = run_backtest(events, worker_settings(SETTINGS))
    assert [a.event_id for a in result.alerts] == [f"BTC:binance->okx:{T0 + 10 * S + MS}"]
    assert result.health_events == 2


def test_a_window_sees_the_health_and_books_of_before_it(tmp_path: Path) -> None:
    """okx goes stale at 2 s and never recovers: no alert in the whole replay, nor in a replay
    from 3 s (which once forgot the stale report and alerted on the 5-8 s dislocation)."""
    from ingest.recorder import Recorder
    from ingest.replay import Replayer

    write_recording(tmp_path / "plain", market([(5, 8)]))
    write_recording(tmp_path / "stale", market([(5, 8)]))
    recorder = Recorder(tmp_path / "stale", "okx", 1 << 20)
    recorder.write_health(health(2, HealthState.STALE))
    recorder.close()
    settings = worker_settings(SETTINGS)

    def alerts(name: str, start_ns: int | None) -> tuple[list[str], int]:
        result = run_backtest(Replayer([tmp_path / name], start_ns=start_ns).events(), settings)
        return [a.event_id for a in result.alerts], result.health_events

    planted = f"BTC:binance->okx:{T0 + 5 * S + MS}"
    assert alerts("plain", T0 + 3 * S) == ([planted], 0)  # the control: a healthy okx alerts
    assert alerts("stale", None) == ([], 1)
    assert alerts("stale", T0 + 3 * S) == ([], 1)


def test_the_sweep_sees_venue_health_and_funding_closes_are_kept() -> None:
    """A funding episode whose okx leg goes stale at 10 s, with no funding tick after: the worker's
    sweep closes it with the health at its horizon (before: open for the rate's 180 s max age)."""
    from tests.test_funding_logic import funding

    carry = [funding("binance", "0.0002", 8, T0 + S + 50 * MS), funding("okx", "0.0000100", 4, T0 + 2 * S + 50 * MS)]
    stale = Health(venue="okx", connection="okx-0", state=HealthState.STALE, exchange_ts_ns=T0 + 10 * S,
                   receipt_ts_ns=T0 + 10 * S)  # fmt: skip
    unsorted: list[Quote | Funding | Health] = [*market([], seconds=30), *carry, stale]
    events = sorted(unsorted, key=lambda e: e.receipt_ts_ns)
    result = run_backtest(events, worker_settings({"funding_hold_h": "8760"}))
    opened = f"BTC:funding:okx/binance:{T0 + 2 * S + 50 * MS}"
    assert [f.event_id for f in result.funding] == [opened]
    # Closed by the first sweep whose horizon (event time - 1 s grace) reaches the stale report.
    assert [(c.event_id, c.end_ts_ns, c.close_reason, c.alerted) for c in result.funding_closed] == [
        (opened, T0 + 10 * S, "venue stale", True)
    ]


def test_symbol_and_venue_filters() -> None:
    events = sorted([*market([(5, 8)]), *market([(5, 8)], base="ETH")], key=lambda e: e.receipt_ts_ns)
    only_eth = run_backtest(events, worker_settings(SETTINGS), symbols=frozenset({"ETH"}))
    assert [a.symbol for a in only_eth.alerts] == ["ETH"]
    one_venue = run_backtest(events, worker_settings(SETTINGS), venues=frozenset({"okx"}))
    assert one_venue.alerts == [] and one_venue.ticks == 1200


def test_overrides_are_validated() -> None:
    assert parse_overrides(["cooldown_s=60", 'ARBSTREAM_TAKER_FEES={"okx":"0.0002"}']) == {
        "cooldown_s": "60",
        "taker_fees": {"okx": "0.0002"},
    }
    with pytest.raises(ConfigError, match="not a worker setting"):
        parse_overrides(["cooldwn_s=1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["cooldown_s"])
    with pytest.raises(ConfigError, match="close_threshold must not exceed open_threshold"):
        worker_settings({"close_threshold": "0.01", "open_threshold": "0.001"})


def test_percentiles_are_nearest_rank() -> None:
    assert percentiles([5, 1, 3, 2, 4]) == {"p50": "3", "p90": "5", "p99": "5", "max": "5"}
    assert percentiles([Decimal("0.1")]) == {"p50": "0.1", "p90": "0.1", "p99": "0.1", "max": "0.1"}
    assert percentiles([]) == {}


def write_recording(directory: Path, events: list[Quote]) -> None:
    """A recording of binance bookTicker frames carrying ``events`` (as ``arbstream record`` writes)."""
    from ingest.recorder import Recorder

    recorders = {v: Recorder(directory, v, 1 << 20) for v in ("binance", "okx")}
    for q in events:
        if q.venue == "binance":
            frame = (
                f'{{"stream":"btcusdt@bookTicker","data":{{"e":"bookTicker","u":1,"s":"BTCUSDT","b":"{q.bid}",'
                f'"B":"2","a":"{q.ask}","A":"3","T":1,"E":{q.receipt_ts_ns // MS}}}}}'
            )
        else:
            frame = json.dumps(
                {
                    "arg": {"channel": "bbo-tbt", "instId": "BTC-USDT-SWAP"},
                    "data": [{"asks": [[str(q.ask), "300", "0", "1"]], "bids": [[str(q.bid), "300", "0", "1"]],
                              "ts": str(q.receipt_ts_ns // MS), "seqId": 1}],
                }
            )  # fmt: skip
        recorders[q.venue].write(f"{q.venue}-0", q.receipt_ts_ns, frame)
    for recorder in recorders.values():
        recorder.close()


def test_report_is_byte_identical_and_compares_two_settings(tmp_path: Path) -> None:
    write_recording(tmp_path / "rec", market([(5, 8), (15, 17), (40, 43)]))
    variants = [("base", SETTINGS), ("compare", {**SETTINGS, "cooldown_s": "0"})]
    first = backtest(FileSource([tmp_path / "rec"]), variants, tmp_path / "one", Decimal(500))
    second = backtest(FileSource([tmp_path / "rec"]), variants, tmp_path / "two", Decimal(500))
    assert [p.name for p in first] == [
        "report.json",
        "report.md",
        "pairs.png",
        "durations.png",
        "net_spread.png",
        "capacity.png",
        "pnl.png",
    ]
    assert first[0].read_bytes() == second[0].read_bytes()
    body = json.loads(first[0].read_bytes())
    base, compare = body["runs"]["base"], body["runs"]["compare"]
    assert (base["counts"]["alerts"], compare["counts"]["alerts"]) == (2, 3)
    assert (base["counts"]["suppressed_by_cooldown"], compare["counts"]["suppressed_by_cooldown"]) == (1, 0)
    # Each alert: min(500, 3 BTC x 100) = 300 traded x net 0.9 % = 2.70.
    assert base["naive_pnl"]["profit"] == "5.40" and compare["naive_pnl"]["profit"] == "8.10"
    assert base["pairs"][0]["pair"] == "BTC:binance->okx" and base["pairs"][0]["episodes"] == 3
    assert body["recording"]["ticks"] == 1200 and body["recording"]["malformed_frames"] == 0
    assert all((tmp_path / "one" / name).stat().st_size > 5_000 for name in ("pairs.png", "pnl.png"))
    assert "| alerts | 2 | 3 |" in first[1].read_text()


def test_the_report_records_the_settings_the_environment_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_recording(tmp_path / "rec", market([(5, 8), (15, 17), (40, 43)]))
    monkeypatch.setenv("ARBSTREAM_COOLDOWN_S", "0")
    monkeypatch.setenv("ARBSTREAM_TAKER_FEES", '{"okx": "0.0002"}')
    written = backtest(FileSource([tmp_path / "rec"]), [("base", {"min_ticks": "2"})], tmp_path / "out")
    run = json.loads(written[0].read_bytes())["runs"]["base"]
    # The cooldown of 0 from the environment lets the 15 s dislocation alert too.
    assert run["counts"]["alerts"] == 3
    assert run["alerts"][0]["net_spread"] == "0.0093000"  # 0.01 - 0.0005 (binance) - 0.0002 (okx, env)
    assert run["settings"] == {"cooldown_s": "0", "min_ticks": "2", "taker_fees": '{"okx": "0.0002"}'}
    assert run["settings_from_environment"] == ["taker_fees", "cooldown_s"]
    effective = run["effective_settings"]
    assert effective["arbitrage"]["cooldown_s"] == 0 and effective["arbitrage"]["open_threshold"] == "0.0015"
    assert effective["arbitrage"]["taker_fees"]["okx"] == "0.0002"
    assert effective["arbitrage"]["taker_fees"]["binance"] == "0.0005"
    assert effective["funding"]["cooldown_s"] == 3600 and effective["funding"]["taker_fees"]["okx"] == "0.0002"
    assert effective["sweep"] == {"interval_ms": 500, "grace_ms": 1000} and effective["conflate_after_ms"] == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "(from ARBSTREAM_* environment variables: taker_fees, cooldown_s)" in markdown


def test_the_sample_recording_yields_exactly_its_planted_dislocations(tmp_path: Path) -> None:
    from arbstream.backtest import SAMPLE_DIR

    planted = json.loads((SAMPLE_DIR / "planted.json").read_text())
    written = backtest(FileSource([SAMPLE_DIR]), [("base", {})], tmp_path, Decimal(10_000))
    summary = json.loads(written[0].read_bytes())["runs"]["base"]
    assert summary["counts"]["rejected_ticks"] == 0 and summary["counts"]["ticks"] > 5_000
    alerts = summary["alerts"]
    assert len(alerts) == len(planted) == 4
    for plant, alert in zip(planted, alerts, strict=True):
        symbol, pair, start = alert["event_id"].split(":")
        buy, sell = pair.split("->")
        # A venue quoted higher is where to sell, lower where to buy; found while the plant lasted.
        assert (symbol, sell if plant["bps"] > 0 else buy) == (plant["base"], plant["venue"])
        assert plant["start_ns"] <= int(start) <= plant["start_ns"] + int(plant["seconds"] * 1e9)
    # Every episode (alerted or suppressed by the cooldown) involves a planted venue on the planted side.
    sides = {(p["base"], p["venue"], p["bps"] > 0) for p in planted}
    for pair in summary["pairs"]:
        symbol, venues = pair["pair"].split(":")
        buy, sell = venues.split("->")
        assert (symbol, sell, True) in sides or (symbol, buy, False) in sides, pair


def test_the_api_lists_and_serves_reports_and_nothing_else(tmp_path: Path) -> None:
    import urllib.request

    from api.main import build_context, create_app
    from api.readmodel import ReadModel
    from api.universe import Universe
    from tests.test_api_support import get_json, scenario_settings, serve

    root = tmp_path / "reports"
    write_recording(tmp_path / "rec", market([(5, 8), (15, 17)]))
    backtest(FileSource([tmp_path / "rec"]), [("base", SETTINGS)], root / "run-1", Decimal(500))
    (root / "half-written").mkdir()
    (tmp_path / "secret.json").write_text("{}")
    ctx = build_context(scenario_settings(backtest_dir=root), None, model=ReadModel(), universe=Universe())
    with serve(create_app(ctx)) as url:
        status, listing = get_json(url + "/api/backtests")
        assert status == 200 and [r["name"] for r in listing["reports"]] == ["run-1"]
        run = listing["reports"][0]
        assert (run["ticks"], run["runs"][0]["alerts"], run["runs"][0]["suppressed_by_cooldown"]) == (1200, 1, 1)
        assert run["runs"][0]["settings"] == SETTINGS and "pnl.png" in run["charts"]
        status, body = get_json(url + "/api/backtests/run-1")
        assert status == 200 and body["runs"]["base"]["counts"]["alerts"] == 1
        with urllib.request.urlopen(url + "/api/backtests/run-1/pnl.png", timeout=10) as response:
            assert response.headers["content-type"] == "image/png" and response.read()[:4] == b"\x89PNG"
        for path in ("/api/backtests/nope", "/api/backtests/half-written", "/api/backtests/run-1/other.png"):
            assert get_json(url + path)[0] == 404, path
        assert get_json(url + "/api/backtests/run-1/..%2F..%2Fsecret.json")[0] == 404
        assert get_json(url + "/api/backtests/..")[0] in (404, 422)
