"""Funding views of pairs: a symbol's legs, candidates, and the ranked page of /api/best-opportunities/.

Only the pairs of the requested page are costed (``api.funding_math.ranked_page``): ranking the
whole market's pairs is cheap, costing them all is not.
"""

from __future__ import annotations

from api.funding_math import Candidate, Floors, LegInput, PairRules, candidates, ranked_page
from api.funding_models import PairLegOut, PairOut, PairsOut
from api.funding_views import (
    HUNDRED,
    FundingInputs,
    fundings,
    open_interest_of,
    paginate,
    pct,
    period_avg,
    volume_of,
)
from schemas.funding import FundingPair, FundingPairLeg


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
            open_interest_quote=open_interest_of(inputs, funding.instrument_id),
        )
        for funding in fundings(inputs, symbol)
    ]


def candidates_of(inputs: FundingInputs, symbol: str, period: str, floors: Floors) -> list[Candidate]:
    rules = PairRules(inputs.config, inputs.max_funding_age_ms, floors.volume_24h, floors.open_interest)
    return candidates(symbol, leg_inputs(inputs, symbol, period), inputs.now_ns, rules, period != "now")


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
        open_interest=leg.open_interest_quote,
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


def _side_keeps(pair: Candidate, side: str) -> bool:
    """LONG: pairs whose long leg is itself paid (rate < 0); SHORT: whose short leg is (rate > 0)."""
    long_rate, short_rate = pair.long.funding.rate, pair.short.funding.rate
    if side == "LONG":
        return long_rate is not None and long_rate < 0
    if side == "SHORT":
        return short_rate is not None and short_rate > 0
    return True


def best_pairs(
    inputs: FundingInputs,
    period: str,
    q: str | None,
    side: str,
    venues: frozenset[str] | None,
    floors: Floors,
    page: int,
    page_size: int,
) -> PairsOut:
    needle = (q or "").strip().upper()
    found: list[Candidate] = []
    for symbol in sorted(inputs.model.symbols):
        if needle in symbol:
            found += candidates_of(inputs, symbol, period, floors)
    kept = [
        c
        for c in found
        if _side_keeps(c, side) and (venues is None or {c.long.funding.venue, c.short.funding.venue} <= venues)
    ]
    start = (page - 1) * page_size
    chosen = ranked_page(kept, start, start + page_size, inputs.now_ns, inputs.config, period != "now")
    page_info = paginate(kept, page, page_size)[1]
    return PairsOut(period=period, side=side, results=[pair_out(p, period, side) for p in chosen], **page_info)
