"""Pure funding-carry math: APR, funding per hour, averages, settlement schedules, pairs.

Every function takes plain values and returns exact Decimals; the API's views call them and
tests hit them directly. Conventions (README "Funding terminal", decision 0018):

- a rate is per funding interval; APR = rate x 24 / interval_h x 365 (so a 0.01 % hourly rate
  is 8 times a 0.01 % 8-hourly one);
- a long pays a positive rate, a short receives it: the pair (long X, short Y) earns
  ``rate_Y / interval_Y - rate_X / interval_X`` of notional per hour;
- entry cost = (ask_X - bid_Y) / ask_X + taker fee X + taker fee Y, at executable prices per
  base unit; break-even = entry cost / carry per hour;
- schedules: a leg settles at its next-funding time and every ``interval_h`` after it; a venue
  that sends no next-funding time is put on the UTC grid of its interval (flagged estimated).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from processors.arbitrage import UNHEALTHY, ArbConfig, leg_problem, per_base
from processors.funding import funding_apr
from schemas.funding import FundingPair, FundingPairLeg
from schemas.market import Funding, Health, Instrument, Quote, quote_group

HOURS_PER_YEAR = Decimal(24 * 365)
HOUR_NS = 3_600_000_000_000
COMMON_HORIZON_NS = 8 * 24 * HOUR_NS
"""A common settlement further than 8 days away is reported as none (1/4/8 h grids meet daily)."""
ALIGN_TOLERANCE_NS = 1_000_000_000
"""Venues state settlement times to the millisecond or second: two within 1 s are the same time."""


def apr(rate: Decimal, interval_h: int) -> Decimal:
    """Annualised rate (fraction a year), the worker's own formula."""
    return funding_apr(rate, interval_h)


def per_hour(rate: Decimal, interval_h: int) -> Decimal:
    return rate / interval_h


def average_apr(settled: Iterable[tuple[Decimal, int]]) -> Decimal | None:
    """Realised APR of a run of settlements ``(rate, interval_h)``: all funding paid over all hours
    covered, annualised (so an interval change mid-window weighs each rate by its hours)."""
    total_rate, total_h = Decimal(0), 0
    for rate, interval_h in settled:
        total_rate += rate
        total_h += interval_h
    return total_rate * HOURS_PER_YEAR / total_h if total_h else None


def rate_limits(funding: Funding, instrument: Instrument | None) -> tuple[Decimal | None, Decimal | None]:
    """(cap, floor) per interval: the funding stream's own (OKX), else the instrument's listing's
    (Binance, Bybit, OKX, Gate, MEXC); None where the venue publishes none (never guessed)."""
    cap = funding.rate_cap if funding.rate_cap is not None else instrument.funding_cap if instrument else None
    floor = funding.rate_floor if funding.rate_floor is not None else instrument.funding_floor if instrument else None
    return cap, floor


def at_cap(rate: Decimal | None, cap: Decimal | None, floor: Decimal | None) -> bool | None:
    """The rate sits at (or beyond) the venue's cap or floor; None when no bound is known or no rate."""
    if rate is None or (cap is None and floor is None):
        return None
    return (cap is not None and rate >= cap) or (floor is not None and rate <= floor)


def grid_next(now_ns: int, interval_h: int) -> int:
    """The next multiple of ``interval_h`` hours since the epoch after ``now_ns`` (UTC grid)."""
    step = interval_h * HOUR_NS
    return (now_ns // step + 1) * step


def next_settlement(funding: Funding, now_ns: int) -> tuple[int, bool] | None:
    """(next settlement time, estimated?) of a funding state; None without an interval."""
    if not funding.interval_h:
        return None
    if funding.next_funding_ts_ns is not None:
        return funding.next_funding_ts_ns, False
    return grid_next(now_ns, funding.interval_h), True


def settlements_until(next_ns: int, interval_h: int, until_ns: int) -> int:
    """How many settlements of a schedule fall in [next_ns, until_ns] (all after now)."""
    if next_ns > until_ns + ALIGN_TOLERANCE_NS:
        return 0
    return (until_ns - next_ns + ALIGN_TOLERANCE_NS) // (interval_h * HOUR_NS) + 1


def first_common_settlement(next_a: int, interval_a: int, next_b: int, interval_b: int) -> int | None:
    """The first time both schedules settle together, within :data:`COMMON_HORIZON_NS`."""
    step_a, step_b = interval_a * HOUR_NS, interval_b * HOUR_NS
    t = next_a
    while t <= next_a + COMMON_HORIZON_NS:
        if t >= next_b - ALIGN_TOLERANCE_NS:
            offset = (t - next_b) % step_b
            if offset <= ALIGN_TOLERANCE_NS or step_b - offset <= ALIGN_TOLERANCE_NS:
                return t
        t += step_a
    return None


def carry_until(long: FundingPairLeg, short: FundingPairLeg, until_ns: int) -> Decimal:
    """Funding received on the short leg minus paid on the long leg from now to ``until_ns``,
    each leg paying its current rate at each of its own settlements (fraction of notional)."""
    shorts = settlements_until(short.next_funding_ts_ns, short.interval_h, until_ns)
    longs = settlements_until(long.next_funding_ts_ns, long.interval_h, until_ns)
    return short.rate * shorts - long.rate * longs


@dataclass(frozen=True)
class LegInput:
    """What the pair math needs of one instrument now."""

    funding: Funding
    quote: Quote | None
    health: Health | None
    volume_24h_quote: Decimal | None = None
    avg_apr: Decimal | None = None
    open_interest_quote: Decimal | None = None


@dataclass(frozen=True)
class PairRules:
    arb: ArbConfig
    """The worker's arbitrage settings: taker fees, quote age limits, quote bridges."""
    max_funding_age_ms: int = 180_000
    """The worker's ARBSTREAM_FUNDING_MAX_AGE_MS: an older rate is not a leg."""
    min_volume_24h: Decimal = Decimal(0)
    """Liquidity floor (quote currency traded in 24 h); above 0 an unknown volume is excluded."""
    min_open_interest: Decimal = Decimal(0)
    """Open-interest floor (quote notional); above 0 an unknown open interest is excluded."""


def leg_usable(leg: LegInput, now_ns: int, rules: PairRules) -> bool:
    """A funding leg needs a rate, an interval, a fresh update, a healthy venue, enough volume and
    enough open interest."""
    funding = leg.funding
    if funding.rate is None or not funding.interval_h:
        return False
    if now_ns - funding.receipt_ts_ns > rules.max_funding_age_ms * 1_000_000:
        return False
    if leg.health is not None and leg.health.state in UNHEALTHY:
        return False  # the price-arbitrage rule: a venue known unhealthy is no leg
    return meets_floor(leg.volume_24h_quote, rules.min_volume_24h) and meets_floor(
        leg.open_interest_quote, rules.min_open_interest
    )


def meets_floor(value: Decimal | None, floor: Decimal) -> bool:
    """A floor of 0 lets everything through; above 0 an unknown value (volume or open interest the
    venue does not publish) is not known liquid, so it is left out."""
    return floor <= 0 or (value is not None and value >= floor)


@dataclass(frozen=True)
class Floors:
    """The liquidity floors of a request (quote currency; 0: no floor)."""

    volume_24h: Decimal = Decimal(0)
    open_interest: Decimal = Decimal(0)

    def admit(self, volume: Decimal | None, open_interest: Decimal | None) -> bool:
        return meets_floor(volume, self.volume_24h) and meets_floor(open_interest, self.open_interest)


def executable_price(quote: Quote | None, side: str, now_ns: int, config: ArbConfig) -> Decimal | None:
    """Ask (long) or bid (short) per base unit, when the quote is usable as a price-arbitrage leg."""
    if quote is None or leg_problem(quote, None, now_ns, config) is not None:
        return None
    price = quote.ask if side == "long" else quote.bid
    assert price is not None  # leg_problem checked both sides
    return per_base(price, quote.price_multiplier)


def pair_leg(leg: LegInput, side: str, now_ns: int, config: ArbConfig) -> FundingPairLeg:
    funding = leg.funding
    assert funding.rate is not None and funding.interval_h  # leg_usable checked
    schedule = next_settlement(funding, now_ns)
    assert schedule is not None
    return FundingPairLeg(
        venue=funding.venue,
        instrument_id=funding.instrument_id,
        rate=funding.rate,
        interval_h=funding.interval_h,
        apr=apr(funding.rate, funding.interval_h),
        funding_per_h=per_hour(funding.rate, funding.interval_h),
        next_funding_ts_ns=schedule[0],
        next_funding_estimated=schedule[1],
        price=executable_price(leg.quote, side, now_ns, config),
        fee=config.fee(funding.venue),
        volume_24h_quote=leg.volume_24h_quote,
        open_interest_quote=leg.open_interest_quote,
        avg_apr=leg.avg_apr,
    )


def break_even_hours(entry_cost: Decimal | None, carry_per_h: Decimal) -> Decimal | None:
    if entry_cost is None or carry_per_h <= 0:
        return None
    return max(entry_cost, Decimal(0)) / carry_per_h


def build_pair(symbol: str, long: FundingPairLeg, short: FundingPairLeg) -> FundingPair:
    """Every number of the pair (long ``long``, short ``short``) from its two legs."""
    carry = short.funding_per_h - long.funding_per_h
    price_spread = entry_cost = None
    if long.price is not None and short.price is not None:
        price_spread = long.price - short.price
        entry_cost = price_spread / long.price + long.fee + short.fee
    common = first_common_settlement(
        long.next_funding_ts_ns, long.interval_h, short.next_funding_ts_ns, short.interval_h
    )
    avg_spread = avg_break_even = None
    if long.avg_apr is not None and short.avg_apr is not None:
        avg_spread = short.avg_apr - long.avg_apr
        avg_break_even = break_even_hours(entry_cost, avg_spread / HOURS_PER_YEAR)
    return FundingPair(
        symbol=symbol,
        long=long,
        short=short,
        apr_spread=short.apr - long.apr,
        carry_per_h=carry,
        price_spread=price_spread,
        entry_cost=entry_cost,
        break_even_h=break_even_hours(entry_cost, carry),
        common_settlement_ts_ns=common,
        carry_to_common=carry_until(long, short, common) if common is not None else None,
        avg_apr_spread=avg_spread,
        avg_break_even_h=avg_break_even,
    )


@dataclass(frozen=True)
class Candidate:
    """A pair before its costs are computed: enough to filter and rank it (building every pair of
    the whole market for one page of answers would cost most of a second)."""

    symbol: str
    long: LegInput
    short: LegInput
    spread: Decimal
    """The ranking figure: short APR - long APR, live or on the period's averages."""


def candidates(
    symbol: str, legs: Sequence[LegInput], now_ns: int, rules: PairRules, use_average: bool = False
) -> list[Candidate]:
    """Every ordered pair (long X, short Y) of usable, comparable legs on different venues whose
    carry is positive now (the reverse order of a pair is never worth entering); with
    ``use_average`` only pairs whose legs both have an average."""
    bridges = rules.arb.quote_bridges
    usable = [leg for leg in legs if leg_usable(leg, now_ns, rules)]
    aprs = [_live_apr(leg.funding) for leg in usable]
    groups = [quote_group(leg.funding, bridges) for leg in usable]
    found = []
    for i, long in enumerate(usable):
        for j, short in enumerate(usable):
            if aprs[j] <= aprs[i] or short.funding.venue == long.funding.venue or groups[i] != groups[j]:
                continue
            if not use_average:
                found.append(Candidate(symbol, long, short, aprs[j] - aprs[i]))
            elif long.avg_apr is not None and short.avg_apr is not None:
                found.append(Candidate(symbol, long, short, short.avg_apr - long.avg_apr))
    return found


def _live_apr(funding: Funding) -> Decimal:
    assert funding.rate is not None and funding.interval_h  # leg_usable checked
    return apr(funding.rate, funding.interval_h)


def build(candidate: Candidate, now_ns: int, config: ArbConfig) -> FundingPair:
    long = pair_leg(candidate.long, "long", now_ns, config)
    return build_pair(candidate.symbol, long, pair_leg(candidate.short, "short", now_ns, config))


def symbol_pairs(symbol: str, legs: Sequence[LegInput], now_ns: int, rules: PairRules) -> list[FundingPair]:
    """Every pair of :func:`candidates`, with all its numbers."""
    return [build(c, now_ns, rules.arb) for c in candidates(symbol, legs, now_ns, rules)]


def ranked_page(
    found: Sequence[Candidate], start: int, stop: int, now_ns: int, config: ArbConfig, use_average: bool = False
) -> list[FundingPair]:
    """``rank(...)[start:stop]`` building only the pairs that page needs: those ranked by spread
    into it, widened to every pair tied on the spreads at its edges (break-even decides ties)."""
    ordered = sorted(found, key=lambda c: (-c.spread, c.long.funding.instrument_id, c.short.funding.instrument_id))
    if start >= len(ordered) or stop <= start:
        return []
    last = min(stop, len(ordered)) - 1
    lo, hi = start, last
    while lo > 0 and ordered[lo - 1].spread == ordered[start].spread:
        lo -= 1
    while hi + 1 < len(ordered) and ordered[hi + 1].spread == ordered[last].spread:
        hi += 1
    block = rank((build(c, now_ns, config) for c in ordered[lo : hi + 1]), use_average)
    return block[start - lo : last - lo + 1]


def rank_key(pair: FundingPair, use_average: bool) -> tuple[Decimal, Decimal, str, str]:
    """Highest APR spread first (live, or averaged over the period); quicker break-even breaks ties."""
    spread = pair.avg_apr_spread if use_average else pair.apr_spread
    break_even = pair.avg_break_even_h if use_average else pair.break_even_h
    return (
        -(spread if spread is not None else Decimal("-Infinity")),
        break_even if break_even is not None else Decimal("Infinity"),
        pair.long.instrument_id,
        pair.short.instrument_id,
    )


def rank(pairs: Iterable[FundingPair], use_average: bool = False) -> list[FundingPair]:
    ranked = [p for p in pairs if not use_average or p.avg_apr_spread is not None]
    return sorted(ranked, key=lambda p: rank_key(p, use_average))
