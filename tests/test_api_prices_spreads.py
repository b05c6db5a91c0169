"""GET /api/spreads: best usable bid anywhere against best usable ask anywhere, net of both taker fees.

A hand-built market whose answer is worked out below: multipliers, fees (default
table and an override), stale, crossed, unhealthy and other-group quotes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from api.main import build_context, create_app
from api.readmodel import Changes, ReadModel
from api.universe import Universe
from api.views_arbitrage import ArbFilter, arbitrage_rows
from api.views_spreads import positive_rows, spread_rows, top_pairs
from api.wire import PCT_PLACES, capped
from arbstream.bench.api_market import SyntheticMarket
from schemas.arbitrage import SymbolState
from schemas.market import HealthState, Quote
from tests.test_api_support import D, get_json, health, in_process_model, quote, scenario_settings, serve

S = 1_000_000_000


def _market(t: int) -> ReadModel:
    model, changes = ReadModel(), Changes()
    for venue in ("binance", "okx", "bybit", "gate", "kucoin", "bitmex", "deribit", "bitget", "phemex"):
        model.apply_health(health(venue, HealthState.STREAMING, t, 100), changes)
    model.apply_health(health("mexc", HealthState.STALE, t, 100, reason="no data"), changes)
    btc = [
        quote("BTC-USDT-PERP@binance", "100", "100.1", t, ask_size="3"),
        quote("BTC-USDT-PERP@okx", "100.5", "100.6", t, bid_size="2"),
        quote("BTC-USDT-PERP@bybit", "100300", "100400", t, mult="1000"),  # 100.3 / 100.4 per BTC
        quote("BTC-USDT-PERP@gate", "101", "100", t),  # crossed: a data error, never a leg
        quote("BTC-USDT-PERP@kucoin", "102", "102.1", t - 4 * S),  # older than 3 s: stale
        quote("BTC-USDT-PERP@mexc", "103", "103.1", t),  # its venue reports STALE
        quote("BTC-USD-INV-PERP@bitmex", "110", "110.5", t),  # another quote group
        quote("BTC-USD-INV-PERP@deribit", "109", "109.2", t, bid_size="4", ask_size="5"),
    ]
    # One venue (bitget) holds both the best bid and the best ask.
    eth = [
        quote("ETH-USDT-PERP@bitget", "100.9", "101", t),
        quote("ETH-USDT-PERP@okx", "100.5", "101.2", t),
        quote("ETH-USDT-PERP@phemex", "100.8", "101.5", t),
    ]
    sol = [quote("SOL-USDT-PERP@binance", "150", "150.1", t), quote("SOL-USDT-PERP@okx", "150", "150.2", t - 9 * S)]
    for symbol, quotes in (("BTC", btc), ("ETH", eth), ("SOL", sol)):
        model.apply_state(symbol, SymbolState(quotes={q.instrument_id: q for q in quotes}), changes)
    model.apply_state("NEW", SymbolState(), changes)  # no quotes yet: no row
    model.mark_complete()
    return model


def _pct(sell: str, buy: str) -> Decimal:
    return (D(sell) - D(buy)) / D(buy) * 100


def _net_pct(sell: str, buy: str, buy_fee: str, sell_fee: str) -> Decimal:
    """The worker's net spread (gross fraction minus both fees), in percent."""
    return ((D(sell) - D(buy)) / D(buy) - D(buy_fee) - D(sell_fee)) * 100


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    settings = scenario_settings(max_quote_age_ms=3_000, taker_fees={"okx": "0.001"})
    ctx = build_context(settings, None, model=_market(time.time_ns()), universe=Universe())
    with serve(create_app(ctx)) as url:
        yield url


PCT = capped(PCT_PLACES)


def _rows(url: str) -> list[dict[str, Any]]:
    status, body = get_json(url)
    assert status == 200, body
    rows: list[dict[str, Any]] = body["spreads"]
    return rows


def test_best_bid_and_ask_across_venues_net_of_both_fees(api: str) -> None:
    btc = _rows(api + "/api/spreads?symbols=BTC")[0]
    gross = _pct("100.5", "100.1")
    assert btc == {
        "symbol": "BTC",
        "quote_group": "USDT",
        "usable_venues": 3,  # binance, okx, bybit: gate crossed, kucoin stale, mexc unhealthy
        "buy_exchange": "binance",
        "sell_exchange": "okx",
        "buy_price": D("100.1"),
        "sell_price": D("100.5"),
        "spread": D("0.4"),
        "spread_percentage": PCT(gross),  # percentages go out with 6 decimals (api/wire.py)
        # okx's fee overridden to 0.1 %, binance's from the default table (0.05 %)
        "net_spread_percentage": PCT(_net_pct("100.5", "100.1", "0.0005", "0.001")),
        "size": 2,
        "notional": D("200.2"),
        "buy_fee": D("0.0005"),
        "sell_fee": D("0.001"),
        "buy_instrument_id": "BTC-USDT-PERP@binance",
        "sell_instrument_id": "BTC-USDT-PERP@okx",
    }


def test_a_venue_holding_both_sides_pairs_with_the_best_other_venue(api: str) -> None:
    eth = _rows(api + "/api/spreads?symbols=ETH")[0]
    # (buy okx 101.2, sell bitget 100.9) grosses -0.296 %; (buy bitget 101, sell phemex 100.8) -0.198 %.
    assert (eth["buy_exchange"], eth["sell_exchange"], eth["spread"]) == ("bitget", "phemex", D("-0.2"))
    assert eth["net_spread_percentage"] == PCT(_net_pct("100.8", "101", "0.0006", "0.0006"))


def test_other_quote_groups_multipliers_and_too_few_usable_venues(api: str) -> None:
    inverse = _rows(api + "/api/spreads?symbols=BTC&quote_group=USD-inverse")[0]
    assert (inverse["buy_exchange"], inverse["sell_exchange"], inverse["usable_venues"]) == ("deribit", "bitmex", 2)
    assert (inverse["spread"], inverse["size"]) == (D("0.8"), 2)
    assert inverse["net_spread_percentage"] == PCT(_net_pct("110", "109.2", "0.0005", "0.00075"))
    sol = _rows(api + "/api/spreads?symbols=SOL")[0]
    assert (sol["usable_venues"], sol["spread"], sol["net_spread_percentage"], sol["buy_exchange"]) == (
        1,
        None,
        None,
        None,
    )


def test_seed_venue_names_are_accepted(api: str) -> None:
    status, body = get_json(api + "/api/prices?venues=gateio")  # the seed's name for gate
    assert status == 200 and {v for venues in body["prices"].values() for v in venues} == {"gate"}


def test_rows_are_sorted_best_net_first_and_paged(api: str) -> None:
    assert [r["symbol"] for r in _rows(api + "/api/spreads")] == ["BTC", "ETH", "SOL"]
    status, page = get_json(api + "/api/spreads?limit=1&offset=1")
    assert (status, [r["symbol"] for r in page["spreads"]], page["total"]) == (200, ["ETH"], 3)
    assert get_json(api + "/api/spreads?symbols=NOPE")[0] == 404


def test_spread_rows_use_the_worker_fee_table_by_default() -> None:
    t = time.time_ns()
    config = scenario_settings(max_quote_age_ms=3_000).arb_config()
    rows = spread_rows(_market(t), ["BTC"], t, config)
    # binance 0.05 % + okx 0.05 % from processors.settings.DEFAULT_TAKER_FEES
    assert rows[0].net_spread_percentage == _net_pct("100.5", "100.1", "0.0005", "0.0005")
    assert (rows[0].buy_fee, rows[0].sell_fee) == (D("0.0005"), D("0.0005"))


def test_top_pairs_needs_two_venues() -> None:
    t = time.time_ns()
    one: list[Quote] = [quote("X-USDT-PERP@okx", "1", "2", t), quote("X-USDC-PERP@okx", "1", "2", t)]
    assert top_pairs(one) == []
    two = [*one, quote("X-USDT-PERP@binance", "1.5", "2.5", t)]
    assert [(b.venue, s.venue) for b, s in top_pairs(two)] == [("okx", "binance")]


def test_positive_rows_equal_the_filtered_full_pair_matrix() -> None:
    """The WebSocket top list's rows, without evaluating every pair of the market."""
    t = time.time_ns()
    config = scenario_settings(max_quote_age_ms=3_000).arb_config()
    wheres = [ArbFilter(), ArbFilter(symbol="T005"), ArbFilter(venue="okx"), ArbFilter(min_spread_pct=D("0.02"))]
    synthetic = SyntheticMarket(symbols=25).build(t - 2 * S)  # venues disagree by up to 0.05 %: many crossings
    for model in (synthetic, _market(t), in_process_model(t)):
        for where in wheres:
            expected = [r for r in arbitrage_rows(model, t, config, where) if r.spread_percentage > 0]
            assert positive_rows(model, t, config, where) == expected
    assert len(positive_rows(synthetic, t, config, ArbFilter())) > 100
