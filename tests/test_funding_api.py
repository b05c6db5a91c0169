"""The funding terminal's endpoints over an in-process read model (no broker), exact values."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from api.funding_math import HOUR_NS, grid_next
from api.main import build_context, create_app
from api.readmodel import ReadModel
from api.universe import Universe
from tests.test_api_support import get_json, scenario_settings, serve
from tests.test_funding_support import (
    BN,
    BY,
    OK,
    funding,
    funding_alert,
    funding_closed,
    funding_history,
    funding_model,
    funding_universe,
)

D = Decimal
S = 1_000_000_000


@contextmanager
def funding_api(now: int) -> Iterator[str]:
    ctx = build_context(scenario_settings(), None, model=funding_model(now), universe=funding_universe())
    assert ctx.funding is not None
    for settlement in funding_history(now):
        ctx.funding.add_settlement(settlement)
    with serve(create_app(ctx)) as url:
        yield url


def get(url: str) -> Any:
    status, body = get_json(url)
    assert status == 200, (url, body)
    return body


def test_funding_table_rows_with_live_and_realised_apr() -> None:
    now = time.time_ns()
    with funding_api(now) as url:
        table = get(url + "/api/funding-table/?period=1d")
        assert (table["count"], table["total_pages"], table["current_page"], table["period"]) == (2, 1, 1, "1d")
        eth, btc = table["results"]
        assert (eth["symbol"], btc["symbol"], eth["asset_info"]) == ("ETH", "BTC", None)
        assert (eth["spread"], eth["live_spread"]) == (D("30.66"), D("118.26"))  # 21.9 - (-8.76); 109.5 - (-8.76)
        assert (btc["spread"], btc["live_spread"]) == (None, D("0"))
        by_venue = {e["exchange"]: e for e in eth["exchanges_data"]}
        binance, hyper, okx = by_venue["binance"], by_venue["hyperliquid"], by_venue["okx"]
        assert (binance["live_apr"], binance["hist_apr"], binance["frequency"]) == (D("10.95"), D("21.9"), D(3))
        assert binance["history"] == [D("32.85"), D("21.9"), D("10.95")]  # 0.0003, 0.0002, 0.0001 as APR %
        assert binance["averages"] == {"1d": D("21.9"), "3d": D("41.0625"), "7d": D("41.0625"), "30d": D("41.0625")}
        assert (binance["volume"], binance["price"], binance["side"]) == (D(5_000_000), D("2250.05"), "SHORT")
        assert [by_venue[v]["open_interest"] for v in ("binance", "bybit", "hyperliquid", "okx")] == [
            None,  # Binance's all-symbol ticker carries none
            D(30_000_000),
            D(12_000_000),
            D(8_000_000),
        ]
        assert binance["next_funding_time"] == grid_next(now, 8) // 1_000_000
        assert (hyper["live_apr"], hyper["hist_apr"], hyper["side"], hyper["frequency"]) == (
            D("-8.76"),
            D("-8.76"),
            "LONG",
            D(24),
        )
        assert (hyper["next_funding_estimated"], hyper["interval_h"]) == (True, 1)
        assert (okx["healthy"], okx["live_apr"], okx["hist_apr"], okx["volume"]) == (False, D("109.5"), None, None)
        assert by_venue["bybit"]["funding_per_h"] == D("0.000045")


def test_funding_table_filters_sorts_and_pages() -> None:
    with funding_api(time.time_ns()) as url:
        only = get(url + "/api/funding-table/?q=bt")
        assert [r["symbol"] for r in only["results"]] == ["BTC"]
        two = get(url + "/api/funding-table/?exchanges=binance&exchanges=okx&sort=symbol")
        assert [[e["exchange"] for e in r["exchanges_data"]] for r in two["results"]] == [
            ["binance"],
            ["binance", "okx"],
        ]
        floor = get(url + "/api/funding-table/?min_volume=10000000")  # okx has no known volume: left out
        assert [[e["exchange"] for e in r["exchanges_data"]] for r in floor["results"]] == [
            ["bybit", "hyperliquid"],
            ["binance"],
        ]
        by_volume = get(url + "/api/funding-table/?sort=volume&page_size=1&page=2")
        assert (by_volume["count"], by_volume["total_pages"], by_volume["current_page"]) == (2, 2, 2)
        assert [r["symbol"] for r in by_volume["results"]] == ["ETH"]  # BTC's 900M volume first
        by_oi = get(url + "/api/funding-table/?sort=open_interest")
        assert [r["symbol"] for r in by_oi["results"]] == ["ETH", "BTC"]  # 50M known on ETH, none on BTC
        oi_floor = get(url + "/api/funding-table/?min_open_interest=10000000")  # unknown (binance) left out
        assert [[(e["exchange"], e["open_interest"]) for e in r["exchanges_data"]] for r in oi_floor["results"]] == [
            [("bybit", D(30_000_000)), ("hyperliquid", D(12_000_000))]
        ]
        both = get(url + "/api/funding-table/?min_open_interest=10000000&min_volume=30000000")
        assert [[e["exchange"] for e in r["exchanges_data"]] for r in both["results"]] == [["hyperliquid"]]
        assert get_json(url + "/api/funding-table/?min_open_interest=-1")[0] == 422
        assert get_json(url + "/api/funding-table/?sort=-open_interest")[0] == 422
        assert get_json(url + "/api/funding-table/?exchanges=nowhere")[0] == 404
        assert get_json(url + "/api/funding-table/?period=2d")[0] == 422


def test_best_opportunities_rank_pairs_with_costs_and_break_even() -> None:
    now = time.time_ns()
    with funding_api(now) as url:
        best = get(url + "/api/best-opportunities/")
        assert (best["count"], best["period"], best["side"]) == (3, "now", "ALL")
        order = [(p["long"]["exchange"], p["short"]["exchange"]) for p in best["results"]]
        assert order == [("hyperliquid", "bybit"), ("binance", "bybit"), ("hyperliquid", "binance")]
        top = best["results"][0]
        assert (top["symbol"], top["exchange"], top["side"], top["apr"], top["price"]) == (
            "ETH",
            "hyperliquid",
            "LONG",
            D("48.18"),
            D("2000"),
        )
        assert (top["entry_cost"], top["break_even_hours"], top["carry_per_h"]) == (D("0.11"), D(20), D("0.0055"))
        assert (top["long"]["apr"], top["short"]["apr"], top["short"]["price"]) == (D("-8.76"), D("39.42"), D("1999.8"))
        hourly_before = (grid_next(now, 4) - grid_next(now, 1)) // HOUR_NS + 1  # hyperliquid settles this often first
        assert top["common_settlement_time"] == grid_next(now, 4) // 1_000_000
        assert top["carry_to_common"] == (D("0.00018") + D("0.00001") * hourly_before) * 100
        third = best["results"][2]
        assert (third["apr"], third["entry_cost"], third["break_even_hours"]) == (D("19.71"), D("0.09"), D(40))


def test_best_opportunities_on_averages_side_floor_and_pages() -> None:
    with funding_api(time.time_ns()) as url:
        daily = get(url + "/api/best-opportunities/?period=1d")
        assert [(p["long"]["exchange"], p["short"]["exchange"], p["apr"]) for p in daily["results"]] == [
            ("hyperliquid", "binance", D("30.66")),  # 21.9 - (-8.76) realised over the day
            ("hyperliquid", "bybit", D("19.71")),
            ("binance", "bybit", D("-10.95")),  # the live carry ran the other way over the day
        ]
        longs = get(url + "/api/best-opportunities/?side=LONG")
        assert [(p["exchange"], p["side"]) for p in longs["results"]] == [("hyperliquid", "LONG")] * 2
        shorts = get(url + "/api/best-opportunities/?side=SHORT&page_size=1&page=2")
        assert (shorts["count"], shorts["total_pages"], shorts["current_page"]) == (3, 3, 2)
        assert [(p["exchange"], p["side"], p["price"]) for p in shorts["results"]] == [("bybit", "SHORT", D("1999.8"))]
        liquid = get(url + "/api/best-opportunities/?min_volume=10000000")
        assert [(p["long"]["exchange"], p["short"]["exchange"]) for p in liquid["results"]] == [
            ("hyperliquid", "bybit")
        ]
        deep = get(url + "/api/best-opportunities/?min_open_interest=10000000")
        assert [
            (p["long"]["exchange"], p["long"]["open_interest"], p["short"]["exchange"], p["short"]["open_interest"])
            for p in deep["results"]
        ] == [("hyperliquid", D(12_000_000), "bybit", D(30_000_000))]
        assert get(url + "/api/best-opportunities/?min_open_interest=12000001")["count"] == 0
        assert get(url + "/api/best-opportunities/?q=BTC")["count"] == 0  # equal rates: no carry
        assert get_json(url + "/api/best-opportunities/?side=BOTH")[0] == 422


def test_coin_detail_stats_and_history() -> None:
    now = time.time_ns()
    with funding_api(now) as url:
        coin = get(url + "/api/coin-detail/ethusdt/")
        assert (coin["symbol"], coin["asset"]) == ("ETH", None)
        stats = {s["exchange"]: s for s in coin["summary_stats"]}
        assert (stats["binance"]["current_apr"], stats["binance"]["avg_apr"]) == (D("10.95"), D("41.0625"))
        assert [(s["exchange"], s["volume"], s["open_interest"]) for s in coin["summary_stats"]] == [
            ("binance", D(5_000_000), None),
            ("bybit", D(20_000_000), D(30_000_000)),
            ("hyperliquid", D(50_000_000), D(12_000_000)),
            ("okx", None, D(8_000_000)),
        ]
        assert [(h["exchange"], len(h["points"])) for h in coin["history"]] == [
            ("binance", 4),
            ("bybit", 6),
            ("hyperliquid", 24),
            ("okx", 0),
        ]
        assert coin["history"][0]["points"][0] == {"t": (now - 25 * HOUR_NS) // 1_000_000, "v": D("98.55")}
        assert [p["short"]["exchange"] for p in coin["pairs"]] == ["bybit", "bybit", "binance"]
        assert get_json(url + "/api/coin-detail/NOPE/")[0] == 404
        stats_body = get(url + "/api/stats/")
        assert (stats_body["total_coins"], stats_body["total_exchanges"], stats_body["settlements"]) == (2, 4, 34)
        assert stats_body["history_loaded"] is True
        assert stats_body["oldest_settlement"] == (now - 25 * HOUR_NS) // 1_000_000
        history = get(url + "/api/funding-history/ETH?days=1&exchanges=binance")
        (series,) = history["series"]
        assert [(p["rate"], p["interval_h"], p["apr"]) for p in series["points"]] == [
            (D("0.0003"), 8, D("32.85")),
            (D("0.0002"), 8, D("21.9")),
            (D("0.0001"), 8, D("10.95")),
        ]
        assert get_json(url + "/api/funding-history/ETH?days=36")[0] == 422


def test_nothing_is_served_half_loaded() -> None:
    ctx = build_context(scenario_settings(), None, model=ReadModel(), universe=Universe())
    with serve(create_app(ctx)) as url:
        for path in ("/api/funding-table/", "/api/best-opportunities/", "/api/stats/", "/api/coin-detail/BTC/"):
            assert get_json(url + path)[0] == 503, path


def test_the_feed_settles_rates_seen_in_the_read_model() -> None:
    now = time.time_ns()
    model = funding_model(now)
    ctx = build_context(scenario_settings(), None, model=model, universe=funding_universe())
    feed = ctx.funding
    assert feed is not None
    assert feed.scan(now) == []  # every rate is quoted for a settlement still ahead
    past = now - 60 * S
    model.symbols["ETH"].funding[OK] = funding(OK, "0.0007", 8, past, past - 10 * S)
    (settled,) = feed.scan(now)  # 60 s past with no rollover: settled after the 30 s grace
    assert (settled.instrument_id, settled.rate, settled.settled_ts_ns) == (OK, D("0.0007"), past)
    assert feed.history.last(OK) == settled and feed.scan(now + S) == []
    rolled = funding(BN, "0.0002", 8, grid_next(now, 8) + 8 * HOUR_NS, grid_next(now, 8) + S)
    model.symbols["ETH"].funding[BN] = rolled
    # 31 s after the 8 h boundary: past the grace even when the 4 h boundary is the same instant.
    settled_then = {s.instrument_id: s for s in feed.scan(grid_next(now, 8) + 31 * S)}
    assert (settled_then[BN].rate, settled_then[BN].settled_ts_ns) == (D("0.0001"), grid_next(now, 8))
    assert settled_then[BY].settled_ts_ns == grid_next(now, 4)  # quiet since: settled after the grace


def test_recent_funding_alerts_newest_first_without_duplicates() -> None:
    now = time.time_ns()
    ctx = build_context(scenario_settings(), None, model=funding_model(now), universe=funding_universe())
    assert ctx.funding is not None
    first, second = funding_alert("ETH", 1), funding_alert("BTC", 2)
    assert ctx.funding.add_alert(first) and ctx.funding.add_alert(second)
    assert not ctx.funding.add_alert(first)  # at-least-once delivery: the same event id again
    with serve(create_app(ctx)) as url:
        alerts = get(url + "/api/funding-alerts")["alerts"]
        assert [(a["symbol"], a["detected_time"], a["spread_apr"]) for a in alerts] == [
            ("BTC", 2, D("48.18")),
            ("ETH", 1, D("48.18")),
        ]
        assert [a["event_id"] for a in get(url + "/api/funding-alerts?symbol=ethusdt")["alerts"]] == [first.event_id]
        assert get(url + "/api/funding-alerts")["closed"] == []
        closed = funding_closed("ETH", 1, 5)
        assert ctx.funding.add_alert(closed) and not ctx.funding.add_alert(closed)
        (ended,) = get(url + "/api/funding-alerts?symbol=ETH")["closed"]
        assert (ended["event_id"], ended["start_time"], ended["end_time"]) == (first.event_id, 1, 5)
        assert get_json(url + "/api/funding-alerts?symbol=NOPE")[0] == 404
