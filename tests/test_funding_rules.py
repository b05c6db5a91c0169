"""The funding-arbitrage rules at their boundaries: the alert record field by field, the open
threshold, the maximum age, the cooldown per pair, legs without a rate, quote groups and bridges."""

from __future__ import annotations

from decimal import Decimal

from processors.funding import FundingConfig, process_funding
from schemas.arbitrage import FundingLeg, FundingOpportunity, SymbolState
from schemas.market import Funding

T0 = 1_790_000_000_000_000_000
S = 1_000_000_000
# 0.0001 per 8 h = 0.1095 APR; open_apr 0.0365 = a rate difference of exactly 0.0000333.. per 8 h,
# so thresholds are tested with hourly rates: 0.0000025 per hour difference = 0.0219 APR.
CONFIG = FundingConfig(open_apr=Decimal("0.0219"), max_age_ms=60_000, cooldown_s=600)


def funding(
    venue: str, rate: str | None, interval_h: int | None, ts: int, inst: str | None = None, next_ts: int | None = None
) -> Funding:
    return Funding(
        instrument_id=inst or f"BTC-USDT-PERP@{venue}",
        venue=venue,
        native_symbol="X",
        base="BTC",
        rate=None if rate is None else Decimal(rate),
        interval_h=interval_h,
        next_funding_ts_ns=next_ts,
        exchange_ts_ns=ts - 7,
        receipt_ts_ns=ts,
    )


def test_the_alert_record_field_by_field() -> None:
    state = SymbolState()
    assert process_funding("BTC", state, funding("binance", "0.0001", 8, T0, next_ts=T0 + 9 * S), CONFIG) == []
    (alert,) = process_funding("BTC", state, funding("okx", "0.0000100", 4, T0 + 2 * S, next_ts=T0 + 5 * S), CONFIG)
    assert alert == FundingOpportunity(
        event_id=f"BTC:funding:okx/binance:{T0 + 2 * S}",
        symbol="BTC",
        long=FundingLeg(
            venue="okx",
            instrument_id="BTC-USDT-PERP@okx",
            rate=Decimal("0.0000100"),
            interval_h=4,
            apr=Decimal("0.0219"),
            next_funding_ts_ns=T0 + 5 * S,
            age_ms=0,
            exchange_ts_ns=T0 + 2 * S - 7,
            receipt_ts_ns=T0 + 2 * S,
        ),
        short=FundingLeg(
            venue="binance",
            instrument_id="BTC-USDT-PERP@binance",
            rate=Decimal("0.0001"),
            interval_h=8,
            apr=Decimal("0.1095"),
            next_funding_ts_ns=T0 + 9 * S,
            age_ms=2_000,
            exchange_ts_ns=T0 - 7,
            receipt_ts_ns=T0,
        ),
        spread_apr=Decimal("0.0876"),
        exchange_ts_ns=T0 + 2 * S - 7,
        receipt_ts_ns=T0 + 2 * S,
        detected_ts_ns=T0 + 2 * S,
    )


def alerts_between(first: Funding, second: Funding, config: FundingConfig = CONFIG) -> list[FundingOpportunity]:
    state = SymbolState()
    assert process_funding("BTC", state, first, config) == []
    return process_funding("BTC", state, second, config)


def test_the_open_threshold_is_inclusive_and_either_side_can_be_the_long() -> None:
    at = alerts_between(funding("binance", "0.0000100", 1, T0), funding("okx", "0.0000125", 1, T0))
    assert [(a.long.venue, a.short.venue, a.spread_apr) for a in at] == [("binance", "okx", Decimal("0.0219000"))]
    below = alerts_between(funding("binance", "0.0000100", 1, T0), funding("okx", "0.0000124", 1, T0))
    assert below == []
    reverse = alerts_between(funding("binance", "0.0000125", 1, T0), funding("okx", "0.0000100", 1, T0))
    assert [(a.long.venue, a.short.venue) for a in reverse] == [("okx", "binance")]


def test_the_other_leg_may_be_exactly_max_age_old_but_not_older() -> None:
    limit = CONFIG.max_age_ms * 1_000_000
    fresh = alerts_between(funding("binance", "0", 1, T0), funding("okx", "0.0001", 1, T0 + limit))
    assert [(a.long.venue, a.long.age_ms) for a in fresh] == [("binance", 60_000)]
    assert alerts_between(funding("binance", "0", 1, T0), funding("okx", "0.0001", 1, T0 + limit + 1)) == []


def test_the_cooldown_is_per_pair_and_ends_exactly_after_cooldown_s() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    assert len(process_funding("BTC", state, funding("okx", "0.0001", 1, T0 + S), CONFIG)) == 1
    # A third venue forms new pairs: okx/binance is in cooldown, gate/binance is not.
    (gate,) = process_funding("BTC", state, funding("gate", "0.0001", 1, T0 + 2 * S), CONFIG)
    assert (gate.long.venue, gate.short.venue) == ("binance", "gate")
    state.funding["BTC-USDT-PERP@gate"] = funding("gate", "0", 1, T0 + 2 * S)  # gate out of the way
    end = T0 + S + CONFIG.cooldown_s * S
    process_funding("BTC", state, funding("binance", "0", 1, end - 1), CONFIG)
    assert process_funding("BTC", state, funding("okx", "0.0001", 1, end - 1), CONFIG) == []
    assert [a.detected_ts_ns for a in process_funding("BTC", state, funding("okx", "0.0001", 1, end), CONFIG)] == [end]
    assert state.funding_alerts["BTC-USDT-PERP@binance|BTC-USDT-PERP@okx"] == end


def test_legs_without_a_rate_or_interval_are_stored_but_never_paired() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0", 1, T0), CONFIG)
    for venue, rate, interval in (("okx", None, 1), ("gate", "0.0001", None), ("bybit", "0.0001", 0)):
        assert process_funding("BTC", state, funding(venue, rate, interval, T0), CONFIG) == []
        assert state.funding[f"BTC-USDT-PERP@{venue}"].rate == (None if rate is None else Decimal(rate))
    # ... and as the other leg they are skipped too: only binance pairs with the new mexc rate.
    (alert,) = process_funding("BTC", state, funding("mexc", "0.0001", 1, T0), CONFIG)
    assert (alert.long.venue, alert.short.venue) == ("binance", "mexc")


def test_same_venue_and_other_groups_never_pair_unless_bridged() -> None:
    usdc = funding("binance", "0.0001", 1, T0, inst="BTC-USDC-PERP@binance")
    assert alerts_between(funding("binance", "0", 1, T0), usdc) == []
    hyper = funding("hyperliquid", "0.0001", 1, T0, inst="BTC-USDC-PERP@hyperliquid")
    assert alerts_between(funding("okx", "0", 1, T0), hyper) == []
    bridged = FundingConfig(open_apr=CONFIG.open_apr, quote_bridges={"USDC": "USD*", "USDT": "USD*"})
    (alert,) = alerts_between(funding("okx", "0", 1, T0), hyper, bridged)
    assert (alert.long.instrument_id, alert.short.instrument_id) == ("BTC-USDT-PERP@okx", "BTC-USDC-PERP@hyperliquid")


def test_every_skipped_leg_is_skipped_alone_and_the_scan_goes_on() -> None:
    # Each rule's skip must move to the next leg (continue), not end the scan (break): every
    # skippable leg sits before the one valid partner, which comes last in the state.
    now = T0 + 3_600 * S
    state = SymbolState()
    skipped = [
        funding("okx", "0.0001", 1, now, inst="ETH-USDT-PERP@okx"),  # the new leg's own venue
        funding("bitmex", "0.0001", 1, now, inst="BTC-USD-INV-PERP@bitmex"),  # another group
        funding("gate", "0.0001", 1, now - 61 * S),  # too old
        funding("bybit", None, 1, now),  # no rate
        funding("mexc", "0.0001", None, now),  # no interval
        funding("kucoin", "0.0000010", 1, now),  # too small a spread
        funding("bitget", "0.0001", 1, now),  # pair in cooldown
    ]
    state.funding = {f.instrument_id: f for f in skipped}
    state.funding_alerts["BTC-USDT-PERP@okx|BTC-USDT-PERP@bitget"] = now - S
    state.funding["BTC-USDT-PERP@binance"] = funding("binance", "0.0001", 1, now)
    alerts = process_funding("BTC", state, funding("okx", "0", 1, now), CONFIG)
    assert [(a.long.venue, a.short.venue) for a in alerts] == [("okx", "binance")]


def test_equal_rates_with_a_zero_threshold_long_the_resting_leg() -> None:
    zero = FundingConfig(open_apr=Decimal(0))
    (alert,) = alerts_between(funding("binance", "0.0001", 8, T0), funding("okx", "0.0001", 8, T0 + S), zero)
    assert (alert.long.venue, alert.short.venue, alert.spread_apr) == ("binance", "okx", Decimal(0))


def test_ages_are_whole_milliseconds() -> None:
    (alert,) = alerts_between(funding("binance", "0", 1, T0), funding("okx", "0.0001", 1, T0 + 2_700_000))
    assert (alert.long.age_ms, type(alert.long.age_ms)) == (2, int)
