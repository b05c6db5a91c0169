"""Funding terminal views: the read model + the settled history -> the response models.

Plain functions of a :class:`FundingInputs` snapshot (no request, no I/O) so tests can call
them; :mod:`api.funding_routes` only parses parameters and encodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from api.funding_feed import FundingFeed
from api.funding_math import (
    Floors,
    apr,
    at_cap,
    next_settlement,
    per_hour,
    rate_limits,
)
from api.funding_models import (
    AveragesOut,
    ExchangeFundingOut,
    FundingRowOut,
    FundingTableOut,
)
from api.funding_state import DAY_NS
from api.readmodel import ReadModel
from api.universe import Universe
from api.views_prices import reference_price
from processors.arbitrage import UNHEALTHY, ArbConfig, per_base
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


def open_interest_of(inputs: FundingInputs, instrument_id: str) -> Decimal | None:
    instrument = inputs.universe.published.get(instrument_id)
    return instrument.open_interest_quote if instrument is not None else None


def admitted(inputs: FundingInputs, instrument_id: str, floors: Floors) -> bool:
    """The instrument clears the request's volume and open-interest floors."""
    return floors.admit(volume_of(inputs, instrument_id), open_interest_of(inputs, instrument_id))


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
    cap, floor = rate_limits(funding, inputs.universe.published.get(funding.instrument_id))
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
        open_interest=open_interest_of(inputs, funding.instrument_id),
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
        cap=cap,
        floor=floor,
        at_cap=at_cap(rate, cap, floor),
    )


@dataclass(frozen=True)
class RowFacts:
    """What sorting a table row needs, without building its response (only the page's rows are)."""

    symbol: str
    fundings: list[Funding]
    live: list[Decimal]
    """Live APRs in percent (instruments with a rate and an interval)."""
    hist: list[Decimal]
    """Realised APRs over the period in percent (instruments with a settlement in it)."""
    volume: Decimal
    open_interest: Decimal
    """Sum over the row's instruments that publish one (0 when none does)."""


def row_facts(
    inputs: FundingInputs, symbol: str, period: str, venues: frozenset[str] | None, floors: Floors
) -> RowFacts | None:
    chosen = [
        f
        for f in fundings(inputs, symbol)
        if (venues is None or f.venue in venues) and admitted(inputs, f.instrument_id, floors)
    ]
    if not chosen:
        return None
    live = [apr(f.rate, f.interval_h) * HUNDRED for f in chosen if f.rate is not None and f.interval_h]
    hist = [v * HUNDRED for f in chosen if (v := period_avg(inputs, f.instrument_id, period)) is not None]
    volume = sum((volume_of(inputs, f.instrument_id) or Decimal(0) for f in chosen), Decimal(0))
    open_interest = sum((open_interest_of(inputs, f.instrument_id) or Decimal(0) for f in chosen), Decimal(0))
    return RowFacts(symbol, chosen, live, hist, volume, open_interest)


def _spread(values: list[Decimal]) -> Decimal | None:
    return max(values) - min(values) if len(values) >= 2 else None


def funding_row(inputs: FundingInputs, facts: RowFacts, period: str) -> FundingRowOut:
    return FundingRowOut(
        symbol=facts.symbol,
        asset_info=None,
        spread=_spread(facts.hist),
        live_spread=_spread(facts.live),
        exchanges_data=[exchange_entry(inputs, facts.symbol, f, period) for f in facts.fundings],
    )


NEG_INF = Decimal("-Infinity")


def _or_lowest(value: Decimal | None) -> Decimal:
    return value if value is not None else NEG_INF


def _table_key(row: RowFacts, sort: str) -> tuple[Any, ...]:
    """Descending on the chosen figure; the live figure breaks ties (and ranks before any history)."""
    if sort == "symbol":
        return (row.symbol,)
    if sort in ("volume", "market_cap"):  # no market caps: the seed's next best proxy is volume
        return (-row.volume, row.symbol)
    if sort == "open_interest":
        return (-row.open_interest, row.symbol)
    if sort == "apr":
        hist = max((abs(v) for v in row.hist), default=NEG_INF)
        return (-hist, -max((abs(v) for v in row.live), default=NEG_INF), row.symbol)
    return (-_or_lowest(_spread(row.hist)), -_or_lowest(_spread(row.live)), row.symbol)


def funding_table(
    inputs: FundingInputs,
    period: str,
    q: str | None,
    sort: str,
    venues: frozenset[str] | None,
    floors: Floors,
    page: int,
    page_size: int,
) -> FundingTableOut:
    needle = (q or "").strip().upper()
    rows = [
        facts
        for symbol in sorted(inputs.model.symbols)
        if needle in symbol
        if (facts := row_facts(inputs, symbol, period, venues, floors)) is not None
    ]
    rows.sort(key=lambda row: _table_key(row, sort))
    chosen, page_info = paginate(rows, page, page_size)
    return FundingTableOut(period=period, results=[funding_row(inputs, r, period) for r in chosen], **page_info)
