"""Funding episodes at their boundaries: the rate's maximum age, the cooldown's end and its break
ratio, which quotes price the entry, the closed-episode record, the sweep of other episodes
(``processors.funding``; helpers and config shared with ``tests/test_funding_logic.py``)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from processors.funding import FundingConfig, entry_price, expire_funding_episodes, process_funding, rate_problem
from schemas.arbitrage import SymbolState
from schemas.market import HealthState
from tests.test_funding_logic import CONFIG, T0, funding, health, quote, step

D = Decimal
S = 1_000_000_000
MAX_AGE_NS = CONFIG.max_age_ms * 1_000_000
KEY = "BTC-USDT-PERP@binance|BTC-USDT-PERP@okx"


def test_a_rate_exactly_max_age_old_is_a_leg_one_ns_more_is_not() -> None:
    at_limit = SymbolState()
    process_funding("BTC", at_limit, funding("binance", "0", 1, T0), CONFIG)
    assert step(at_limit, "okx", "0.0001", T0 + MAX_AGE_NS) == (1, 0)
    past = SymbolState()
    process_funding("BTC", past, funding("binance", "0", 1, T0), CONFIG)
    assert step(past, "okx", "0.0001", T0 + MAX_AGE_NS + 1) == (0, 0) and past.funding_episodes == {}


def _alerted_then_closed(net_rate: str = "0.0001") -> SymbolState:
    """BTC alerted at T0 + 1 s (binance 0, okx ``net_rate``/h); the episode is closed again at T0 + 2 s."""
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    assert step(state, "okx", net_rate, T0 + S) == (1, 0)
    assert step(state, "okx", "0", T0 + 2 * S) == (0, 1)
    return state


def test_the_cooldown_ends_exactly_cooldown_s_after_the_last_alert() -> None:
    end = T0 + S + CONFIG.cooldown_s * S
    state = _alerted_then_closed()
    process_funding("BTC", state, funding("binance", "0", 1, end - 1), CONFIG)
    out = process_funding("BTC", state, funding("okx", "0.0001", 1, end - 1), CONFIG)
    assert (out.alerts, out.transitions) == ([], 1)  # opened inside the cooldown: no alert
    step(state, "okx", "0", end - 1)
    assert step(state, "okx", "0.0001", end) == (1, 0)
    assert state.funding_last_alert_ts_ns == end


def test_the_break_ratio_is_inclusive_and_needs_a_positive_last_alert() -> None:
    # Fees only: net = rate x 8760 - 0.001. The first alert's net is 0.875 (rate 0.0001).
    twice = str((2 * D("0.875") + D("0.001")) / 8760)
    state = _alerted_then_closed()
    (broken,) = process_funding("BTC", state, funding("okx", twice, 1, T0 + 3 * S), CONFIG).alerts
    assert (broken.cooldown_broken, broken.net_apr) == (True, D("1.75"))
    state = _alerted_then_closed()
    just_below = str((2 * D("0.875") + D("0.001")) / 8760 - D("1E-12"))
    assert process_funding("BTC", state, funding("okx", just_below, 1, T0 + 3 * S), CONFIG).alerts == []
    # a last alert at net <= 0 (a zero open threshold) is never "beaten" by a ratio
    zero = FundingConfig(open_apr=D(0), close_apr=D(0), hold_h=8760, max_age_ms=60_000, cooldown_s=600)
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), zero)
    # default fees 0.001 a leg: a gross APR of 0.002 nets exactly 0
    (first,) = process_funding("BTC", state, funding("okx", str(D("0.002") / 8760), 1, T0 + S), zero).alerts
    assert first.net_apr == 0
    process_funding("BTC", state, funding("okx", "-0.001", 1, T0 + 2 * S), zero)
    assert process_funding("BTC", state, funding("okx", "0.01", 1, T0 + 3 * S), zero).alerts == []


@pytest.mark.parametrize(
    ("bid", "ask", "age_ns", "buying", "expected"),
    [
        ("99", "101", 0, True, D(101)),  # the long leg buys at the ask
        ("99", "101", 0, False, D(99)),  # the short leg sells at the bid
        ("99", "101", MAX_AGE_NS, True, D(101)),  # as old as the funding max age: still a price
        ("99", "101", MAX_AGE_NS + 1, True, None),
        ("101", "101", 0, True, None),  # locked or crossed: no price
        ("102", "101", 0, False, None),
        ("0", "101", 0, True, None),  # non-positive bid
    ],
)
def test_which_quotes_price_the_entry(bid: str, ask: str, age_ns: int, buying: bool, expected: Decimal | None) -> None:
    assert entry_price(quote("okx", bid, ask, T0), buying, T0 + age_ns, CONFIG) == expected


def test_entry_prices_are_per_base_unit_and_one_sided_books_are_none() -> None:
    kpepe = msgspec.structs.replace(quote("hyperliquid", "0.0112", "0.0113", T0), price_multiplier=D(1000))
    assert entry_price(kpepe, True, T0, CONFIG) == D("0.0000113")
    one_sided = msgspec.structs.replace(quote("okx", "99", "101", T0), bid=None)
    assert entry_price(one_sided, True, T0, CONFIG) is None and entry_price(None, True, T0, CONFIG) is None


@pytest.mark.parametrize(
    ("state", "usable"),
    [
        (HealthState.STREAMING, True),
        (HealthState.SUBSCRIBED, True),
        (HealthState.CONNECTED, True),
        (HealthState.STALE, False),
        (HealthState.DISCONNECTED, False),
        (HealthState.GAP, False),
        (HealthState.ERROR, False),
    ],
)
def test_venue_health_states(state: HealthState, usable: bool) -> None:
    problem = rate_problem(funding("okx", "0.0001", 1, T0), health("okx", state), T0, CONFIG)
    assert problem == (None if usable else f"venue {state.value}")


def test_rate_problems_in_order() -> None:
    assert rate_problem(funding("okx", None, 1, T0), None, T0, CONFIG) == "no rate or interval"
    assert rate_problem(funding("okx", "0.1", 0, T0), None, T0, CONFIG) == "no rate or interval"
    assert rate_problem(funding("okx", "0.1", None, T0), None, T0, CONFIG) == "no rate or interval"
    stale_and_down = rate_problem(
        funding("okx", "0.1", 1, T0), health("okx", HealthState.ERROR), T0 + MAX_AGE_NS + 1, CONFIG
    )
    assert stale_and_down == "stale funding rate"


def test_the_closed_record_tracks_peak_last_and_the_last_evaluation() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    for k, rate in enumerate(("0.0001", "0.0002", "0.00005")):
        step(state, "okx", rate, T0 + (k + 1) * S)
    episode = state.funding_episodes[KEY]
    assert (episode.evaluations, episode.peak_net_apr, episode.last_net_apr) == (3, D("1.751"), D("0.437"))
    (closed,) = process_funding("BTC", state, funding("okx", "0", 1, T0 + 10 * S), CONFIG).closed
    assert (closed.peak_net_apr, closed.last_net_apr, closed.evaluations) == (D("1.751"), D("0.437"), 3)
    assert (closed.start_ts_ns, closed.end_ts_ns, closed.duration_ms) == (T0 + S, T0 + 10 * S, 9_000)
    assert (closed.exchange_ts_ns, closed.receipt_ts_ns) == (T0 + 3 * S - 7, T0 + 3 * S)  # the last evaluation
    assert (closed.long_instrument_id, closed.short_instrument_id) == tuple(KEY.split("|"))
    assert (closed.long_venue, closed.short_venue, closed.symbol) == ("binance", "okx", "BTC")


def test_an_update_of_another_venue_sweeps_and_keeps_a_healthy_episode() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    step(state, "okx", "0.0001", T0 + S)
    usdc = funding("bybit", "0.001", 1, T0 + 2 * S, inst="BTC-USDC-PERP@bybit")  # another group: pairs with none
    out = process_funding("BTC", state, usdc, CONFIG)
    assert (out.alerts, out.closed, out.transitions) == ([], [], 0)
    assert state.funding_episodes[KEY].evaluations == 2  # re-evaluated by the sweep, still open
    assert list(state.funding_episodes) == [KEY]


def test_the_alert_is_the_opening_evaluation_and_later_ones_keep_its_event_id() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    (alert,) = process_funding("BTC", state, funding("okx", "0.0001", 1, T0 + S), CONFIG).alerts
    step(state, "okx", "0.0002", T0 + 2 * S)
    last = state.funding_episodes[KEY].last
    assert last is not None and last.event_id == alert.event_id == f"BTC:funding:binance/okx:{T0 + S}"
    assert (last.episode_start_ts_ns, last.detected_ts_ns) == (T0 + S, T0 + 2 * S)


def test_the_long_leg_on_an_unhealthy_venue_is_not_used_either() -> None:
    state = SymbolState()
    down = {"binance": health("binance", HealthState.STALE)}
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG, down)
    out = process_funding("BTC", state, funding("okx", "0.0001", 1, T0 + S), CONFIG, down)
    assert (out.alerts, out.transitions, state.funding_episodes) == ([], 0, {})


def test_a_zero_fee_venue_adds_nothing_and_a_zero_cost_pair_opens_at_exactly_the_threshold() -> None:
    free = FundingConfig(open_apr=D("0.0876"), close_apr=D(0), hold_h=8760, max_age_ms=60_000,
                         taker_fees={"binance": D(0), "okx": D(0)})  # fmt: skip
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), free)
    (alert,) = process_funding("BTC", state, funding("okx", "0.00001", 1, T0 + S), free).alerts  # gross 0.0876
    assert (alert.entry_cost, alert.net_apr, alert.spread_apr) == (D(0), D("0.0876"), D("0.0876"))
    half = FundingConfig(hold_h=8760, taker_fees={"binance": D(0), "okx": D("0.0005")})
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), half)
    (alert,) = process_funding("BTC", state, funding("okx", "0.0001", 1, T0 + S), half).alerts
    assert (alert.long.fee, alert.short.fee, alert.entry_cost) == (D(0), D("0.0005"), D("0.0005"))
    state = SymbolState()
    process_funding("BTC", state, funding("okx", "0", 1, T0), half)
    (alert,) = process_funding("BTC", state, funding("binance", "0.0001", 1, T0 + S), half).alerts
    assert (alert.long.venue, alert.entry_cost) == ("okx", D("0.0005"))


def test_ages_and_durations_are_whole_milliseconds() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    (alert,) = process_funding("BTC", state, funding("okx", "0.0001", 1, T0 + 2_700_000), CONFIG).alerts
    assert (alert.long.age_ms, type(alert.long.age_ms)) == (2, int)
    (closed,) = process_funding("BTC", state, funding("okx", "0", 1, T0 + 2_700_000 + 1_500_000), CONFIG).closed
    assert (closed.duration_ms, type(closed.duration_ms)) == (1, int)


def test_the_sweep_closes_a_funding_episode_once_a_leg_is_stale_and_leaves_a_usable_one_alone() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    assert step(state, "okx", "0.0001", T0 + S) == (1, 0)
    evaluations = state.funding_episodes[KEY].evaluations
    # Binance's rate (T0) is exactly max-age old: still a leg; the sweep is not an evaluation.
    kept = expire_funding_episodes("BTC", state, T0 + MAX_AGE_NS, CONFIG)
    assert (kept.closed, kept.transitions, state.funding_episodes[KEY].evaluations) == ([], 0, evaluations)
    out = expire_funding_episodes("BTC", state, T0 + MAX_AGE_NS + 1, CONFIG)
    assert [(c.long_instrument_id, c.short_instrument_id, c.close_reason) for c in out.closed] == [
        ("BTC-USDT-PERP@binance", "BTC-USDT-PERP@okx", "stale funding rate")
    ]
    assert (out.transitions, state.funding_episodes) == (1, {})


def test_the_sweep_closes_a_funding_episode_whose_venue_went_down() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    assert step(state, "okx", "0.0001", T0 + S) == (1, 0)
    out = expire_funding_episodes("BTC", state, T0 + 2 * S, CONFIG, {"okx": health("okx", HealthState.DISCONNECTED)})
    assert [c.close_reason for c in out.closed] == ["venue disconnected"] and state.funding_episodes == {}
