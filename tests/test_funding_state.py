"""Settlement detection (rollover, quiet venue, missing next-funding time) and the settled history."""

from __future__ import annotations

from decimal import Decimal

from api.funding_math import HOUR_NS
from api.funding_state import DAY_NS, FundingHistory, SettlementTracker
from schemas.funding import FundingSettlement, decode_settlement, encode
from schemas.market import Funding

D = Decimal
S = 1_000_000_000
T = 1_790_006_400 * S
"""An 8 h settlement (on the UTC grid, like every 1 h and 4 h one)."""


def funding(rate: str | None, next_ns: int | None, at: int, *, venue: str = "binance", interval_h: int = 8) -> Funding:
    return Funding(
        instrument_id=f"BTC-USDT-PERP@{venue}",
        venue=venue,
        native_symbol="BTCUSDT",
        base="BTC",
        rate=D(rate) if rate is not None else None,
        interval_h=interval_h,
        next_funding_ts_ns=next_ns,
        exchange_ts_ns=at,
        receipt_ts_ns=at,
    )


def settlement(rate: str, at: int, observed: int, *, venue: str = "binance", interval_h: int = 8) -> FundingSettlement:
    return FundingSettlement(
        instrument_id=f"BTC-USDT-PERP@{venue}",
        venue=venue,
        base="BTC",
        rate=D(rate),
        interval_h=interval_h,
        settled_ts_ns=at,
        observed_ts_ns=observed,
    )


def test_a_rollover_settles_the_last_rate_quoted_before_the_settlement() -> None:
    tracker = SettlementTracker()
    assert tracker.observe(funding("0.0001", T, T - 100 * S)) == []
    assert tracker.observe(funding("0.00012", T, T - 10 * S)) == []
    # Late frame still naming T, received after T: not the rate that was quoted before T.
    assert tracker.observe(funding("0.0009", T, T + 1 * S)) == []
    (settled,) = tracker.observe(funding("0.0003", T + 8 * HOUR_NS, T + 5 * S))
    assert settled == settlement("0.00012", T, T - 10 * S)
    assert settled.key == f"BTC-USDT-PERP@binance|{T}"
    assert tracker.due(T + 8 * HOUR_NS + 30 * S) == [settlement("0.0003", T + 8 * HOUR_NS, T + 5 * S)]


def test_a_quiet_venue_settles_after_the_grace_and_only_once() -> None:
    tracker = SettlementTracker(grace_ns=30 * S)
    tracker.observe(funding("-0.0002", T, T - 60 * S))
    assert tracker.due(T + 29 * S) == []
    assert tracker.due(T + 30 * S) == [settlement("-0.0002", T, T - 60 * S)]
    assert tracker.due(T + 3600 * S) == []
    assert tracker.observe(funding("0.0001", T + 8 * HOUR_NS, T + 40 * S)) == []  # the rollover comes late


def test_no_next_funding_time_settles_on_the_hourly_grid() -> None:
    tracker = SettlementTracker()
    hour = T - HOUR_NS
    assert tracker.observe(funding("0.00001", None, hour + 10 * S, venue="hyperliquid", interval_h=1)) == []
    (settled,) = tracker.observe(funding("0.00002", None, T + 2 * S, venue="hyperliquid", interval_h=1))
    assert (settled.rate, settled.settled_ts_ns, settled.time_estimated) == (D("0.00001"), T, True)
    assert settled.interval_h == 1


def test_what_history_holds_is_not_reported_again_and_missing_rates_are_counted() -> None:
    tracker = SettlementTracker()
    tracker.settled_up_to("BTC-USDT-PERP@binance", T)
    tracker.observe(funding("0.0001", T, T - 5 * S))
    assert tracker.observe(funding("0.0001", T + 8 * HOUR_NS, T + 5 * S)) == []
    tracker.observe(funding(None, T + 8 * HOUR_NS, T + 6 * S))
    assert tracker.unscheduled == 1


def test_history_upserts_by_time_keeps_the_later_observation_and_prunes() -> None:
    history = FundingHistory(retention_ns=2 * DAY_NS)
    assert history.add(settlement("0.0001", T, T - 10 * S))
    assert not history.add(settlement("0.0005", T, T - 20 * S))  # an earlier look at the same settlement
    assert history.add(settlement("0.0002", T, T - 5 * S))
    assert not history.add(settlement("0.0002", T, T - 5 * S))  # a replica's duplicate
    for k, rate in enumerate(("0.0001", "0.0003", "0.0002", "0.0004"), start=1):
        history.add(settlement(rate, T - k * 8 * HOUR_NS, T - k * 8 * HOUR_NS - S))
    assert len(history) == 5
    assert [s.rate for s in history.between("BTC-USDT-PERP@binance", T - DAY_NS, T)] == [
        D("0.0003"),
        D("0.0001"),
        D("0.0002"),
    ]
    # One day of 8 h settlements: (0.0003 + 0.0001 + 0.0002) over 24 h, annualised.
    assert history.average_apr("BTC-USDT-PERP@binance", T - DAY_NS, T) == D("0.219")
    assert history.average_apr("BTC-USDT-PERP@okx", T - DAY_NS, T) is None
    assert history.last("BTC-USDT-PERP@binance") == settlement("0.0002", T, T - 5 * S)
    assert history.prune(T + DAY_NS + S) == 2  # older than two days: T - 24 h and T - 32 h
    assert len(history) == 3


def test_settlements_round_trip_as_decimal_strings() -> None:
    original = settlement("-0.000012345678901234567", T, T - S)
    payload = encode(original)
    assert b'"rate":"-0.000012345678901234567"' in payload
    assert decode_settlement(payload) == original
