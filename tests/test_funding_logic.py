"""Funding-rate arbitrage: APR normalisation across intervals, groups, staleness, cooldown."""

from __future__ import annotations

from decimal import Decimal

from processors.funding import FundingConfig, funding_apr, process_funding
from schemas.arbitrage import SymbolState
from schemas.market import Funding

T0 = 1_790_000_000_000_000_000
S = 1_000_000_000


def funding(venue: str, rate: str, interval_h: int, ts: int, inst: str | None = None) -> Funding:
    return Funding(
        instrument_id=inst or f"BTC-USDT-PERP@{venue}",
        venue=venue,
        native_symbol="X",
        base="BTC",
        rate=Decimal(rate),
        interval_h=interval_h,
        next_funding_ts_ns=T0 + 3600 * S,
        exchange_ts_ns=ts,
        receipt_ts_ns=ts,
    )


def test_apr_normalises_intervals() -> None:
    assert funding_apr(Decimal("0.0001"), 8) == Decimal("0.1095")
    assert funding_apr(Decimal("0.0000125"), 1) == Decimal("0.1095")  # hourly venue, same yearly cost


def test_alert_longs_the_cheap_leg_and_shorts_the_expensive_one() -> None:
    state, config = SymbolState(), FundingConfig()
    assert process_funding("BTC", state, funding("binance", "0.0001", 8, T0), config) == []
    (alert,) = process_funding("BTC", state, funding("hyperliquid", "-0.00001", 1, T0 + S), config)
    assert (alert.long.venue, alert.short.venue) == ("hyperliquid", "binance")
    assert alert.long.apr == Decimal("-0.0876") and alert.short.apr == Decimal("0.1095")
    assert alert.spread_apr == Decimal("0.1971")
    assert alert.event_id == f"BTC:funding:hyperliquid/binance:{T0 + S}"
    assert (alert.short.age_ms, alert.long.age_ms) == (1000, 0)


def test_cooldown_stale_legs_and_quote_groups() -> None:
    state, config = SymbolState(), FundingConfig(cooldown_s=3600, max_age_ms=60_000)
    process_funding("BTC", state, funding("binance", "0.0003", 8, T0), config)
    assert len(process_funding("BTC", state, funding("okx", "0", 8, T0 + S), config)) == 1
    assert process_funding("BTC", state, funding("okx", "-0.0001", 8, T0 + 2 * S), config) == []  # cooldown
    later = T0 + 120 * S  # binance's rate is now older than max_age
    assert process_funding("BTC", state, funding("okx", "-0.0002", 8, later + 3600 * S), config) == []
    inverse = funding("bitmex", "-0.001", 8, T0 + 3 * S, inst="BTC-USD-INV-PERP@bitmex")
    assert process_funding("BTC", state, inverse, config) == []  # USD-inverse never pairs with USDT


def test_small_spread_no_alert() -> None:
    state = SymbolState()
    process_funding("BTC", state, funding("binance", "0.0001", 8, T0), FundingConfig())
    assert process_funding("BTC", state, funding("okx", "0.00005", 8, T0), FundingConfig()) == []
