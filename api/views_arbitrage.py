"""Arbitrage views: /api/arbitrage, /api/spread, alert status, open and closed episodes.

Pairs are evaluated with the worker's own functions (``processors.arbitrage``:
``evaluate``, ``leg_problem``; ``schemas.market.quote_group``), so the API's live rows and the
worker's events agree on every number: executable prices (ask to buy, bid to
sell), per-base-unit normalisation, the same taker fees, the same stale/unhealthy
rules — only "now" is the wall clock here, where the worker uses event time.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import msgspec

from api.models import (
    AlertStatusOut,
    ArbitrageRow,
    EpisodeClosedOut,
    EpisodesOut,
    OpenEpisodeOut,
    OpportunitiesOut,
    OpportunityOut,
    SpreadOut,
)
from api.readmodel import ReadModel
from api.views_prices import age_ms, epoch_seconds, group_rank, iso, ms, reference_price
from processors.arbitrage import ArbConfig, evaluate, leg_problem, pair_key, per_base, seconds_until_alert
from schemas.arbitrage import Episode, EpisodeClosed, Opportunity, SymbolState
from schemas.market import Quote, quote_group


@dataclass(frozen=True)
class ArbFilter:
    min_spread_pct: Decimal | None = None
    """Minimum gross spread, percent (the seed's ``min_spread``)."""
    venue: str | None = None
    """Either leg on this venue."""
    symbol: str | None = None


def _evaluable(buy: Quote, sell: Quote) -> bool:
    """Both executable sides exist and are positive (the spread divides by the ask)."""
    sides = (buy.ask, buy.ask_size, sell.bid, sell.bid_size)
    return all(v is not None and v > 0 for v in sides)


def to_row(opportunity: Opportunity, problem: str | None, group: str, episode_id: str | None) -> ArbitrageRow:
    o = opportunity
    sell_higher = o.sell.price >= o.buy.price
    higher, lower = (o.sell, o.buy) if sell_higher else (o.buy, o.sell)
    return ArbitrageRow(
        symbol=o.symbol,
        buy_exchange=o.buy.venue,
        sell_exchange=o.sell.venue,
        buy_price=o.buy.price,
        sell_price=o.sell.price,
        spread=o.sell.price - o.buy.price,
        spread_percentage=o.gross_spread * 100,
        net_spread_percentage=o.net_spread * 100,
        potential_profit=o.net_spread * 100,
        net_profit=o.net_spread * o.notional,
        profitable=problem is None and o.net_spread > 0,
        timestamp=ms(o.exchange_ts_ns),
        exchanges=[o.buy.venue, o.sell.venue],
        higher=higher.venue,
        lower=lower.venue,
        higher_price=higher.price,
        lower_price=lower.price,
        size=o.size,
        notional=o.notional,
        buy_age_ms=o.buy.age_ms,
        sell_age_ms=o.sell.age_ms,
        skew_ms=o.skew_ms,
        buy_instrument_id=o.buy.instrument_id,
        sell_instrument_id=o.sell.instrument_id,
        quote_group=group,
        buy_fee=o.buy.fee,
        sell_fee=o.sell.fee,
        problem=problem,
        episode_id=episode_id,
    )


def pair_row(
    model: ReadModel, symbol: str, state: SymbolState, buy: Quote, sell: Quote, now_ns: int, config: ArbConfig
) -> ArbitrageRow | None:
    if not _evaluable(buy, sell):
        return None
    problem = leg_problem(buy, model.venue_health(buy.venue), now_ns, config) or leg_problem(
        sell, model.venue_health(sell.venue), now_ns, config
    )
    episode = state.episodes.get(pair_key(buy, sell))
    start = episode.start_ts_ns if episode is not None else now_ns
    opportunity = evaluate(symbol, buy, sell, now_ns, config, start)
    episode_id = episode.last.event_id if episode is not None and episode.opened and episode.last else None
    return to_row(opportunity, problem, quote_group(buy, config.quote_bridges), episode_id)


def symbol_rows(
    model: ReadModel, symbol: str, state: SymbolState, now_ns: int, config: ArbConfig
) -> list[ArbitrageRow]:
    """Every ordered (buy, sell) pair of comparable contracts on different venues."""
    rows = []
    quotes = sorted(state.quotes.values(), key=lambda q: q.instrument_id)
    for buy in quotes:
        group = quote_group(buy, config.quote_bridges)
        for sell in quotes:
            if sell.venue == buy.venue or quote_group(sell, config.quote_bridges) != group:
                continue
            row = pair_row(model, symbol, state, buy, sell, now_ns, config)
            if row is not None:
                rows.append(row)
    return rows


def _sort_key(row: ArbitrageRow) -> tuple[Decimal, Decimal, str, str]:
    return (-row.net_spread_percentage, -row.spread_percentage, row.buy_instrument_id, row.sell_instrument_id)


def arbitrage_rows(model: ReadModel, now_ns: int, config: ArbConfig, where: ArbFilter) -> list[ArbitrageRow]:
    """Rows matching ``where``, best net spread first."""
    rows: list[ArbitrageRow] = []
    for symbol, state in model.symbols.items():
        if where.symbol is None or where.symbol == symbol:
            rows += symbol_rows(model, symbol, state, now_ns, config)
    if where.venue is not None:
        rows = [r for r in rows if where.venue in (r.buy_exchange, r.sell_exchange)]
    if where.min_spread_pct is not None:
        minimum = where.min_spread_pct
        rows = [r for r in rows if r.spread_percentage >= minimum]
    return sorted(rows, key=_sort_key)


def common_pair(state: SymbolState, venue1: str, venue2: str, bridges: dict[str, str]) -> tuple[Quote, Quote] | None:
    """The two venues' contracts of the most common quote group both have."""
    by_group: dict[str, dict[str, Quote]] = {}
    for quote in state.quotes.values():
        if quote.venue in (venue1, venue2):
            by_group.setdefault(quote_group(quote, bridges), {}).setdefault(quote.venue, quote)
    shared = sorted((g for g, qs in by_group.items() if len(qs) == 2), key=group_rank)
    if not shared:
        return None
    pair = by_group[shared[0]]
    return pair[venue1], pair[venue2]


def reference_spread(q1: Quote, q2: Quote) -> tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]:
    """(price1, price2, spread, spread_percentage) of /api/spread: reference prices per base unit,
    price2 - price1, and that difference in percent of price1. Also what the spread history records."""
    ref1, _ = reference_price(q1)
    ref2, _ = reference_price(q2)
    p1 = per_base(ref1, q1.price_multiplier) if ref1 is not None else None
    p2 = per_base(ref2, q2.price_multiplier) if ref2 is not None else None
    diff = p2 - p1 if p1 is not None and p2 is not None else None
    return p1, p2, diff, diff / p1 * 100 if diff is not None and p1 else None


def seed_spread(
    q1: Quote, q2: Quote, p1: Decimal | None, p2: Decimal | None
) -> tuple[Quote | None, Quote | None, Decimal | None, Decimal | None]:
    """The seed's view of two reference prices: (higher, lower, spread >= 0, spread / lower x 100)."""
    if p1 is None or p2 is None:
        return None, None, None, None
    (hi, hi_p), (lo, lo_p) = ((q2, p2), (q1, p1)) if p2 >= p1 else ((q1, p1), (q2, p2))
    gap = hi_p - lo_p
    return hi, lo, gap, gap / lo_p * 100 if lo_p else None


def spread(model: ReadModel, symbol: str, q1: Quote, q2: Quote, now_ns: int, config: ArbConfig) -> SpreadOut:
    state = model.symbols[symbol]
    p1, p2, diff, percentage = reference_spread(q1, q2)
    higher, lower, gap, gap_pct = seed_spread(q1, q2, p1, p2)
    return SpreadOut(
        symbol=symbol,
        exchanges=[q1.venue, q2.venue],
        spread=gap,
        spread_percentage=gap_pct,
        higher=higher.venue if higher is not None else None,
        lower=lower.venue if lower is not None else None,
        higher_price=max(p1, p2) if p1 is not None and p2 is not None else None,
        lower_price=min(p1, p2) if p1 is not None and p2 is not None else None,
        exchange1=q1.venue,
        exchange2=q2.venue,
        quote_group=quote_group(q1, config.quote_bridges),
        instrument1=q1.instrument_id,
        instrument2=q2.instrument_id,
        price1=p1,
        price2=p2,
        price_difference=diff,
        price_difference_percentage=percentage,
        buy_1_sell_2=pair_row(model, symbol, state, q1, q2, now_ns, config),
        buy_2_sell_1=pair_row(model, symbol, state, q2, q1, now_ns, config),
        timestamp=ms(now_ns),
        timestamp_iso=iso(now_ns),
    )


def alert_status(model: ReadModel, symbol: str, now_ns: int, config: ArbConfig) -> AlertStatusOut:
    state = model.symbols.get(symbol, SymbolState())
    wait = seconds_until_alert(state, now_ns, config)
    last = state.last_alert_ts_ns
    return AlertStatusOut(
        symbol=symbol,
        can_send_alert=wait == 0,
        last_alert_time=epoch_seconds(last) if last is not None else None,
        seconds_since_last_alert=epoch_seconds(max(0, now_ns - last)) if last is not None else None,
        last_alert_time_iso=iso(last) if last is not None else None,
        last_alert_timestamp_ms=ms(last) if last is not None else None,
        last_alert_net_spread=state.last_alert_net,
        seconds_until_next_alert=wait,
        cooldown_seconds=config.cooldown_s,
        cooldown_break_ratio=config.cooldown_break_ratio,
        timestamp=iso(now_ns),
    )


def opportunity_out(opportunity: Opportunity) -> OpportunityOut:
    return OpportunityOut.model_validate(msgspec.to_builtins(opportunity, builtin_types=(Decimal,)))


def closed_out(closed: EpisodeClosed) -> EpisodeClosedOut:
    return EpisodeClosedOut.model_validate(msgspec.to_builtins(closed, builtin_types=(Decimal,)))


def _legs_match(venues: tuple[str, str], where: ArbFilter, min_net: Decimal | None, net: Decimal) -> bool:
    return (where.venue is None or where.venue in venues) and (min_net is None or net >= min_net)


def _open_episode(symbol: str, episode: Episode, last: Opportunity, now_ns: int) -> OpenEpisodeOut:
    return OpenEpisodeOut(
        event_id=last.event_id,
        symbol=symbol,
        buy_venue=last.buy.venue,
        sell_venue=last.sell.venue,
        buy_instrument_id=episode.buy_instrument_id,
        sell_instrument_id=episode.sell_instrument_id,
        start_ts_ns=episode.start_ts_ns,
        alive_ms=age_ms(now_ns, episode.start_ts_ns),
        ticks=episode.ticks,
        peak_net_spread=episode.peak_net,
        avg_net_spread=episode.sum_net / episode.ticks,
        last_net_spread=episode.last_net,
        alerted=episode.alerted,
        last=opportunity_out(last),
    )


def open_episode_rows(model: ReadModel, now_ns: int, where: ArbFilter, min_net: Decimal | None) -> list[OpenEpisodeOut]:
    """Open episodes from the worker's table, best last net spread first."""
    rows = []
    for symbol, state in model.symbols.items():
        if where.symbol is not None and where.symbol != symbol:
            continue
        for episode in state.episodes.values():
            last = episode.last
            if (
                episode.opened
                and last is not None
                and _legs_match((last.buy.venue, last.sell.venue), where, min_net, episode.last_net)
            ):
                rows.append(_open_episode(symbol, episode, last, now_ns))
    return sorted(rows, key=lambda r: (-r.last_net_spread, r.event_id))


def recent_alerts(model: ReadModel, where: ArbFilter, min_net: Decimal | None, limit: int) -> list[OpportunityOut]:
    """Latest alerts first; filtered on the raw events so only ``limit`` response models are built."""
    chosen = [
        a
        for a in reversed(model.alerts.values())
        if (where.symbol is None or a.symbol == where.symbol)
        and _legs_match((a.buy.venue, a.sell.venue), where, min_net, a.net_spread)
    ]
    return [opportunity_out(a) for a in chosen[:limit]]


def open_episodes(
    model: ReadModel, now_ns: int, where: ArbFilter, min_net: Decimal | None, limit: int
) -> OpportunitiesOut:
    return OpportunitiesOut(
        opportunities=open_episode_rows(model, now_ns, where, min_net)[:limit],
        recent_alerts=recent_alerts(model, where, min_net, limit),
        timestamp=iso(now_ns),
    )


def closed_episodes(model: ReadModel, now_ns: int, where: ArbFilter, limit: int, offset: int) -> EpisodesOut:
    matching = [
        e
        for e in model.closed.values()
        if (where.symbol is None or e.symbol == where.symbol)
        and (where.venue is None or where.venue in (e.buy_venue, e.sell_venue))
    ]
    matching.sort(key=lambda e: (-e.end_ts_ns, e.event_id))
    page = [closed_out(e) for e in matching[offset : offset + limit]]
    return EpisodesOut(episodes=page, total=len(matching), limit=limit, offset=offset, timestamp=iso(now_ns))
