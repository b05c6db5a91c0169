"""Funding terminal views: the read model + the settled history -> the response models.

Plain functions of a :class:`FundingInputs` snapshot (no request, no I/O) so tests can call
them; :mod:`api.funding_routes` only parses parameters and encodes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from api.funding_feed import FundingFeed
from api.funding_math import LegInput, PairRules, apr, meets_floor, next_settlement, per_hour, rank, symbol_pairs
from api.funding_models import (
    AveragesOut,
    CoinDetailOut,
    ExchangeFundingOut,
    FundingHistoryOut,
    FundingRowOut,
    FundingStatsOut,
    FundingTableOut,
    InstrumentHistoryOut,
    PairLegOut,
    PairOut,
    PairsOut,
    PointOut,
    SettledOut,
    SummaryStatOut,
    VenueHistoryOut,
)
from api.funding_state import DAY_NS
from api.readmodel import ReadModel
from api.universe import Universe
from api.views_prices import reference_price
from processors.arbitrage import UNHEALTHY, ArbConfig, per_base
from schemas.funding import FundingPair, FundingPairLeg
from schemas.market import Funding

HOUR_NS = 3_600_000_000_000
PERIODS_NS = {
    "1h": HOUR_NS,
    "4h": 4 * HOUR_NS,
    "1d": DAY_NS,
    "3d": 3 * DAY_NS,
    "7d": 7 * DAY_NS,
    "14d": 14 * DAY_NS,
    "30d": 30 * DAY_NS,
}
TABLE_PERIODS = ("1h", "4h", "1d", "3d", "7d", "30d")
"""The seed's periods of /api/funding-table/."""
PAIR_PERIODS = ("now", "1d", "3d", "7d", "14d", "30d")
"""The seed's periods of /api/best-opportunities/, plus ``now`` (current rates: no history needed)."""
HISTORY_POINTS = 60
HUNDRED = Decimal(100)
T = TypeVar("T")


@dataclass(frozen=True)
class FundingInputs:
    model: ReadModel
    universe: Universe
    feed: FundingFeed
    config: ArbConfig
    max_funding_age_ms: int
    now_ns: int


def pct(value: Decimal | None) -> Decimal | None:
    return value * HUNDRED if value is not None else None


def paginate(rows: Sequence[T], page: int, page_size: int) -> tuple[list[T], dict[str, int]]:
    """The seed's DRF page numbers; a page past the end is empty (never an error)."""
    total_pages = max(1, -(-len(rows) // page_size))
    start = (page - 1) * page_size
    return list(rows[start : start + page_size]), {
        "count": len(rows),
        "total_pages": total_pages,
        "current_page": page,
    }


def fundings(inputs: FundingInputs, symbol: str) -> list[Funding]:
    state = inputs.model.symbols.get(symbol)
    return sorted(state.funding.values(), key=lambda f: f.instrument_id) if state is not None else []


def volume_of(inputs: FundingInputs, instrument_id: str) -> Decimal | None:
    instrument = inputs.universe.published.get(instrument_id)
    return instrument.volume_24h_quote if instrument is not None else None


def healthy(inputs: FundingInputs, venue: str) -> bool:
    health = inputs.model.venue_health(venue)
    return health is None or health.state not in UNHEALTHY


def averages(inputs: FundingInputs, instrument_id: str) -> AveragesOut:
    def avg(days: int) -> Decimal | None:
        return pct(inputs.feed.history.average_apr(instrument_id, inputs.now_ns - days * DAY_NS, inputs.now_ns))

    return AveragesOut.model_validate({f"{days}d": avg(days) for days in (1, 3, 7, 30)})


def period_avg(inputs: FundingInputs, instrument_id: str, period: str) -> Decimal | None:
    if period not in PERIODS_NS:
        return None
    return inputs.feed.history.average_apr(instrument_id, inputs.now_ns - PERIODS_NS[period], inputs.now_ns)


def _price(inputs: FundingInputs, symbol: str, funding: Funding) -> Decimal | None:
    state = inputs.model.symbols.get(symbol)
    quote = state.quotes.get(funding.instrument_id) if state is not None else None
    price = reference_price(quote)[0] if quote is not None else None
    multiplier = quote.price_multiplier if quote is not None else funding.price_multiplier
    price = price if price is not None else funding.mark
    return per_base(price, multiplier) if price is not None else None


def exchange_entry(inputs: FundingInputs, symbol: str, funding: Funding, period: str) -> ExchangeFundingOut:
    rate, interval, predicted = funding.rate, funding.interval_h, funding.predicted_rate
    live = apr(rate, interval) if rate is not None and interval else None
    schedule = next_settlement(funding, inputs.now_ns)
    settled = inputs.feed.history.between(funding.instrument_id, inputs.now_ns - PERIODS_NS[period], inputs.now_ns)
    multiplier = funding.price_multiplier
    return ExchangeFundingOut(
        exchange=funding.venue,
        instrument_id=funding.instrument_id,
        price=_price(inputs, symbol, funding),
        live_apr=pct(live),
        hist_apr=pct(period_avg(inputs, funding.instrument_id, period)),
        frequency=Decimal(24) / interval if interval else None,
        history=[apr(s.rate, s.interval_h) * HUNDRED for s in settled[-HISTORY_POINTS:]],
        image=None,
        market_cap=None,
        volume=volume_of(inputs, funding.instrument_id),
        rate=rate,
        interval_h=interval,
        funding_per_h=per_hour(rate, interval) if rate is not None and interval else None,
        predicted_rate=funding.predicted_rate,
        predicted_apr=pct(apr(predicted, interval)) if predicted is not None and interval else None,
        next_funding_time=schedule[0] // 1_000_000 if schedule is not None else None,
        next_funding_estimated=schedule[1] if schedule is not None else False,
        mark=per_base(funding.mark, multiplier) if funding.mark is not None else None,
        index=per_base(funding.index, multiplier) if funding.index is not None else None,
        side=None if live is None else "SHORT" if live > 0 else "LONG" if live < 0 else "FLAT",
        averages=averages(inputs, funding.instrument_id),
        healthy=healthy(inputs, funding.venue),
        age_ms=max(0, inputs.now_ns - funding.receipt_ts_ns) // 1_000_000,
    )


def _spread(values: list[Decimal | None]) -> Decimal | None:
    known = [v for v in values if v is not None]
    return max(known) - min(known) if len(known) >= 2 else None


def funding_row(
    inputs: FundingInputs, symbol: str, period: str, venues: frozenset[str] | None, floor: Decimal
) -> FundingRowOut | None:
    entries = [
        exchange_entry(inputs, symbol, f, period)
        for f in fundings(inputs, symbol)
        if (venues is None or f.venue in venues) and meets_floor(volume_of(inputs, f.instrument_id), floor)
    ]
    if not entries:
        return None
    return FundingRowOut(
        symbol=symbol,
        asset_info=None,
        spread=_spread([e.hist_apr for e in entries]),
        live_spread=_spread([e.live_apr for e in entries]),
        exchanges_data=entries,
    )


NEG_INF = Decimal("-Infinity")


def _table_key(row: FundingRowOut, sort: str) -> tuple[Any, ...]:
    """Descending on the chosen figure; the live figure breaks ties (and ranks before any history)."""
    if sort == "symbol":
        return (row.symbol,)
    if sort in ("volume", "market_cap"):  # no market caps: the seed's next best proxy is volume
        return (-sum((e.volume or 0 for e in row.exchanges_data), Decimal(0)), row.symbol)
    if sort == "apr":
        hist = max((abs(e.hist_apr) for e in row.exchanges_data if e.hist_apr is not None), default=NEG_INF)
        live = max((abs(e.live_apr) for e in row.exchanges_data if e.live_apr is not None), default=NEG_INF)
        return (-hist, -live, row.symbol)
    return (-(row.spread if row.spread is not None else NEG_INF), -(row.live_spread or NEG_INF), row.symbol)


def funding_table(
    inputs: FundingInputs,
    period: str,
    q: str | None,
    sort: str,
    venues: frozenset[str] | None,
    floor: Decimal,
    page: int,
    page_size: int,
) -> FundingTableOut:
    needle = (q or "").strip().upper()
    rows = [
        row
        for symbol in sorted(inputs.model.symbols)
        if needle in symbol
        if (row := funding_row(inputs, symbol, period, venues, floor)) is not None
    ]
    rows.sort(key=lambda row: _table_key(row, sort))
    results, page_info = paginate(rows, page, page_size)
    return FundingTableOut(period=period, results=results, **page_info)


def leg_inputs(inputs: FundingInputs, symbol: str, period: str) -> list[LegInput]:
    state = inputs.model.symbols.get(symbol)
    if state is None:
        return []
    return [
        LegInput(
            funding=funding,
            quote=state.quotes.get(funding.instrument_id),
            health=inputs.model.venue_health(funding.venue),
            volume_24h_quote=volume_of(inputs, funding.instrument_id),
            avg_apr=period_avg(inputs, funding.instrument_id, period),
        )
        for funding in fundings(inputs, symbol)
    ]


def pairs_of(inputs: FundingInputs, symbol: str, period: str, floor: Decimal) -> list[FundingPair]:
    rules = PairRules(inputs.config, inputs.max_funding_age_ms, floor)
    return symbol_pairs(symbol, leg_inputs(inputs, symbol, period), inputs.now_ns, rules)


def _leg_out(leg: FundingPairLeg) -> PairLegOut:
    return PairLegOut(
        exchange=leg.venue,
        instrument_id=leg.instrument_id,
        rate=leg.rate,
        interval_h=leg.interval_h,
        apr=leg.apr * HUNDRED,
        avg_apr=pct(leg.avg_apr),
        funding_per_h=leg.funding_per_h,
        next_funding_time=leg.next_funding_ts_ns // 1_000_000,
        next_funding_estimated=leg.next_funding_estimated,
        price=leg.price,
        fee=leg.fee,
        volume=leg.volume_24h_quote,
    )


def pair_out(pair: FundingPair, period: str, side: str) -> PairOut:
    named = pair.short if side == "SHORT" else pair.long
    figure = pair.apr_spread if period == "now" else pair.avg_apr_spread
    return PairOut(
        symbol=pair.symbol,
        exchange=named.venue,
        side="SHORT" if side == "SHORT" else "LONG",
        apr=(figure if figure is not None else pair.apr_spread) * HUNDRED,
        price=named.price,
        long=_leg_out(pair.long),
        short=_leg_out(pair.short),
        apr_spread=pair.apr_spread * HUNDRED,
        avg_apr_spread=pct(pair.avg_apr_spread),
        carry_per_h=pair.carry_per_h * HUNDRED,
        price_spread=pair.price_spread,
        entry_cost=pct(pair.entry_cost),
        break_even_hours=pair.break_even_h,
        avg_break_even_hours=pair.avg_break_even_h,
        common_settlement_time=pair.common_settlement_ts_ns // 1_000_000 if pair.common_settlement_ts_ns else None,
        carry_to_common=pct(pair.carry_to_common),
    )


def _side_keeps(pair: FundingPair, side: str) -> bool:
    """LONG: pairs whose long leg is itself paid (rate < 0); SHORT: whose short leg is (rate > 0)."""
    if side == "LONG":
        return pair.long.rate < 0
    if side == "SHORT":
        return pair.short.rate > 0
    return True


def best_pairs(
    inputs: FundingInputs,
    period: str,
    q: str | None,
    side: str,
    venues: frozenset[str] | None,
    floor: Decimal,
    page: int,
    page_size: int,
) -> PairsOut:
    needle = (q or "").strip().upper()
    found: list[FundingPair] = []
    for symbol in sorted(inputs.model.symbols):
        if needle in symbol:
            found += pairs_of(inputs, symbol, period, floor)
    kept = (
        p
        for p in found
        if _side_keeps(p, side) and (venues is None or (p.long.venue in venues and p.short.venue in venues))
    )
    ranked = rank(kept, use_average=period != "now")
    results, page_info = paginate(ranked, page, page_size)
    return PairsOut(period=period, side=side, results=[pair_out(p, period, side) for p in results], **page_info)


def coin_detail(inputs: FundingInputs, symbol: str) -> CoinDetailOut:
    stats, history = [], []
    since = inputs.now_ns - 30 * DAY_NS
    for funding in fundings(inputs, symbol):
        entry = exchange_entry(inputs, symbol, funding, "30d")
        stats.append(
            SummaryStatOut(
                exchange=funding.venue,
                instrument_id=funding.instrument_id,
                current_apr=entry.live_apr,
                avg_apr=entry.hist_apr,
                averages=entry.averages,
                price=entry.price,
                interval_h=funding.interval_h,
                next_funding_time=entry.next_funding_time,
                predicted_apr=entry.predicted_apr,
            )
        )
    for instrument_id in sorted(_instruments_with_history(inputs, symbol)):
        settled = inputs.feed.history.between(instrument_id, since, inputs.now_ns)
        points = [PointOut(t=s.settled_ts_ns // 1_000_000, v=apr(s.rate, s.interval_h) * HUNDRED) for s in settled]
        history.append(
            VenueHistoryOut(exchange=instrument_id.split("@")[-1], instrument_id=instrument_id, points=points)
        )
    ranked = rank(pairs_of(inputs, symbol, "30d", Decimal(0)))[:20]
    return CoinDetailOut(
        symbol=symbol,
        asset=None,
        summary_stats=stats,
        history=history,
        pairs=[pair_out(p, "now", "LONG") for p in ranked],
    )


def _instruments_with_history(inputs: FundingInputs, symbol: str) -> Iterator[str]:
    live = {f.instrument_id for f in fundings(inputs, symbol)}
    settled = {i for i in inputs.feed.history.instruments if i.split("-", 1)[0] == symbol}
    yield from live | settled


def funding_stats(inputs: FundingInputs) -> FundingStatsOut:
    symbols, venues, newest = set(), set(), None
    for symbol, state in inputs.model.symbols.items():
        for funding in state.funding.values():
            symbols.add(symbol)
            venues.add(funding.venue)
            newest = max(newest or 0, funding.receipt_ts_ns)
    history = inputs.feed.history
    oldest = min(
        (s.settled_ts_ns for i in history.instruments for s in history.between(i, -1, 2**63)[:1]), default=None
    )
    return FundingStatsOut(
        total_coins=len(symbols),
        total_exchanges=len(venues),
        last_update=Decimal(newest // 1_000_000) / 1000 if newest is not None else None,
        settlements=len(history),
        oldest_settlement=oldest // 1_000_000 if oldest is not None else None,
        history_loaded=inputs.feed.history_loaded,
        funding_alerts=len(inputs.feed.alerts),
    )


def funding_history(inputs: FundingInputs, symbol: str, days: int, venues: frozenset[str] | None) -> FundingHistoryOut:
    since = inputs.now_ns - days * DAY_NS
    series = []
    for instrument_id in sorted(_instruments_with_history(inputs, symbol)):
        venue = instrument_id.split("@")[-1]
        if venues is not None and venue not in venues:
            continue
        settled = inputs.feed.history.between(instrument_id, since, inputs.now_ns)
        points = [
            SettledOut(
                t=s.settled_ts_ns // 1_000_000,
                rate=s.rate,
                interval_h=s.interval_h,
                apr=apr(s.rate, s.interval_h) * HUNDRED,
                estimated_time=s.time_estimated,
            )
            for s in settled
        ]
        series.append(InstrumentHistoryOut(exchange=venue, instrument_id=instrument_id, points=points))
    return FundingHistoryOut(symbol=symbol, days=days, series=series)
