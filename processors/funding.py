"""Pure funding-rate arbitrage logic: annualise each venue's rate, pair legs, funding episodes.

Venues fund on different intervals (Hyperliquid hourly, most venues 8 h, some 4 h), so rates
are compared as APR: rate x (24 / interval_h) x 365. A pair (long X, short Y) of comparable
instruments on different venues earns ``APR_Y - APR_X`` a year; entering it costs the price
spread and both taker fees once, so the figure an episode opens and closes on is the **net**
APR: the spread minus the entry cost amortised over ``hold_h`` hours (decision 0025).

The discipline is the price-arbitrage one (``processors.arbitrage``): an episode opens when the
net APR reaches ``open_apr``, lives while it stays at or above ``close_apr`` (hysteresis), and
closes under it or when a leg becomes unusable (no rate, a rate older than ``max_age_ms``, a
venue the ``health`` topic reports unhealthy). An opening episode alerts unless the symbol
alerted within ``cooldown_s`` (table state), or beats the last alert's net APR by
``cooldown_break_ratio``. Pairs are re-evaluated on each funding update of the symbol.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from processors.arbitrage import UNHEALTHY, per_base
from schemas.arbitrage import FundingEpisode, FundingEpisodeClosed, FundingLeg, FundingOpportunity, SymbolState
from schemas.market import Funding, Health, Quote, quote_group

HOURS_PER_YEAR = Decimal(24 * 365)


@dataclass(frozen=True)
class FundingConfig:
    open_apr: Decimal = Decimal("0.10")
    """Net APR (fraction a year) at which a pair's episode opens (0.10 = 10 % a year)."""
    close_apr: Decimal = Decimal("0.05")
    """Net APR under which an open episode closes (hysteresis: at most ``open_apr``)."""
    hold_h: int = 168
    """Holding time the entry cost is amortised over when netting it from the APR."""
    max_age_ms: int = 180_000
    cooldown_s: int = 3_600
    """Per symbol: one funding alert an hour by default."""
    cooldown_break_ratio: Decimal = Decimal(2)
    quote_bridges: dict[str, str] | None = None
    taker_fees: Mapping[str, Decimal] = field(default_factory=dict)
    default_fee: Decimal = Decimal("0.001")

    def fee(self, venue: str) -> Decimal:
        return self.taker_fees.get(venue, self.default_fee)


@functools.lru_cache(maxsize=65_536)
def funding_apr(rate: Decimal, interval_h: int) -> Decimal:
    """Cached: rates change far less often than they are compared (every funding tick, every pair)."""
    return rate * HOURS_PER_YEAR / interval_h


def rate_problem(funding: Funding, health: Health | None, now_ns: int, config: FundingConfig) -> str | None:
    """Why a funding state cannot be a leg now, or None when it can."""
    if funding.rate is None or not funding.interval_h:
        return "no rate or interval"
    if now_ns - funding.receipt_ts_ns > config.max_age_ms * 1_000_000:
        return "stale funding rate"
    if health is not None and health.state in UNHEALTHY:
        return f"venue {health.state.value}"
    return None


def entry_price(quote: Quote | None, buying: bool, now_ns: int, config: FundingConfig) -> Decimal | None:
    """Ask (``buying``: the long leg) or bid (the short leg) per base unit from a two-sided,
    uncrossed quote younger than the funding max age (an entry cost for a multi-day hold, not a
    taker's instant fill)."""
    if quote is None or quote.bid is None or quote.ask is None or not 0 < quote.bid < quote.ask:
        return None
    if now_ns - quote.receipt_ts_ns > config.max_age_ms * 1_000_000:
        return None
    return per_base(quote.ask if buying else quote.bid, quote.price_multiplier)


def make_leg(funding: Funding, price: Decimal | None, now_ns: int, config: FundingConfig) -> FundingLeg:
    assert funding.rate is not None and funding.interval_h  # rate_problem checked
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
        price=price,
        fee=config.fee(funding.venue),
    )


def entry_cost(long: FundingLeg, short: FundingLeg) -> tuple[Decimal, bool]:
    """(cost as a fraction of notional, priced?): price spread + both fees, or the fees alone."""
    fees = (long.fee or Decimal(0)) + (short.fee or Decimal(0))
    if long.price is None or short.price is None:
        return fees, False
    return (long.price - short.price) / long.price + fees, True


def net_apr(spread_apr: Decimal, cost: Decimal, hold_h: int) -> Decimal:
    """The APR spread minus the entry cost spread over the holding time, annualised."""
    return spread_apr - cost * HOURS_PER_YEAR / hold_h


def evaluate_pair(
    symbol: str,
    long: Funding,
    short: Funding,
    state: SymbolState,
    health: Mapping[str, Health],
    now_ns: int,
    config: FundingConfig,
) -> tuple[FundingOpportunity | None, str | None]:
    """The pair's numbers now (long ``long``, short ``short``), or why a leg is unusable."""
    problem = rate_problem(long, health.get(long.venue), now_ns, config) or rate_problem(
        short, health.get(short.venue), now_ns, config
    )
    if problem is not None:
        return None, problem
    long_leg = make_leg(long, entry_price(state.quotes.get(long.instrument_id), True, now_ns, config), now_ns, config)
    short_leg = make_leg(
        short, entry_price(state.quotes.get(short.instrument_id), False, now_ns, config), now_ns, config
    )
    spread = short_leg.apr - long_leg.apr
    cost, priced = entry_cost(long_leg, short_leg)
    episode = state.funding_episodes.get(pair_key(long, short))
    start = episode.start_ts_ns if episode is not None else now_ns
    opportunity = FundingOpportunity(
        event_id=f"{symbol}:funding:{long.venue}/{short.venue}:{start}",
        symbol=symbol,
        long=long_leg,
        short=short_leg,
        spread_apr=spread,
        exchange_ts_ns=max(long.exchange_ts_ns, short.exchange_ts_ns),
        receipt_ts_ns=max(long.receipt_ts_ns, short.receipt_ts_ns),
        detected_ts_ns=now_ns,
        entry_cost=cost,
        priced=priced,
        net_apr=net_apr(spread, cost, config.hold_h),
        episode_start_ts_ns=start,
    )
    return opportunity, None


def pair_key(long: Funding, short: Funding) -> str:
    return f"{long.instrument_id}|{short.instrument_id}"


@dataclass
class FundingOutcome:
    """What one funding update produced."""

    alerts: list[FundingOpportunity] = field(default_factory=list)
    closed: list[FundingEpisodeClosed] = field(default_factory=list)
    transitions: int = 0
    """Episodes opened or closed, or the cooldown moved (what the changelog must record at once)."""


def cooldown_allows(state: SymbolState, net: Decimal, now_ns: int, config: FundingConfig) -> tuple[bool, bool]:
    """(alert?, breaks the cooldown?) for an opening funding episode of this symbol."""
    last_ts = state.funding_last_alert_ts_ns
    if last_ts is None or now_ns - last_ts >= config.cooldown_s * 1_000_000_000:
        return True, False
    last = state.funding_last_alert_net
    if last is not None and last > 0 and net >= last * config.cooldown_break_ratio:
        return True, True
    return False, False


def step_episode(
    state: SymbolState,
    key: str,
    opportunity: FundingOpportunity | None,
    problem: str | None,
    now_ns: int,
    config: FundingConfig,
) -> FundingOutcome:
    """Advance one pair's funding episode with a fresh evaluation (None when a leg is unusable)."""
    outcome = FundingOutcome()
    episode = state.funding_episodes.get(key)
    net = opportunity.net_apr if opportunity is not None else None
    if episode is None:
        if opportunity is None or net is None or net < config.open_apr:
            return outcome
        long_id, short_id = key.split("|")
        episode = state.funding_episodes[key] = FundingEpisode(
            long_instrument_id=long_id, short_instrument_id=short_id, start_ts_ns=now_ns
        )
        outcome.transitions += 1
        _record(episode, opportunity, net)
        allowed, broke = cooldown_allows(state, net, now_ns, config)
        if allowed:
            episode.alerted = True
            state.funding_last_alert_ts_ns, state.funding_last_alert_net = now_ns, net
            outcome.alerts.append(_with_cooldown(opportunity, broke))
        return outcome
    if opportunity is None or net is None or net < config.close_apr:
        del state.funding_episodes[key]
        outcome.transitions += 1
        outcome.closed.append(_closed(episode, now_ns, problem or "net APR below the close threshold"))
        return outcome
    _record(episode, opportunity, net)
    return outcome


def _record(episode: FundingEpisode, opportunity: FundingOpportunity, net: Decimal) -> None:
    episode.evaluations += 1
    episode.peak_net_apr = net if episode.evaluations == 1 else max(episode.peak_net_apr, net)
    episode.last_net_apr = net
    episode.last = opportunity


def _with_cooldown(opportunity: FundingOpportunity, broke: bool) -> FundingOpportunity:
    return msgspec.structs.replace(opportunity, cooldown_broken=True) if broke else opportunity


def _closed(episode: FundingEpisode, now_ns: int, reason: str) -> FundingEpisodeClosed:
    last = episode.last
    assert last is not None  # an episode is recorded when it is created
    return FundingEpisodeClosed(
        event_id=last.event_id,
        symbol=last.symbol,
        long_venue=last.long.venue,
        short_venue=last.short.venue,
        long_instrument_id=episode.long_instrument_id,
        short_instrument_id=episode.short_instrument_id,
        start_ts_ns=episode.start_ts_ns,
        end_ts_ns=now_ns,
        duration_ms=(now_ns - episode.start_ts_ns) // 1_000_000,
        peak_net_apr=episode.peak_net_apr,
        last_net_apr=episode.last_net_apr,
        evaluations=episode.evaluations,
        close_reason=reason,
        alerted=episode.alerted,
        exchange_ts_ns=last.exchange_ts_ns,
        receipt_ts_ns=last.receipt_ts_ns,
    )


def pairs_to_evaluate(state: SymbolState, changed: Funding, config: FundingConfig) -> Iterator[tuple[Funding, Funding]]:
    """(long, short) pairs with the changed instrument whose gross APR spread could open an episode
    (net <= gross), or that have an episode to update or close; then every other open episode
    (a leg that went stale or unhealthy must close it)."""
    episodes = state.funding_episodes
    bridges = config.quote_bridges
    group = quote_group(changed, bridges)
    mine = funding_apr(changed.rate, changed.interval_h) if changed.rate is not None and changed.interval_h else None
    touched = set()
    for other in state.funding.values():
        if other.venue == changed.venue or quote_group(other, bridges) != group:
            continue
        theirs = funding_apr(other.rate, other.interval_h) if other.rate is not None and other.interval_h else None
        for long, short, gross in ((changed, other, _gap(theirs, mine)), (other, changed, _gap(mine, theirs))):
            key = pair_key(long, short)
            if key in episodes or (gross is not None and gross >= config.open_apr):
                touched.add(key)
                yield long, short
    for key in [k for k in episodes if k not in touched]:
        long_id, short_id = key.split("|")
        yield state.funding[long_id], state.funding[short_id]  # episodes exist only for known legs


def _gap(short_apr: Decimal | None, long_apr: Decimal | None) -> Decimal | None:
    return short_apr - long_apr if short_apr is not None and long_apr is not None else None


def expire_funding_episodes(
    symbol: str, state: SymbolState, now_ns: int, config: FundingConfig, health: Mapping[str, Health] | None = None
) -> FundingOutcome:
    """Close ``symbol``'s funding episodes that a leg can no longer hold at event time ``now_ns``
    (stale rate or quote, unhealthy venue), though no funding tick came to find them: the sweep's
    half of the episode discipline (decision 0024). An episode whose legs are still usable is left
    as it is — a sweep is not an evaluation."""
    outcome = FundingOutcome()
    for key, episode in list(state.funding_episodes.items()):
        long, short = state.funding[episode.long_instrument_id], state.funding[episode.short_instrument_id]
        opportunity, problem = evaluate_pair(symbol, long, short, state, health or {}, now_ns, config)
        if opportunity is None:
            step = step_episode(state, key, None, problem, now_ns, config)
            outcome.closed += step.closed
            outcome.transitions += step.transitions
    return outcome


def process_funding(
    symbol: str,
    state: SymbolState,
    funding: Funding,
    config: FundingConfig,
    health: Mapping[str, Health] | None = None,
) -> FundingOutcome:
    """Store the funding update and step every pair it could change (event time = its receipt)."""
    state.funding[funding.instrument_id] = funding
    now_ns = funding.receipt_ts_ns
    venues = health or {}
    outcome = FundingOutcome()
    for long, short in list(pairs_to_evaluate(state, funding, config)):
        opportunity, problem = evaluate_pair(symbol, long, short, state, venues, now_ns, config)
        step = step_episode(state, pair_key(long, short), opportunity, problem, now_ns, config)
        outcome.alerts += step.alerts
        outcome.closed += step.closed
        outcome.transitions += step.transitions
    return outcome
