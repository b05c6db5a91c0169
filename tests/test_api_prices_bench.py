"""Smoke test of the ``api`` bench stage on a small market: it runs, and reports every scenario.

Never timed (a benchmark reports figures; a test only checks the machinery), no broker.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from arbstream.bench import runner
from arbstream.bench.api_market import VENUES, SyntheticMarket
from arbstream.bench.api_stage import run_api_stage
from arbstream.bench.common import Plan


def test_synthetic_market_shape() -> None:
    market = SyntheticMarket(symbols=30)
    model = market.build(1_000_000_000_000)
    assert len(model.symbols) == 30 and model.complete
    # 14 venues each, plus BitMEX and Deribit inverse contracts for the first 20 symbols.
    assert market.instruments == 30 * len(VENUES) + 20 * 2
    btc = model.symbols["BTC"].quotes
    assert btc["BTC-USDT-PERP@binance"].price_multiplier == 1000  # every tenth symbol is 1000-prefixed
    before = dict(btc)
    market.move(model, "BTC", 2_000_000_000_000)
    changed = [i for i, q in model.symbols["BTC"].quotes.items() if q != before[i]]
    assert len(changed) == 1 and market.updates_applied == 1


def test_api_stage_reports_every_scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = {"api": lambda plan: run_api_stage(plan.quick, symbols=30, updates_per_s=50, requests=3)}
    monkeypatch.setattr(runner, "LOCAL_STAGES", small)
    summary, _ = runner.run_bench(dataclasses.replace(Plan.make(quick=True), runs=1), tmp_path, stages=("api",))

    api = json.loads((tmp_path / "latest.json").read_text())["stages"]["api"]
    assert api.get("status") is None, api
    assert (api["symbols"], api["venues"], api["instruments"]) == (30, 14, 460)
    assert api["scenarios"].keys() == {
        "prices_full",
        "prices_5_symbols",
        "prices_2_venues",
        "prices_page_50",
        "spreads_full",
        "spreads_5_symbols",
    }
    for name, figures in api["scenarios"].items():
        assert (figures["errors"], figures["samples"]) == (0, 3), name
        assert figures["p50_ms"] > 0 and figures["bytes"] > 0 and figures["api_cpu_ms_per_request"] > 0, name
    full, few = api["scenarios"]["prices_full"], api["scenarios"]["prices_5_symbols"]
    assert few["bytes"] < full["bytes"] / 3
    assert (
        "| 7 API | GET /api/prices?symbols=BTC,T004,T010,T016,T022 p50/p99/p99.9 ms"
        in (tmp_path / "latest.md").read_text()
    )
    assert summary["stages"]["api"]["applied_updates_per_s"] > 0
