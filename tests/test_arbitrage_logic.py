"""Pure arbitrage logic: exact spread math, usability of legs, episodes, cooldown."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.arbitrage import ArbConfig, evaluate, leg_problem, process_quote
from schemas.arbitrage import SymbolState
from schemas.market import ContractKind, Health, HealthState, Quote, instrument_key, quote_group

T0 = 1_790_000_000_000_000_000
MS = 1_000_000
FEES = {"binance": Decimal("0.0005"), "okx": Decimal("0.0005"), "bybit": Decimal("0.00055")}
CONFIG = ArbConfig(taker_fees=FEES, min_ticks=1, cooldown_s=300)


def quote(venue: str, bid: str, ask: str, ts: int, size: str = "2", inst: str | None = None, mult: str = "1") -> Quote:
    instrument_id = inst or f"BTC-USDT-PERP@{venue}"
    key = instrument_key(instrument_id)  # the test's stand-in for the Instrument ingest copies them from
    return Quote(
        instrument_id=instrument_id,
        quote=key.quote,
        kind=key.kind,
        venue=venue,
        native_symbol="X",
        base="BTC",
        bid=Decimal(bid),
        bid_size=Decimal(size),
        ask=Decimal(ask),
        ask_size=Decimal(size),
        price_multiplier=Decimal(mult),
        exchange_ts_ns=ts - MS,
        receipt_ts_ns=ts,
    )


def test_evaluate_exact_values() -> None:
    buy = quote("binance", "99.9", "100", T0, size="3")
    sell = quote("okx", "101", "101.1", T0 + 5 * MS, size="1.5")
    opp = evaluate("BTC", buy, sell, T0 + 20 * MS, CONFIG, T0)
    assert opp.gross_spread == Decimal("0.01")
    assert opp.net_spread == Decimal("0.0090")
    assert (opp.size, opp.notional) == (Decimal("1.5"), Decimal("150.0"))
    assert (opp.buy.price, opp.sell.price, opp.buy.age_ms, opp.sell.age_ms, opp.skew_ms) == (
        Decimal("100"),
        Decimal("101"),
        20,
        15,
        5,
    )
    assert opp.event_id == f"BTC:binance->okx:{T0}"


def test_multiplier_normalised_before_comparing() -> None:
    # 1000PEPE at 0.0112 per 1000 vs PEPE at 0.0000113 per 1: a 0.89 % spread, not 99,900 %.
    buy = quote("binance", "0.0111", "0.0112", T0, inst="PEPE-USDT-PERP@binance", mult="1000")
    sell = quote("okx", "0.0000113", "0.0000114", T0, inst="PEPE-USDT-PERP@okx")
    opp = evaluate("PEPE", buy, sell, T0, CONFIG, T0)
    assert opp.buy.price == Decimal("0.0000112")
    assert opp.gross_spread.quantize(Decimal("0.000001")) == Decimal("0.008929")


def test_leg_problems() -> None:
    now = T0 + 10 * MS
    assert leg_problem(quote("binance", "100", "100", T0), None, now, CONFIG) == "crossed book (data error)"
    assert leg_problem(quote("binance", "100", "99", T0), None, now, CONFIG) == "crossed book (data error)"
    assert leg_problem(quote("binance", "99", "100", T0 - 4_000 * MS), None, now, CONFIG) == "stale quote"
    down = Health(venue="binance", connection="c", state=HealthState.DISCONNECTED, exchange_ts_ns=T0, receipt_ts_ns=T0)
    assert leg_problem(quote("binance", "99", "100", T0), down, now, CONFIG) == "venue disconnected"
    assert leg_problem(quote("binance", "99", "100", T0), None, now, CONFIG) is None


def test_quote_groups() -> None:
    usdt = quote("binance", "1", "2", T0)
    inverse = quote("bitmex", "1", "2", T0, inst="BTC-USD-INV-PERP@bitmex")
    usdc = quote("hyperliquid", "1", "2", T0, inst="BTC-USDC-PERP@hyperliquid")
    assert [(q.quote, q.kind) for q in (usdt, inverse, usdc)] == [
        ("USDT", ContractKind.LINEAR),
        ("USD", ContractKind.INVERSE),
        ("USDC", ContractKind.LINEAR),
    ]
    assert [quote_group(q) for q in (usdt, inverse, usdc)] == ["USDT", "USD-inverse", "USDC"]
    bridged = {"USDC": "USD*", "USDT": "USD*"}
    assert [quote_group(q, bridged) for q in (usdt, inverse, usdc)] == ["USD*", "USD-inverse", "USD*"]


def test_episode_opens_alerts_once_and_closes_with_stats() -> None:
    state = SymbolState()
    config = ArbConfig(taker_fees=FEES, min_ticks=2)
    assert not process_quote("BTC", state, quote("binance", "99.9", "100", T0), {}, T0, config).alerts
    first = process_quote("BTC", state, quote("okx", "101", "101.1", T0 + MS), {}, T0 + MS, config)
    assert not first.alerts  # one tick is not enough to open
    second = process_quote("BTC", state, quote("okx", "101.2", "101.3", T0 + 2 * MS), {}, T0 + 2 * MS, config)
    (alert,) = second.alerts
    assert alert.event_id == f"BTC:binance->okx:{T0 + MS}" and alert.net_spread == Decimal("0.0110")
    closed = process_quote("BTC", state, quote("okx", "100.01", "100.1", T0 + 9 * MS), {}, T0 + 9 * MS, config)
    (episode,) = closed.closed
    assert (episode.ticks, episode.duration_ms, episode.peak_net_spread) == (2, 8, Decimal("0.0110"))
    assert episode.avg_net_spread == Decimal("0.0100") and episode.alerted
    assert episode.event_id == alert.event_id and state.episodes == {}


def test_cooldown_suppresses_second_alert_and_much_better_breaks_it() -> None:
    state = SymbolState()
    steps = [("101", 0), ("100.01", 1), ("101", 2), ("100.01", 3), ("103", 4)]
    alerts = []
    process_quote("BTC", state, quote("binance", "99.9", "100", T0), {}, T0, CONFIG)
    for bid, i in steps:
        ask = str(Decimal(bid) + Decimal("0.1"))
        now = T0 + (i + 1) * 1_000 * MS
        state.quotes["BTC-USDT-PERP@binance"] = quote("binance", "99.9", "100", now)
        alerts += process_quote("BTC", state, quote("okx", bid, ask, now), {}, now, CONFIG).alerts
    assert [a.net_spread for a in alerts] == [Decimal("0.0090"), Decimal("0.0290")]
    assert [a.cooldown_broken for a in alerts] == [False, True]


def test_stale_leg_closes_episode_on_another_pairs_tick() -> None:
    state = SymbolState()
    process_quote("BTC", state, quote("binance", "99.9", "100", T0), {}, T0, CONFIG)
    process_quote("BTC", state, quote("okx", "101", "101.1", T0), {}, T0, CONFIG)
    assert len(state.episodes) == 1
    later = T0 + 5_000 * MS  # both legs older than max_age now
    outcome = process_quote(
        "BTC", state, quote("bybit", "99", "99.5", later, inst="ETH-USD-INV-PERP@bybit"), {}, later, CONFIG
    )
    # Dated when the older leg expired (receipt + max age), not at the tick that found it.
    assert [(c.close_reason, c.end_ts_ns) for c in outcome.closed] == [
        ("stale quote: no binance quote for 3000 ms", T0 + 3_000 * MS)
    ]


prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4)


@settings(max_examples=300, deadline=None)
@given(bid_x=prices, spread_x=prices, bid_y=prices, spread_y=prices)
def test_net_is_gross_less_both_fees_and_groups_never_cross(bid_x, spread_x, bid_y, spread_y) -> None:
    buy = quote("binance", str(bid_x), str(bid_x + spread_x), T0)
    sell = quote("bybit", str(bid_y), str(bid_y + spread_y), T0)
    opp = evaluate("BTC", buy, sell, T0, CONFIG, T0)
    # Recomputed from the inputs, so a wrong formula, a swapped side or a dropped fee fails here.
    ask_x = bid_x + spread_x
    assert opp.gross_spread == (bid_y - ask_x) / ask_x
    assert opp.net_spread == opp.gross_spread - Decimal("0.0005") - Decimal("0.00055")  # both fees, once each
    assert (opp.buy.price, opp.sell.price, opp.buy.fee, opp.sell.fee) == (ask_x, bid_y, FEES["binance"], FEES["bybit"])
    state = SymbolState()
    process_quote("BTC", state, buy, {}, T0, CONFIG)
    inverse = quote("okx", str(bid_y), str(bid_y + spread_y), T0, inst="BTC-USD-INV-PERP@okx")
    outcome = process_quote("BTC", state, inverse, {}, T0, CONFIG)
    assert not outcome.alerts and not state.episodes


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["binance", "okx", "bybit"]), prices, st.integers(0, 20_000)), max_size=40))
def test_no_two_alerts_inside_cooldown_unless_much_better(ticks) -> None:
    state = SymbolState()
    now = T0
    alerts = []
    for venue, bid, step_ms in ticks:
        now += step_ms * MS
        alerts += process_quote("BTC", state, quote(venue, str(bid), str(bid + 1), now), {}, now, CONFIG).alerts
    for earlier, later in itertools.pairwise(alerts):
        inside = later.detected_ts_ns - earlier.detected_ts_ns < CONFIG.cooldown_s * 10**9
        assert not inside or (later.cooldown_broken and later.net_spread >= 2 * earlier.net_spread)
