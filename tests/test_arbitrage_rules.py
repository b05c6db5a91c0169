"""One focused test per core arbitrage rule, each failing when its rule is deleted (issue 13 item 11).

The rules: the close threshold (hysteresis), ``min_persist_ms``, quote bridges, the per-venue
maximum quote age, and the health view's worst-connection rule. Each was proven by deleting the
rule and watching the test fail (and by ``make mutation``).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from processors.arbitrage import (
    ArbConfig,
    FastBook,
    Outcome,
    cooldown_allows,
    evaluate,
    leg_problem,
    process_quote,
    seconds_until_alert,
)
from processors.health_view import HealthView
from schemas.arbitrage import EpisodeClosed, Leg, SymbolState
from schemas.market import ContractKind, Health, HealthState, Quote, quote_group

T0 = 1_790_000_000_000_000_000
MS = 1_000_000
FEES = {"binance": Decimal("0.0005"), "okx": Decimal("0.0005"), "hyperliquid": Decimal("0.0005")}


def quote(venue: str, bid: str, ask: str, ts: int, quote_ccy: str = "USDT") -> Quote:
    return Quote(
        instrument_id=f"BTC-{quote_ccy}-PERP@{venue}",
        quote=quote_ccy,
        kind=ContractKind.LINEAR,
        venue=venue,
        native_symbol="X",
        base="BTC",
        bid=Decimal(bid),
        bid_size=Decimal("2"),
        ask=Decimal(ask),
        ask_size=Decimal("3"),
        exchange_ts_ns=ts,
        receipt_ts_ns=ts,
    )


def okx_at(bid: str, ts: int) -> Quote:
    """okx's side of the pair buy binance at 100 / sell okx at ``bid``: net = bid/100 - 1 - 0.001."""
    return quote("okx", bid, str(Decimal(bid) + Decimal("0.01")), ts)


def run(state: SymbolState, quotes: list[Quote], config: ArbConfig, fast: FastBook | None = None) -> list[Outcome]:
    return [process_quote("BTC", state, q, {}, q.receipt_ts_ns, config, fast) for q in quotes]


KEY = "BTC-USDT-PERP@binance|BTC-USDT-PERP@okx"


@pytest.mark.parametrize("fast", [False, True])
def test_open_episode_survives_between_the_thresholds_and_closes_below_close(fast: bool) -> None:
    # open 0.0015, close 0.0005: net 0.0010 keeps an OPEN episode alive (hysteresis) ...
    config = ArbConfig(taker_fees=FEES, min_ticks=1)
    state, book = SymbolState(), FastBook() if fast else None
    binance = quote("binance", "99.9", "100", T0)
    outs = run(state, [binance, okx_at("100.9", T0 + MS), okx_at("100.2", T0 + 2 * MS)], config, book)
    assert [a.net_spread for a in outs[1].alerts] == [Decimal("0.0080")]
    assert outs[2].closed == [] and state.episodes[KEY].last_net == Decimal("0.0010")
    assert state.episodes[KEY].ticks == 2
    # ... exactly at the close threshold it still holds (net < close closes) ...
    at_close = run(state, [okx_at("100.15", T0 + 3 * MS)], config, book)[0]
    assert at_close.closed == [] and state.episodes[KEY].last_net == Decimal("0.0005")
    # ... and just below it closes, with the reason and the stats of the three ticks.
    (closed,) = run(state, [okx_at("100.14", T0 + 4 * MS)], config, book)[0].closed
    assert closed == EpisodeClosed(
        event_id=f"BTC:binance->okx:{T0 + MS}",
        symbol="BTC",
        buy_venue="binance",
        sell_venue="okx",
        buy_instrument_id="BTC-USDT-PERP@binance",
        sell_instrument_id="BTC-USDT-PERP@okx",
        start_ts_ns=T0 + MS,
        end_ts_ns=T0 + 4 * MS,
        duration_ms=3,
        peak_net_spread=Decimal("0.0080"),
        avg_net_spread=Decimal("0.0095") / 3,
        ticks=3,
        close_reason="net spread below close threshold",
        alerted=True,
        exchange_ts_ns=T0 + 3 * MS,  # the last evaluation's legs, not the closing tick's
        receipt_ts_ns=T0 + 3 * MS,
    )
    assert KEY not in state.episodes


def test_a_pending_episode_needs_the_open_threshold_not_the_close_one() -> None:
    # Not opened yet (min_ticks 3): net 0.0010 is below open, so the pending episode is dropped.
    config = ArbConfig(taker_fees=FEES, min_ticks=3)
    state = SymbolState()
    outs = run(state, [quote("binance", "99.9", "100", T0), okx_at("100.9", T0 + MS)], config)
    assert state.episodes[KEY].ticks == 1 and not state.episodes[KEY].opened
    out = run(state, [okx_at("100.2", T0 + 2 * MS)], config)[0]
    assert KEY not in state.episodes and out.closed == [] and out.transitions == 1
    assert outs[1].transitions == 1


def test_min_persist_ms_holds_the_alert_until_the_spread_has_lasted() -> None:
    config = ArbConfig(taker_fees=FEES, min_ticks=1, min_persist_ms=500)
    state = SymbolState()
    binance = quote("binance", "99.9", "100", T0)
    early = run(state, [binance, okx_at("101", T0), okx_at("101", T0 + 499 * MS)], config)
    assert [o.alerts for o in early] == [[], [], []]
    assert state.episodes[KEY].ticks == 2 and not state.episodes[KEY].opened
    state.quotes[binance.instrument_id] = quote("binance", "99.9", "100", T0 + 500 * MS)  # keep the leg fresh
    (alert,) = run(state, [okx_at("101", T0 + 500 * MS)], config)[0].alerts
    assert alert.episode_start_ts_ns == T0 and alert.detected_ts_ns == T0 + 500 * MS
    assert alert.event_id == f"BTC:binance->okx:{T0}"


@pytest.mark.parametrize("fast", [False, True])
def test_quote_bridges_make_usdc_and_usdt_comparable_only_when_configured(fast: bool) -> None:
    usdt = quote("binance", "99.9", "100", T0)
    usdc = quote("hyperliquid", "101", "101.01", T0 + MS, quote_ccy="USDC")
    plain = ArbConfig(taker_fees=FEES, min_ticks=1)
    state = SymbolState()
    assert run(state, [usdt, usdc], plain, FastBook() if fast else None)[1].alerts == []
    assert state.episodes == {}
    bridged = ArbConfig(taker_fees=FEES, min_ticks=1, quote_bridges={"USDC": "USD*", "USDT": "USD*"})
    state = SymbolState()
    (alert,) = run(state, [usdt, usdc], bridged, FastBook() if fast else None)[1].alerts
    assert (alert.buy.instrument_id, alert.sell.instrument_id) == (usdt.instrument_id, usdc.instrument_id)
    assert alert.net_spread == Decimal("0.0090")


def test_max_age_per_venue_overrides_the_default_both_ways() -> None:
    config = ArbConfig(taker_fees=FEES, max_age_ms=3_000, max_age_ms_by_venue={"hyperliquid": 10_000, "okx": 500})
    now = T0 + 5_000 * MS
    assert leg_problem(quote("binance", "99", "100", T0), None, now, config) == "stale quote"
    assert leg_problem(quote("hyperliquid", "99", "100", T0), None, now, config) is None
    assert leg_problem(quote("hyperliquid", "99", "100", T0 - 5_000 * MS), None, now, config) is None  # 10 s: limit
    assert leg_problem(quote("hyperliquid", "99", "100", T0 - 5_001 * MS), None, now, config) == "stale quote"
    assert leg_problem(quote("okx", "99", "100", now - 500 * MS), None, now, config) is None
    assert leg_problem(quote("okx", "99", "100", now - 501 * MS), None, now, config) == "stale quote"
    assert leg_problem(quote("binance", "99", "100", now - 3_000 * MS), None, now, config) is None


def test_an_old_leg_on_a_slow_venue_still_trades_when_its_limit_allows() -> None:
    config = ArbConfig(taker_fees=FEES, min_ticks=1, max_age_ms_by_venue={"binance": 60_000})
    state = SymbolState()
    old_binance = quote("binance", "99.9", "100", T0)
    (alert,) = run(state, [old_binance, okx_at("101", T0 + 30_000 * MS)], config)[1].alerts
    assert alert.buy.age_ms == 30_000 and alert.sell.age_ms == 0


def health(connection: str, state: HealthState, venue: str = "binance") -> Health:
    return Health(venue=venue, connection=connection, state=state, exchange_ts_ns=T0, receipt_ts_ns=T0)


def test_health_view_keeps_the_venue_down_while_any_connection_is_down() -> None:
    view = HealthView()
    view.apply(health("a", HealthState.STREAMING))
    view.apply(health("b", HealthState.DISCONNECTED))
    view.apply(health("a", HealthState.STREAMING))  # the healthy connection speaks last
    assert view.by_venue["binance"].state is HealthState.DISCONNECTED
    assert view.by_venue["binance"].connection == "b"
    view.apply(health("x", HealthState.STALE, venue="okx"))  # another venue changes nothing here
    assert view.by_venue["binance"].connection == "b" and view.by_venue["okx"].state is HealthState.STALE
    view.apply(health("b", HealthState.STREAMING))
    assert view.by_venue["binance"] == health("b", HealthState.STREAMING)
    assert len(view.by_connection) == 3


@pytest.mark.parametrize("bad", [HealthState.DISCONNECTED, HealthState.STALE, HealthState.ERROR, HealthState.GAP])
def test_every_unhealthy_state_blocks_a_leg_and_every_healthy_one_lets_it_trade(bad: HealthState) -> None:
    now = T0 + MS
    leg = quote("binance", "99", "100", T0)
    assert leg_problem(leg, health("a", bad), now, ArbConfig(taker_fees=FEES)) == f"venue {bad.value}"
    for good in (HealthState.CONNECTED, HealthState.SUBSCRIBED, HealthState.STREAMING):
        assert leg_problem(leg, health("a", good), now, ArbConfig(taker_fees=FEES)) is None


def test_cooldown_boundary_is_inclusive_and_the_break_ratio_is_exact() -> None:
    config = ArbConfig(taker_fees=FEES, min_ticks=1, cooldown_s=300)
    state = SymbolState(last_alert_ts_ns=T0, last_alert_net=Decimal("0.004"))
    opp = run(SymbolState(), [quote("binance", "99.9", "100", T0), okx_at("101", T0)], config)[1].alerts[0]
    at = msgspec.structs.replace
    assert cooldown_allows(state, at(opp, detected_ts_ns=T0 + 300 * 10**9), config) == (True, False)
    inside = at(opp, detected_ts_ns=T0 + 300 * 10**9 - 1)
    assert cooldown_allows(state, at(inside, net_spread=Decimal("0.008")), config) == (True, True)
    assert cooldown_allows(state, at(inside, net_spread=Decimal("0.0079")), config) == (False, False)
    assert cooldown_allows(SymbolState(), inside, config) == (True, False)


def test_a_leg_names_its_problem_for_each_missing_or_non_positive_field() -> None:
    config, now = ArbConfig(taker_fees=FEES), T0
    ok = quote("binance", "99", "100", T0)
    assert leg_problem(ok, None, now, config) is None
    for missing in ("bid", "ask", "bid_size", "ask_size"):
        one_sided = msgspec.structs.replace(ok, **{missing: None})
        assert leg_problem(one_sided, None, now, config) == "one-sided book", missing
    for zero in ("bid", "bid_size", "ask_size"):
        empty = msgspec.structs.replace(ok, **{zero: Decimal(0)})
        assert leg_problem(empty, None, now, config) == "non-positive price or size", zero
    assert leg_problem(msgspec.structs.replace(ok, bid=Decimal("0.0001")), None, now, config) is None


@pytest.mark.parametrize("down_venue", ["binance", "okx"])
def test_an_unhealthy_venue_on_either_leg_blocks_the_opening_and_closes_an_open_episode(down_venue: str) -> None:
    config = ArbConfig(taker_fees=FEES, min_ticks=1)
    down = {down_venue: health("a", HealthState.DISCONNECTED, venue=down_venue)}
    state = SymbolState()
    process_quote("BTC", state, quote("binance", "99.9", "100", T0), down, T0, config)
    assert process_quote("BTC", state, okx_at("101", T0 + MS), down, T0 + MS, config).alerts == []
    assert state.episodes == {}
    assert len(process_quote("BTC", state, okx_at("101", T0 + 2 * MS), {}, T0 + 2 * MS, config).alerts) == 1
    (closed,) = process_quote("BTC", state, okx_at("101", T0 + 3 * MS), down, T0 + 3 * MS, config).closed
    assert closed.close_reason == "venue disconnected" and closed.ticks == 1


def test_transitions_count_every_episode_created_opened_and_removed() -> None:
    # The changelog row must be written at once on any transition: the count is what says so.
    config = ArbConfig(taker_fees=FEES | {"bybit": Decimal("0.0005")}, min_ticks=1)
    state = SymbolState()
    run(state, [quote("binance", "99.9", "100", T0), quote("bybit", "99.9", "100", T0)], config)
    both = run(state, [okx_at("101", T0 + MS)], config)[0]  # two episodes created and opened at once
    assert (len(both.alerts), both.transitions) == (1, 4)  # the second opening is in cooldown
    assert run(state, [okx_at("101", T0 + 2 * MS)], config)[0].transitions == 0
    gone = run(state, [okx_at("100", T0 + 3 * MS)], config)[0]
    assert (len(gone.closed), gone.transitions) == (2, 2)
    pending = ArbConfig(taker_fees=FEES, min_ticks=2)
    state = SymbolState()
    run(state, [quote("binance", "99.9", "100", T0)], pending)
    assert run(state, [okx_at("101", T0 + MS)], pending)[0].transitions == 1  # created, not open
    assert run(state, [okx_at("101", T0 + 2 * MS)], pending)[0].transitions == 1  # opened


def test_a_negative_open_threshold_tracks_the_peak_from_the_first_tick() -> None:
    # Watching near-crosses (net below zero) is a valid configuration: the peak is the first net.
    config = ArbConfig(taker_fees=FEES, min_ticks=1, open_threshold=Decimal("-0.01"), close_threshold=Decimal("-0.02"))
    state = SymbolState()
    run(state, [quote("binance", "99.9", "100", T0), okx_at("99.8", T0 + MS)], config)
    assert state.episodes[KEY].peak_net == Decimal("-0.0030")  # not max(0, net)
    run(state, [okx_at("99.7", T0 + 2 * MS)], config)
    assert state.episodes[KEY].peak_net == Decimal("-0.0030")


def test_duration_is_whole_milliseconds_and_the_last_tick_time_is_kept() -> None:
    config = ArbConfig(taker_fees=FEES, min_ticks=1)
    state = SymbolState()
    run(state, [quote("binance", "99.9", "100", T0), okx_at("101", T0 + MS)], config)
    assert state.last_tick_ts_ns == T0 + MS
    later = T0 + MS + 2_500_000  # 2.5 ms later
    (closed,) = run(state, [okx_at("100", later)], config)[0].closed
    assert closed.duration_ms == 2 and type(closed.duration_ms) is int
    assert state.last_tick_ts_ns == later


def test_a_zero_last_alert_net_never_breaks_the_cooldown() -> None:
    config = ArbConfig(taker_fees=FEES, min_ticks=1, cooldown_s=300)
    state = SymbolState(last_alert_ts_ns=T0, last_alert_net=Decimal(0))
    opp = run(SymbolState(), [quote("binance", "99.9", "100", T0), okx_at("101", T0 + MS)], config)[1].alerts[0]
    assert cooldown_allows(state, opp, config) == (False, False)


def test_both_legs_of_an_evaluation_field_by_field_with_fractional_ages() -> None:
    buy = msgspec.structs.replace(quote("binance", "199.8", "200", T0), price_multiplier=Decimal(2))
    sell = quote("okx", "101", "101.1", T0 + 1_500_000)  # 1.5 ms newer: skew and ages round down
    now = T0 + 4_700_000
    opp = evaluate("BTC", buy, sell, now, ArbConfig(taker_fees=FEES), T0)
    assert opp.buy == Leg(
        venue="binance",
        instrument_id="BTC-USDT-PERP@binance",
        price=Decimal(100),  # per base unit: 200 for a contract of 2
        size=Decimal(3),
        fee=Decimal("0.0005"),
        age_ms=4,
        exchange_ts_ns=T0,
        receipt_ts_ns=T0,
        quote="USDT",  # the quote's typed identity travels with the leg
        kind=ContractKind.LINEAR,
    )
    assert opp.sell == Leg(
        venue="okx",
        instrument_id="BTC-USDT-PERP@okx",
        price=Decimal("101"),
        size=Decimal(2),
        fee=Decimal("0.0005"),
        age_ms=3,
        exchange_ts_ns=T0 + 1_500_000,
        receipt_ts_ns=T0 + 1_500_000,
        quote="USDT",
        kind=ContractKind.LINEAR,
    )
    assert (opp.skew_ms, type(opp.skew_ms), opp.size, opp.notional) == (1, int, Decimal(2), Decimal(200))
    newer = T0 + 1_500_000
    assert (opp.exchange_ts_ns, opp.receipt_ts_ns, opp.gross_spread) == (newer, newer, Decimal("0.01"))


def test_a_bridge_renames_only_the_groups_it_names() -> None:
    only_usdc = {"USDC": "USD*"}
    assert quote_group(quote("okx", "1", "2", T0), only_usdc) == "USDT"
    assert quote_group(quote("okx", "1", "2", T0, quote_ccy="USDC"), only_usdc) == "USD*"
    inverse = msgspec.structs.replace(
        quote("okx", "1", "2", T0), instrument_id="BTC-USD-INV-PERP@okx", quote="USD", kind=ContractKind.INVERSE
    )
    assert quote_group(inverse, {"USD": "X"}) == "X-inverse"


def test_a_venue_going_down_closes_its_episode_on_any_other_tick_of_the_symbol() -> None:
    config = ArbConfig(taker_fees=FEES, min_ticks=1)
    state = SymbolState()
    run(state, [quote("binance", "99.9", "100", T0), okx_at("101", T0 + MS)], config)
    down = {"okx": health("a", HealthState.GAP, venue="okx")}
    inverse = msgspec.structs.replace(
        quote("bybit", "99", "99.5", T0 + 2 * MS),
        instrument_id="BTC-USD-INV-PERP@bybit",
        quote="USD",
        kind=ContractKind.INVERSE,
    )
    (closed,) = process_quote("BTC", state, inverse, down, T0 + 2 * MS, config).closed
    assert (closed.close_reason, closed.end_ts_ns) == ("venue gap", T0 + 2 * MS)
    assert state.episodes == {}


def test_seconds_until_alert_counts_down_the_cooldown() -> None:
    config = ArbConfig(taker_fees=FEES, cooldown_s=300)
    assert seconds_until_alert(SymbolState(), T0, config) == 0.0
    state = SymbolState(last_alert_ts_ns=T0)
    assert seconds_until_alert(state, T0 + 100 * 10**9, config) == 200.0
    assert seconds_until_alert(state, T0 + 299_500_000_000, config) == 0.5
    assert seconds_until_alert(state, T0 + 400 * 10**9, config) == 0.0
