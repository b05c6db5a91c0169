"""Funding views of one symbol and of the whole terminal: coin detail, stats, settled history."""

from __future__ import annotations

from decimal import Decimal

from api.funding_math import Floors, apr, ranked_page
from api.funding_models import (
    CoinDetailOut,
    FundingHistoryOut,
    FundingStatsOut,
    InstrumentHistoryOut,
    PointOut,
    SettledOut,
    SummaryStatOut,
    VenueHistoryOut,
)
from api.funding_pair_views import candidates_of, pair_out
from api.funding_state import DAY_NS
from api.funding_views import HUNDRED, FundingInputs, exchange_entry, fundings


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
                volume=entry.volume,
                open_interest=entry.open_interest,
                interval_h=funding.interval_h,
                next_funding_time=entry.next_funding_time,
                predicted_apr=entry.predicted_apr,
                cap=entry.cap,
                floor=entry.floor,
                at_cap=entry.at_cap,
            )
        )
    for instrument_id, venue in sorted(_instruments_with_history(inputs, symbol).items()):
        settled = inputs.feed.history.between(instrument_id, since, inputs.now_ns)
        points = [PointOut(t=s.settled_ts_ns // 1_000_000, v=apr(s.rate, s.interval_h) * HUNDRED) for s in settled]
        history.append(VenueHistoryOut(exchange=venue, instrument_id=instrument_id, points=points))
    ranked = ranked_page(candidates_of(inputs, symbol, "now", Floors()), 0, 20, inputs.now_ns, inputs.config)
    return CoinDetailOut(
        symbol=symbol,
        asset=None,
        summary_stats=stats,
        history=history,
        pairs=[pair_out(p, "now", "LONG") for p in ranked],
    )


def _instruments_with_history(inputs: FundingInputs, symbol: str) -> dict[str, str]:
    """Instrument id -> venue of the symbol's instruments with live funding or settled history:
    the venue and base from the typed records (``Funding``, ``FundingSettlement``), not the id."""
    history = inputs.feed.history
    found = {
        i: last.venue for i in history.instruments if (last := history.last(i)) is not None and last.base == symbol
    }
    found.update((f.instrument_id, f.venue) for f in fundings(inputs, symbol))
    return found


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
    for instrument_id, venue in sorted(_instruments_with_history(inputs, symbol).items()):
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
