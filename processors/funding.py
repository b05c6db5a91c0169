"""Pure funding-rate arbitrage logic: annualise each venue's rate, compare within a quote group.

Venues fund on different intervals (Hyperliquid hourly, most venues 8 h, some 4 h),
so rates are compared as APR: rate x (24 / interval_h) x 365.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal

from processors.arbitrage import quote_group
from schemas.arbitrage import FundingLeg, FundingOpportunity, SymbolState
from schemas.market import Funding

HOURS_PER_YEAR = Decimal(24 * 365)


@dataclass(frozen=True)
class FundingConfig:
    open_apr: Decimal = Decimal("0.10")
    """Minimum APR difference worth an alert (0.10 = 10 % a year)."""
    max_age_ms: int = 180_000
    cooldown_s: int = 3_600
    """Per pair of instruments: one alert per hour by default."""
    quote_bridges: dict[str, str] | None = None


@functools.lru_cache(maxsize=65_536)
def funding_apr(rate: Decimal, interval_h: int) -> Decimal:
    """Cached: rates change far less often than they are compared (every funding tick, every pair)."""
    return rate * HOURS_PER_YEAR / interval_h


def _leg(funding: Funding, now_ns: int) -> FundingLeg | None:
    if funding.rate is None or not funding.interval_h:
        return None
    return FundingLeg(
        venue=funding.venue,
        instrument_id=funding.instrument_id,
        rate=funding.rate,
        interval_h=funding.interval_h,
        apr=funding_apr(funding.rate, funding.interval_h),
        next_funding_ts_ns=funding.next_funding_ts_ns,
        age_ms=max(0, now_ns - funding.receipt_ts_ns) // 1_000_000,
        exchange_ts_ns=funding.exchange_ts_ns,
        receipt_ts_ns=funding.receipt_ts_ns,
    )


def process_funding(
    symbol: str, state: SymbolState, funding: Funding, config: FundingConfig
) -> list[FundingOpportunity]:
    """Store the funding update and return alerts for pairs it now forms (event time = its receipt)."""
    state.funding[funding.instrument_id] = funding
    now_ns = funding.receipt_ts_ns
    mine = _leg(funding, now_ns)
    if mine is None:
        return []
    group = quote_group(funding.instrument_id, config.quote_bridges)
    alerts = []
    for other_id, other in state.funding.items():
        if other.venue == funding.venue or quote_group(other_id, config.quote_bridges) != group:
            continue
        if now_ns - other.receipt_ts_ns > config.max_age_ms * 1_000_000:
            continue
        if other.rate is None or not other.interval_h:
            continue
        if abs(funding_apr(other.rate, other.interval_h) - mine.apr) < config.open_apr:
            continue  # the common case, decided before building the legs
        theirs = _leg(other, now_ns)
        if theirs is None:
            continue
        long, short = (mine, theirs) if mine.apr < theirs.apr else (theirs, mine)
        spread = short.apr - long.apr
        key = f"{long.instrument_id}|{short.instrument_id}"
        last = state.funding_alerts.get(key)
        if spread < config.open_apr or (last is not None and now_ns - last < config.cooldown_s * 1_000_000_000):
            continue
        state.funding_alerts[key] = now_ns
        alerts.append(
            FundingOpportunity(
                event_id=f"{symbol}:funding:{long.venue}/{short.venue}:{now_ns}",
                symbol=symbol,
                long=long,
                short=short,
                spread_apr=spread,
                exchange_ts_ns=max(long.exchange_ts_ns, short.exchange_ts_ns),
                receipt_ts_ns=now_ns,
                detected_ts_ns=now_ns,
            )
        )
    return alerts
