"""The spread history samples what /api/spread answers, pair by pair, at market size in one pass."""

from __future__ import annotations

import time
from decimal import Decimal

from api.history import SpreadHistory, pair_prices
from api.views_arbitrage import common_pair, reference_spread
from arbstream.bench.api_market import SyntheticMarket
from schemas.arbitrage import SymbolState
from tests.test_api_support import D, in_process_model, quote


def _pairwise(state: SymbolState, bridges: dict[str, str]) -> dict[tuple[str, str], tuple[Decimal, Decimal | None]]:
    """The definition: /api/spread's functions called for every ordered venue pair."""
    venues = sorted({q.venue for q in state.quotes.values()})
    out = {}
    for v1 in venues:
        for v2 in venues:
            pair = common_pair(state, v1, v2, bridges) if v1 != v2 else None
            if pair is not None:
                _, _, diff, pct = reference_spread(*pair)
                if diff is not None:
                    out[(v1, v2)] = (diff, pct)
    return out


def _states() -> list[SymbolState]:
    t = time.time_ns()
    mixed = [
        quote("X-USDT-PERP@binance", "10", "10.2", t),
        quote("X-USDT-PERP@okx", "10.1", "10.3", t, mult="1000"),
        quote("X-USDC-PERP@okx", "9.9", "10.1", t),
        quote("X-USDC-PERP@bybit", "10.4", "10.5", t),
        quote("X-USD-INV-PERP@bitmex", "9", "9.1", t),
        quote("X-USD-INV-PERP@deribit", "9.2", "9.3", t),
        quote("X-USDT-PERP@coindcx", None, None, t, last="10.05"),  # last price only
        quote("X-USDT-PERP@kucoin", None, None, t),  # no price at all
        quote("X-USDT-PERP@gate", "0", "0", t),  # zero reference price: no percentage
    ]
    market = SyntheticMarket(symbols=12).build(t)
    scenario = in_process_model(t)
    return [
        SymbolState(quotes={q.instrument_id: q for q in mixed}),
        *market.symbols.values(),
        *scenario.symbols.values(),
    ]


def test_samples_equal_the_pairwise_definition() -> None:
    for bridges in ({}, {"USDC": "USD*", "USDT": "USD*"}):
        for state in _states():
            history = SpreadHistory(bridges, clock=lambda: 1)
            history.record("S", state)
            got = {
                (v1, v2): (s.spread, s.spread_percentage)
                for v1, v2 in _pairwise(state, bridges)
                for s in history.since("S", v1, v2, 0)
            }
            assert got == _pairwise(state, bridges)
            priced = {k for k, (p1, p2) in pair_prices(state, bridges).items() if p1 is not None and p2 is not None}
            assert priced == {k for k in _pairwise(state, bridges) if k[0] < k[1]}


def test_mixed_groups_pick_the_first_shared_group() -> None:
    state = _states()[0]
    pairs = pair_prices(state, {})
    assert pairs[("binance", "okx")] == (D("10.1"), D("0.0102"))  # USDT first; okx's is 1000-prefixed
    assert pairs[("bybit", "okx")] == (D("10.45"), D("10.0"))  # only USDC is shared
    assert pairs[("bitmex", "deribit")] == (D("9.05"), D("9.25"))
    assert pairs[("binance", "kucoin")] == (D("10.1"), None)  # no price: no sample
    assert ("binance", "bitmex") not in pairs  # USDT and USD-inverse never compare


def test_one_stored_entry_serves_both_directions_within_interval_and_ring_bounds() -> None:
    clock = iter([0, 400_000_000, 1_000_000_000, 2_000_000_000, 3_000_000_000])
    history = SpreadHistory({}, points=3, interval_ms=1_000, clock=lambda: next(clock))

    def state(okx_bid: str) -> SymbolState:
        quotes = [quote("X-USDT-PERP@binance", "10", "10", 1), quote("X-USDT-PERP@okx", okx_bid, okx_bid, 1)]
        return SymbolState(quotes={q.instrument_id: q for q in quotes})

    history.record("X", state("11"))
    history.record("X", state("12"))
    assert [(s.ts_ns, s.spread) for s in history.since("X", "binance", "okx", 0)] == [(0, D("2"))]
    for okx in ("13", "14", "15"):
        history.record("X", state(okx))
    # t=0 and t=0.4 s share a slot (values of the later, time of the first); three slots kept at most.
    assert [(s.ts_ns, s.spread, s.spread_percentage) for s in history.since("X", "binance", "okx", 0)] == [
        (1_000_000_000, D("3"), D("30")),
        (2_000_000_000, D("4"), D("40")),
        (3_000_000_000, D("5"), D("50")),
    ]
    assert [(s.spread, s.spread_percentage) for s in history.since("X", "okx", "binance", 2_500_000_000)] == [
        (D("-5"), D("-5") / D("15") * 100)
    ]
    history.record("X", None)
    assert history.since("X", "binance", "okx", 0) == []


def test_samples_older_than_the_window_are_dropped_even_when_the_ring_is_not_full() -> None:
    """points x interval = 10 s here: a slow symbol keeps 10 s of samples, not 100 of them."""
    now = [0]
    history = SpreadHistory({}, points=10, interval_ms=1_000, clock=lambda: now[0])

    def state(okx_bid: str) -> SymbolState:
        quotes = [quote("X-USDT-PERP@binance", "10", "10", 1), quote("X-USDT-PERP@okx", okx_bid, okx_bid, 1)]
        return SymbolState(quotes={q.instrument_id: q for q in quotes})

    for second, okx in ((0, "11"), (4, "12"), (10, "13"), (11, "14")):
        now[0] = second * 1_000_000_000
        history.record("X", state(okx))
    # At 11 s the window starts at 1 s: the 0 s sample is gone; 10 s - 10 s = 0 was still inside at 10 s.
    assert [(s.ts_ns // 1_000_000_000, s.spread) for s in history.since("X", "binance", "okx", 0)] == [
        (4, D("2")),
        (10, D("3")),
        (11, D("4")),
    ]


def test_the_sample_and_pair_counts_follow_appends_overwrites_ring_window_and_tombstones() -> None:
    """``samples``/``pairs`` (exported on /metrics) equal what the history holds, through every way a
    sample comes and goes."""
    now = [0]
    history = SpreadHistory({}, points=4, interval_ms=100, clock=lambda: now[0])
    states = [s for s in _states() if len(pair_prices(s, {})) > 1][:3]

    def held() -> tuple[int, int]:
        pairs = [(sym, v1, v2) for sym, by_pair in history._series.items() for (v1, v2) in by_pair]
        return sum(len(history.since(sym, v1, v2, 0)) for sym, v1, v2 in pairs), len(pairs)

    steps = [0, 50, 100, 150, 300, 400, 500, 600, 700, 1_500]  # ms: overwrites, appends, full ring, expiry
    for i, ms in enumerate(steps):
        now[0] = ms * 1_000_000
        for n, state in enumerate(states):
            if n < 2 or i < 3:  # the third symbol stops ticking: its samples stay until it ticks again
                history.record(f"S{n}", state)
        assert (history.samples, history.pairs) == held()
    assert history.samples < sum(len(pair_prices(s, {})) for s in states) * 4  # expiry happened
    history.record("S0", None)
    assert (history.samples, history.pairs) == held() and "S0" not in history._series
