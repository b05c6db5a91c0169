"""Funding-rate arbitrage episodes: APR across intervals, net of entry cost, hysteresis, the
per-symbol cooldown, unhealthy and stale legs (``processors.funding``, hand-computed cases)."""

from __future__ import annotations

from decimal import Decimal

from processors.funding import FundingConfig, entry_cost, funding_apr, net_apr, process_funding
from schemas.arbitrage import FundingLeg, FundingOpportunity, SymbolState
from schemas.market import ContractKind, Funding, Health, HealthState, Quote, instrument_key

D = Decimal
T0 = 1_790_000_000_000_000_000
S = 1_000_000_000
FEES = {"binance": D("0.0005"), "okx": D("0.0005"), "hyperliquid": D("0.00045"), "bybit": D("0.00055")}
# hold 8760 h: the entry cost is netted once per year, so net APR = spread APR - entry cost.
CONFIG = FundingConfig(
    open_apr=D("0.10"), close_apr=D("0.05"), hold_h=8760, max_age_ms=60_000, cooldown_s=600, taker_fees=FEES
)


def funding(venue: str, rate: str | None, interval_h: int | None, ts: int, inst: str | None = None) -> Funding:
    instrument_id = inst or f"BTC-USDT-PERP@{venue}"
    key = instrument_key(instrument_id)  # the test's stand-in for the Instrument ingest copies them from
    return Funding(
        instrument_id=instrument_id,
        venue=venue,
        native_symbol="X",
        base="BTC",
        quote=key.quote,
        kind=key.kind,
        rate=None if rate is None else D(rate),
        interval_h=interval_h,
        next_funding_ts_ns=T0 + 3600 * S,
        exchange_ts_ns=ts - 7,
        receipt_ts_ns=ts,
    )


def quote(venue: str, bid: str, ask: str, ts: int) -> Quote:
    return Quote(
        instrument_id=f"BTC-USDT-PERP@{venue}",
        venue=venue,
        native_symbol="X",
        base="BTC",
        quote="USDT",
        kind=ContractKind.LINEAR,
        bid=D(bid),
        bid_size=D(1),
        ask=D(ask),
        ask_size=D(1),
        exchange_ts_ns=ts,
        receipt_ts_ns=ts,
    )


def health(venue: str, state: HealthState) -> Health:
    return Health(venue=venue, connection="c", state=state, exchange_ts_ns=T0, receipt_ts_ns=T0)


def test_apr_normalises_intervals() -> None:
    assert funding_apr(D("0.0001"), 8) == D("0.1095")
    assert funding_apr(D("0.0000125"), 1) == D("0.1095")  # hourly venue, same yearly cost
    assert funding_apr(D("0.0001"), 1) == 8 * funding_apr(D("0.0001"), 8)  # 0.01 %/h is 8x 0.01 %/8 h
    assert funding_apr(D("0.0001"), 4) == D("0.219")


def test_net_apr_amortises_the_entry_cost_over_the_holding_time() -> None:
    assert net_apr(D("0.30"), D("0.002"), 168) == D("0.30") - D("0.002") * 8760 / 168
    assert net_apr(D("0.30"), D("0.002"), 8760) == D("0.298")


def test_the_alert_record_priced_from_quotes() -> None:
    state = SymbolState()
    state.quotes = {
        q.instrument_id: q for q in (quote("okx", "100.00", "100.02", T0), quote("binance", "100.01", "100.03", T0))
    }
    assert process_funding("BTC", state, funding("binance", "0.0002", 8, T0), CONFIG).alerts == []
    out = process_funding(
        "BTC", state, funding("hyperliquid", "0", 1, T0 + S, inst="BTC-USDC-PERP@hyperliquid"), CONFIG
    )
    assert out.alerts == [] and out.transitions == 0  # another quote group
    (alert,) = process_funding("BTC", state, funding("okx", "0.0000100", 4, T0 + 2 * S), CONFIG).alerts
    cost = (D("100.02") - D("100.01")) / D("100.02") + D("0.001")
    assert alert == FundingOpportunity(
        event_id=f"BTC:funding:okx/binance:{T0 + 2 * S}",
        symbol="BTC",
        long=FundingLeg(
            venue="okx",
            instrument_id="BTC-USDT-PERP@okx",
            rate=D("0.0000100"),
            interval_h=4,
            apr=D("0.0219"),
            next_funding_ts_ns=T0 + 3600 * S,
            age_ms=0,
            exchange_ts_ns=T0 + 2 * S - 7,
            receipt_ts_ns=T0 + 2 * S,
            price=D("100.02"),
            fee=D("0.0005"),
        ),
        short=FundingLeg(
            venue="binance",
            instrument_id="BTC-USDT-PERP@binance",
            rate=D("0.0002"),
            interval_h=8,
            apr=D("0.219"),
            next_funding_ts_ns=T0 + 3600 * S,
            age_ms=2_000,
            exchange_ts_ns=T0 - 7,
            receipt_ts_ns=T0,
            price=D("100.01"),
            fee=D("0.0005"),
        ),
        spread_apr=D("0.1971"),
        exchange_ts_ns=T0 + 2 * S - 7,
        receipt_ts_ns=T0 + 2 * S,
        detected_ts_ns=T0 + 2 * S,
        entry_cost=cost,
        priced=True,
        net_apr=D("0.1971") - cost,
        episode_start_ts_ns=T0 + 2 * S,
    )
    assert state.funding_last_alert_ts_ns == T0 + 2 * S and state.funding_last_alert_net == D("0.1971") - cost


def test_without_usable_quotes_the_entry_cost_is_the_fees() -> None:
    long = FundingLeg(
        venue="a", instrument_id="a", rate=D(0), interval_h=1, apr=D(0), next_funding_ts_ns=None, age_ms=0,
        exchange_ts_ns=0, receipt_ts_ns=0, price=None, fee=D("0.0005"),
    )  # fmt: skip
    short = FundingLeg(
        **{**{f: getattr(long, f) for f in long.__struct_fields__}, "price": D("99"), "fee": D("0.0006")}
    )
    assert entry_cost(long, short) == (D("0.0011"), False)
    crossed = SymbolState()
    crossed.quotes = {"BTC-USDT-PERP@okx": quote("okx", "100.02", "100.00", T0)}  # crossed: unusable
    process_funding("BTC", crossed, funding("binance", "0.0002", 8, T0), CONFIG)
    (alert,) = process_funding("BTC", crossed, funding("okx", "0", 8, T0), CONFIG).alerts
    assert (alert.priced, alert.entry_cost, alert.long.price) == (False, D("0.001"), None)
    assert alert.net_apr == D("0.219") - D("0.001")


def step(state: SymbolState, venue: str, rate: str, ts: int, config: FundingConfig = CONFIG) -> tuple[int, int]:
    """(alerts, closed episodes) after one hourly funding update of ``venue`` (binance stays at 0)."""
    out = process_funding("BTC", state, funding(venue, rate, 1, ts), config)
    return len(out.alerts), len(out.closed)


def test_hysteresis_opens_at_the_open_threshold_and_closes_under_the_close_one() -> None:
    # Fees only (no quotes): cost 0.001, so net = rate x 8760 - 0.001 with binance at 0.
    # Opens at net 0.10 = rate 0.101/8760; stays open down to net 0.05; closes under it.
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    just_below = str(D("0.101") / 8760 - D("1E-12"))
    assert step(state, "okx", just_below, T0 + S) == (0, 0) and state.funding_episodes == {}
    assert step(state, "okx", str(D("0.101") / 8760), T0 + 2 * S) == (1, 0)
    key = "BTC-USDT-PERP@binance|BTC-USDT-PERP@okx"
    assert state.funding_episodes[key].start_ts_ns == T0 + 2 * S
    assert step(state, "okx", str(D("0.051") / 8760), T0 + 3 * S) == (0, 0)  # net 0.05: still open
    assert state.funding_episodes[key].evaluations == 2
    out = process_funding("BTC", state, funding("okx", str(D("0.051") / 8760 - D("1E-12")), 1, T0 + 4 * S), CONFIG)
    (closed,) = out.closed
    assert (closed.event_id, closed.close_reason, closed.evaluations, closed.alerted) == (
        f"BTC:funding:binance/okx:{T0 + 2 * S}",
        "net APR below the close threshold",
        2,
        True,
    )
    assert (closed.duration_ms, closed.peak_net_apr) == (2_000, D("0.10"))
    assert state.funding_episodes == {} and out.transitions == 1


def test_the_cooldown_is_per_symbol_and_a_much_better_opening_breaks_it() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    assert step(state, "okx", "0.0000200", T0 + S) == (1, 0)  # net 0.1742
    # another pair of the same symbol opens inside the cooldown: an episode, no alert
    out = process_funding("BTC", state, funding("bybit", "0.0000200", 1, T0 + 2 * S), CONFIG)
    assert (len(out.alerts), out.transitions, len(state.funding_episodes)) == (0, 1, 2)
    assert state.funding_episodes["BTC-USDT-PERP@binance|BTC-USDT-PERP@bybit"].alerted is False
    # twice the last alert's net APR breaks it
    (broken,) = process_funding("BTC", state, funding("hyperliquid", "0.0000400", 1, T0 + 3 * S), CONFIG).alerts
    assert broken.cooldown_broken is True and broken.net_apr == D("0.3504") - D("0.00095")
    # after the cooldown an ordinary opening alerts again: close okx's episode, reopen it later
    assert step(state, "okx", "0", T0 + 4 * S) == (0, 1)
    later = T0 + 3 * S + 600 * S
    process_funding("BTC", state, funding("binance", "0", 1, later), CONFIG)
    assert step(state, "okx", "0.0000200", later) == (1, 0)


def test_an_unhealthy_or_stale_leg_is_not_used_and_closes_its_episode() -> None:
    state = SymbolState()
    down = {"okx": health("okx", HealthState.DISCONNECTED)}
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    out = process_funding("BTC", state, funding("okx", "0.0001", 1, T0 + S), CONFIG, down)
    assert (out.alerts, state.funding_episodes) == ([], {})
    streaming = {"okx": health("okx", HealthState.STREAMING)}
    assert len(process_funding("BTC", state, funding("okx", "0.0001", 1, T0 + 2 * S), CONFIG, streaming).alerts) == 1
    # binance's update sweeps the episode: okx went stale -> closed with the reason
    (closed,) = process_funding("BTC", state, funding("binance", "0", 1, T0 + 63 * S), CONFIG, streaming).closed
    assert closed.close_reason == "stale funding rate" and state.funding_episodes == {}
    assert len(process_funding("BTC", state, funding("okx", "0.0001", 1, T0 + 64 * S), CONFIG).alerts) == 0  # cooldown
    assert state.funding_episodes["BTC-USDT-PERP@binance|BTC-USDT-PERP@okx"].alerted is False
    # an open episode whose venue turns unhealthy closes on the next update of the symbol
    (closed,) = process_funding("BTC", state, funding("binance", "0", 1, T0 + 700 * S), CONFIG).closed
    assert (closed.close_reason, closed.alerted) == ("stale funding rate", False)
    assert len(process_funding("BTC", state, funding("okx", "0.0001", 1, T0 + 700 * S), CONFIG).alerts) == 1
    (closed,) = process_funding("BTC", state, funding("binance", "0", 1, T0 + 701 * S), CONFIG, down).closed
    assert closed.close_reason == "venue disconnected"


def test_a_reversed_carry_closes_the_old_direction_and_opens_the_new_one() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    step(state, "okx", "0.0001", T0 + S)
    out = process_funding("BTC", state, funding("okx", "-0.0001", 1, T0 + 700 * S), CONFIG)
    assert [c.long_venue for c in out.closed] == ["binance"] and [a.long.venue for a in out.alerts] == []
    assert list(state.funding_episodes) == []  # binance is stale by now: the new direction has no fresh leg
    process_funding("BTC", state, funding("binance", "0", 1, T0 + 701 * S), CONFIG)
    assert list(state.funding_episodes) == ["BTC-USDT-PERP@okx|BTC-USDT-PERP@binance"]


def test_quote_groups_pair_only_when_bridged_and_legs_without_rate_are_skipped() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("okx", "0", 1, T0), CONFIG)
    for venue, rate, interval in (("gate", None, 1), ("mexc", "0.0001", None), ("bybit", "0.0001", 0)):
        assert process_funding("BTC", state, funding(venue, rate, interval, T0), CONFIG).alerts == []
    hyper = funding("hyperliquid", "0.0001", 1, T0, inst="BTC-USDC-PERP@hyperliquid")
    assert process_funding("BTC", state, hyper, CONFIG).alerts == []
    bridged = FundingConfig(open_apr=D("0.10"), quote_bridges={"USDC": "USD*", "USDT": "USD*"}, max_age_ms=60_000)
    (alert,) = process_funding("BTC", state, hyper, bridged).alerts
    assert (alert.long.instrument_id, alert.short.instrument_id) == ("BTC-USDT-PERP@okx", "BTC-USDC-PERP@hyperliquid")
