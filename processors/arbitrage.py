"""Pure arbitrage logic: spread math, leg usability, the episode state machine, the cooldown.

No Faust, no I/O: the agents call these with the symbol's state and the time,
and tests hit them directly.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from schemas.arbitrage import Episode, EpisodeClosed, Leg, Opportunity, SymbolState
from schemas.market import Health, HealthState, Quote, identity, quote_group

UNHEALTHY = {HealthState.DISCONNECTED, HealthState.STALE, HealthState.ERROR, HealthState.GAP}


@dataclass(frozen=True)
class ArbConfig:
    """Every number of the arbitrage semantics (see README "Arbitrage semantics")."""

    taker_fees: dict[str, Decimal]
    default_fee: Decimal = Decimal("0.001")
    max_age_ms: int = 3_000
    max_age_ms_by_venue: dict[str, int] = field(default_factory=dict)
    open_threshold: Decimal = Decimal("0.0015")
    close_threshold: Decimal = Decimal("0.0005")
    min_persist_ms: int = 0
    min_ticks: int = 2
    cooldown_s: int = 300
    cooldown_break_ratio: Decimal = Decimal(2)
    quote_bridges: dict[str, str] = field(default_factory=dict)
    """Optional group renames, e.g. {"USDC": "USD*", "USDT": "USD*"} treats them as one group."""

    def fee(self, venue: str) -> Decimal:
        return self.taker_fees.get(venue, self.default_fee)

    def max_age_ns(self, venue: str) -> int:
        return self.max_age_ms_by_venue.get(venue, self.max_age_ms) * 1_000_000

    @functools.cached_property
    def max_age_ns_by_venue(self) -> dict[str, int]:
        """The per-venue overrides in ns (the default is ``max_age_ns_default``): checked on every tick."""
        return {venue: ms * 1_000_000 for venue, ms in self.max_age_ms_by_venue.items()}

    @functools.cached_property
    def max_age_ns_default(self) -> int:
        return self.max_age_ms * 1_000_000

    @functools.cached_property
    def _fees_f(self) -> dict[str, float]:
        return {venue: float(fee) for venue, fee in self.taker_fees.items()}

    def fee_f(self, venue: str) -> float:
        """The taker fee as a float: only for the pre-filter, never for a published number."""
        return self._fees_f.get(venue, self._default_fee_f)

    @functools.cached_property
    def _default_fee_f(self) -> float:
        return float(self.default_fee)

    @functools.cached_property
    def lowest_fee_f(self) -> float:
        return min([*self._fees_f.values(), self._default_fee_f])

    @functools.cached_property
    def open_threshold_f(self) -> float:
        # Below the exact threshold by far more than float rounding (1e-16 relative) can move a
        # spread, so the pre-filter never rejects a pair the exact arithmetic would open.
        return float(self.open_threshold) - PREFILTER_MARGIN


PREFILTER_MARGIN = 1e-9
FastQuote = tuple[float, float, str, str, float]
"""(bid, ask) per base unit as floats, venue, quote group, taker fee as a float."""
INF = float("inf")


class FastBook:
    """A float copy of one symbol's quotes for the pre-filter, with each quote group's bids and asks.

    It only decides which pairs are worth the exact Decimal arithmetic; nothing computed from it
    is ever published.
    """

    def __init__(self) -> None:
        self.quotes: dict[str, FastQuote] = {}
        self.bids: dict[str, dict[str, float]] = {}
        self.asks: dict[str, dict[str, float]] = {}

    def put(self, instrument_id: str, entry: FastQuote) -> None:
        self.quotes[instrument_id] = entry
        self.bids.setdefault(entry[3], {})[instrument_id] = entry[0]
        self.asks.setdefault(entry[3], {})[instrument_id] = entry[1]

    def drop(self, instrument_id: str) -> None:
        entry = self.quotes.pop(instrument_id, None)
        if entry is not None:
            del self.bids[entry[3]][instrument_id], self.asks[entry[3]][instrument_id]

    def sync(self, state: SymbolState, config: ArbConfig) -> None:
        """Cache every quote of ``state`` not cached yet (quotes restored or rebuilt without it)."""
        if len(self.quotes) != len(state.quotes):
            for instrument_id, quote in state.quotes.items():
                if instrument_id not in self.quotes:
                    self.put(instrument_id, fast_quote(quote, config))


def fast_quote(quote: Quote, config: ArbConfig) -> FastQuote:
    """A one-sided or non-positive book gets bid -inf / ask +inf: no spread can clear the threshold."""
    multiplier = float(quote.price_multiplier)
    bid = float(quote.bid) / multiplier if quote.bid is not None and quote.bid > 0 else -INF
    ask = float(quote.ask) / multiplier if quote.ask is not None and quote.ask > 0 else INF
    group = quote_group(quote, config.quote_bridges)
    return bid, ask, quote.venue, group, config.fee_f(quote.venue)


def prefiltered_pairs(
    state: SymbolState, changed: str, fast: FastBook, config: ArbConfig
) -> Iterator[tuple[Quote, Quote]]:
    """The pairs of :func:`comparable_pairs` that the exact path could change: a float net spread
    near or above the open threshold, or an episode already there (it must be updated or closed).

    First a bound over the whole quote group (net >= threshold needs other_bid / my_ask - other_fee
    >= 1 + threshold + my_fee; the best bid and the lowest fee bound the left side): when neither
    direction can pass it and no episode exists, no pair needs a look.
    """
    mine = state.quotes[changed]
    fast.sync(state, config)
    entry = fast_quote(mine, config)
    fast.put(changed, entry)
    bid, ask, venue, group, fee = entry
    threshold = config.open_threshold_f
    episodes = state.episodes
    if not episodes:
        needed = 1 + threshold + fee
        lowest_fee = config.lowest_fee_f
        best_bid, best_ask = max(fast.bids[group].values()), min(fast.asks[group].values())
        if best_bid / ask - lowest_fee < needed and bid / best_ask - lowest_fee < needed:
            return
    for other_id, other in state.quotes.items():
        o_bid, o_ask, o_venue, o_group, o_fee = fast.quotes[other_id]
        if o_venue == venue or o_group != group:
            continue
        if (o_bid - ask) / ask - fee - o_fee >= threshold or (episodes and f"{changed}|{other_id}" in episodes):
            yield mine, other
        if (bid - o_ask) / o_ask - o_fee - fee >= threshold or (episodes and f"{other_id}|{changed}" in episodes):
            yield other, mine


def per_base(price: Decimal, multiplier: Decimal) -> Decimal:
    return price / multiplier if multiplier != 1 else price


def leg_problem(quote: Quote, health: Health | None, now_ns: int, config: ArbConfig) -> str | None:
    """Why a quote cannot be a leg right now, or None when it can."""
    if quote.bid is None or quote.ask is None or quote.bid_size is None or quote.ask_size is None:
        return "one-sided book"
    if quote.bid >= quote.ask:
        return "crossed book (data error)"
    if quote.bid <= 0 or quote.ask_size <= 0 or quote.bid_size <= 0:
        return "non-positive price or size"
    if now_ns - quote.receipt_ts_ns > config.max_age_ns(quote.venue):
        return "stale quote"
    if health is not None and health.state in UNHEALTHY:
        return f"venue {health.state.value}"
    return None


def evaluate(
    symbol: str, buy: Quote, sell: Quote, now_ns: int, config: ArbConfig, episode_start_ts_ns: int
) -> Opportunity:
    """Buy at ``buy``'s ask, sell at ``sell``'s bid; both legs must be usable (see leg_problem)."""
    assert buy.ask is not None and sell.bid is not None and buy.ask_size is not None and sell.bid_size is not None
    ask = per_base(buy.ask, buy.price_multiplier)
    bid = per_base(sell.bid, sell.price_multiplier)
    gross = (bid - ask) / ask
    fee_buy, fee_sell = config.fee(buy.venue), config.fee(sell.venue)
    size = min(buy.ask_size, sell.bid_size)
    newer = buy if buy.receipt_ts_ns >= sell.receipt_ts_ns else sell
    return Opportunity(
        event_id=f"{symbol}:{buy.venue}->{sell.venue}:{episode_start_ts_ns}",
        symbol=symbol,
        buy=_leg(buy, ask, buy.ask_size, fee_buy, now_ns),
        sell=_leg(sell, bid, sell.bid_size, fee_sell, now_ns),
        gross_spread=gross,
        net_spread=gross - fee_buy - fee_sell,
        size=size,
        notional=size * ask,
        skew_ms=abs(buy.receipt_ts_ns - sell.receipt_ts_ns) // 1_000_000,
        episode_start_ts_ns=episode_start_ts_ns,
        exchange_ts_ns=max(buy.exchange_ts_ns, sell.exchange_ts_ns),
        receipt_ts_ns=newer.receipt_ts_ns,
        detected_ts_ns=now_ns,
    )


def _leg(quote: Quote, price: Decimal, size: Decimal, fee: Decimal, now_ns: int) -> Leg:
    currency, kind = identity(quote)
    return Leg(
        venue=quote.venue,
        instrument_id=quote.instrument_id,
        price=price,
        size=size,
        fee=fee,
        age_ms=max(0, now_ns - quote.receipt_ts_ns) // 1_000_000,
        exchange_ts_ns=quote.exchange_ts_ns,
        receipt_ts_ns=quote.receipt_ts_ns,
        quote=currency,
        kind=kind,
    )


def comparable_pairs(state: SymbolState, changed: str, config: ArbConfig) -> Iterator[tuple[Quote, Quote]]:
    """(buy, sell) pairs that include the changed instrument, on different venues, same quote group."""
    mine, bridges = state.quotes[changed], config.quote_bridges
    group = quote_group(mine, bridges)
    for other in state.quotes.values():
        if other.venue == mine.venue or quote_group(other, bridges) != group:
            continue
        yield mine, other
        yield other, mine


@dataclass
class Outcome:
    """What one step of a symbol produced."""

    alerts: list[Opportunity] = field(default_factory=list)
    closed: list[EpisodeClosed] = field(default_factory=list)
    transitions: int = 0
    """Episodes created, opened or removed (what a changelog must record at once)."""


def cooldown_allows(state: SymbolState, opportunity: Opportunity, config: ArbConfig) -> tuple[bool, bool]:
    """(alert?, breaks cooldown?) for an opening episode of this symbol."""
    if state.last_alert_ts_ns is None:
        return True, False
    if opportunity.detected_ts_ns - state.last_alert_ts_ns >= config.cooldown_s * 1_000_000_000:
        return True, False
    last = state.last_alert_net
    if last is not None and last > 0 and opportunity.net_spread >= last * config.cooldown_break_ratio:
        return True, True
    return False, False


def seconds_until_alert(state: SymbolState, now_ns: int, config: ArbConfig) -> float:
    if state.last_alert_ts_ns is None:
        return 0.0
    return max(0.0, (state.last_alert_ts_ns + config.cooldown_s * 1_000_000_000 - now_ns) / 1e9)


def step_pair(
    state: SymbolState, key: str, opportunity: Opportunity | None, problem: str | None, now_ns: int, config: ArbConfig
) -> Outcome:
    """Advance one pair's episode with a fresh evaluation (None when a leg is unusable)."""
    outcome = Outcome()
    episode = state.episodes.get(key)
    net = opportunity.net_spread if opportunity is not None else None
    if episode is None:
        if net is None or net < config.open_threshold:
            return outcome
        buy_id, sell_id = key.split("|")
        episode = Episode(buy_instrument_id=buy_id, sell_instrument_id=sell_id, start_ts_ns=now_ns)
        state.episodes[key] = episode
        outcome.transitions += 1
    if net is None or net < (config.close_threshold if episode.opened else config.open_threshold):
        del state.episodes[key]
        outcome.transitions += 1
        if episode.opened:
            outcome.closed.append(_closed(state, episode, now_ns, problem or "net spread below close threshold"))
        return outcome
    assert opportunity is not None
    episode.ticks += 1
    episode.sum_net += net
    episode.peak_net = max(episode.peak_net, net) if episode.ticks > 1 else net
    episode.last_net = net
    episode.last = opportunity
    persisted = now_ns - episode.start_ts_ns >= config.min_persist_ms * 1_000_000 and episode.ticks >= config.min_ticks
    if not episode.opened and persisted:
        episode.opened = True
        outcome.transitions += 1
        allowed, broke = cooldown_allows(state, opportunity, config)
        if allowed:
            episode.alerted = True
            alert = _replace_broken(opportunity, broke)
            state.last_alert_ts_ns = now_ns
            state.last_alert_net = net
            outcome.alerts.append(alert)
    return outcome


def _replace_broken(opportunity: Opportunity, broke: bool) -> Opportunity:
    return msgspec.structs.replace(opportunity, cooldown_broken=broke) if broke else opportunity


def _closed(state: SymbolState, episode: Episode, now_ns: int, reason: str) -> EpisodeClosed:
    last = episode.last
    assert last is not None
    return EpisodeClosed(
        event_id=last.event_id,
        symbol=last.symbol,
        buy_venue=last.buy.venue,
        sell_venue=last.sell.venue,
        buy_instrument_id=episode.buy_instrument_id,
        sell_instrument_id=episode.sell_instrument_id,
        start_ts_ns=episode.start_ts_ns,
        end_ts_ns=now_ns,
        duration_ms=(now_ns - episode.start_ts_ns) // 1_000_000,
        peak_net_spread=episode.peak_net,
        avg_net_spread=episode.sum_net / episode.ticks,
        ticks=episode.ticks,
        close_reason=reason,
        alerted=episode.alerted,
        exchange_ts_ns=last.exchange_ts_ns,
        receipt_ts_ns=last.receipt_ts_ns,
    )


def pair_key(buy: Quote, sell: Quote) -> str:
    return f"{buy.instrument_id}|{sell.instrument_id}"


def process_quote(
    symbol: str,
    state: SymbolState,
    quote: Quote,
    health: dict[str, Health],
    now_ns: int,
    config: ArbConfig,
    fast: FastBook | None = None,
) -> Outcome:
    """Apply a new quote to its symbol: re-evaluate every pair it is part of, close stale episodes.

    With ``fast`` (the symbol's float cache, kept by the caller), a pair without an episode
    whose float spread is clearly below the open threshold is skipped: the exact evaluation
    would have left it without an episode too, so the outcome is the same, only cheaper.
    """
    # Episodes a leg of which went stale before this tick end first, at the instant they did: the
    # same record the worker's sweep writes when no tick of the symbol comes (expire_episodes).
    outcome = expire_episodes(state, now_ns, config) if state.episodes else Outcome()
    state.quotes[quote.instrument_id] = quote
    state.last_tick_ts_ns = quote.receipt_ts_ns
    pairs = (
        comparable_pairs(state, quote.instrument_id, config)
        if fast is None
        else prefiltered_pairs(state, quote.instrument_id, fast, config)
    )
    for buy, sell in pairs:
        _merge(outcome, _step(symbol, state, buy, sell, health, now_ns, config))
    # Episodes of other pairs only get re-evaluated when their own quotes move; a leg
    # that went silent must still close its episode, so sweep them on every tick.
    if not state.episodes:
        return outcome
    for key in [k for k in state.episodes if quote.instrument_id not in k.split("|")]:
        buy_id, sell_id = key.split("|")
        held_buy, held_sell = state.quotes.get(buy_id), state.quotes.get(sell_id)
        if held_buy is None or held_sell is None:
            continue  # restored without its quotes (not re-read after a failover): it expires by time
        if any(leg_problem(leg, health.get(leg.venue), now_ns, config) for leg in (held_buy, held_sell)):
            _merge(outcome, _step(symbol, state, held_buy, held_sell, health, now_ns, config))
    return outcome


def expiry_ns(episode: Episode, config: ArbConfig) -> int | None:
    """When the older of the episode's legs (as last evaluated) stops being usable: its receipt
    time plus its venue's max quote age. A leg is stale at any later instant (see leg_problem)."""
    last = episode.last
    if last is None:
        return None
    return min(
        last.buy.receipt_ts_ns + config.max_age_ns(last.buy.venue),
        last.sell.receipt_ts_ns + config.max_age_ns(last.sell.venue),
    )


def expire_episodes(state: SymbolState, now_ns: int, config: ArbConfig) -> Outcome:
    """Close every episode of ``state`` whose legs expired before ``now_ns`` (event time).

    The close is dated at the expiry, not at ``now_ns``: the record is the same whether the
    symbol's next tick or the worker's sweep (its event-time clock, decision 0024) finds it, so a
    live worker, a replay and a backtest agree. A pending episode just disappears.
    """
    outcome = Outcome()
    ages, default = config.max_age_ns_by_venue, config.max_age_ns_default
    # Runs on every tick of a symbol with episodes: no call per episode, and with one max age for
    # every venue (the default) a leg expired when it was received before now - that age.
    if ages:
        expired = [
            key
            for key, episode in state.episodes.items()
            if (last := episode.last) is not None
            and (
                last.buy.receipt_ts_ns + ages.get(last.buy.venue, default) < now_ns
                or last.sell.receipt_ts_ns + ages.get(last.sell.venue, default) < now_ns
            )
        ]
    else:
        horizon = now_ns - default
        expired = [
            key
            for key, episode in state.episodes.items()
            if (last := episode.last) is not None
            and (last.buy.receipt_ts_ns < horizon or last.sell.receipt_ts_ns < horizon)
        ]
    if not expired:
        return outcome
    for key in expired:
        episode = state.episodes.pop(key)
        expiry = expiry_ns(episode, config)
        assert expiry is not None  # it has a last evaluation
        outcome.transitions += 1
        if episode.opened:
            outcome.closed.append(_closed(state, episode, expiry, _stale_reason(episode, config)))
    return outcome


def _stale_reason(episode: Episode, config: ArbConfig) -> str:
    last = episode.last
    assert last is not None  # an episode with an expiry has been evaluated
    legs = sorted((last.buy, last.sell), key=lambda leg: leg.receipt_ts_ns + config.max_age_ns(leg.venue))
    return f"stale quote: no {legs[0].venue} quote for {config.max_age_ns(legs[0].venue) // 1_000_000} ms"


def _step(
    symbol: str, state: SymbolState, buy: Quote, sell: Quote, health: dict[str, Health], now_ns: int, config: ArbConfig
) -> Outcome:
    key = pair_key(buy, sell)
    problem = leg_problem(buy, health.get(buy.venue), now_ns, config) or leg_problem(
        sell, health.get(sell.venue), now_ns, config
    )
    opportunity = None
    if problem is None:
        episode = state.episodes.get(key)
        start = episode.start_ts_ns if episode is not None else now_ns
        opportunity = evaluate(symbol, buy, sell, now_ns, config, start)
    return step_pair(state, key, opportunity, problem, now_ns, config)


def _merge(into: Outcome, other: Outcome) -> None:
    into.alerts += other.alerts
    into.closed += other.closed
    into.transitions += other.transitions
