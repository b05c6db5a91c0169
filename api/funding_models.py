"""Response models of the funding terminal (the seed's FundingRateWebBackend shapes, issue 15).

The seed's field names are kept; its meaning is fixed: every APR is annualised from the
venue's own interval (rate x 24 / interval_h x 365, not 8 h everywhere), and
/api/best-opportunities/ ranks *pairs* (long one venue, short another), not single venues.
APRs (``*_apr``, ``spread``, ``apr``) are **percent** like the seed's (10.95 = 10.95 % a
year); ``rate`` fields are fractions per interval as the venue states them; costs are percent
of notional; times are Unix ms. Encoded by ``api.wire`` (Decimals as JSON numbers).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.wire import Num, Pct

APR = "percent a year"


class Page(BaseModel):
    count: int = Field(description="rows matching the filters, all pages")
    total_pages: int
    current_page: int


class AveragesOut(BaseModel):
    d1: Pct | None = Field(alias="1d", description=f"realised APR over settlements of the last day, {APR}")
    d3: Pct | None = Field(alias="3d")
    d7: Pct | None = Field(alias="7d")
    d30: Pct | None = Field(alias="30d")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class ExchangeFundingOut(BaseModel):
    exchange: str
    instrument_id: str
    price: Num | None = Field(description="mid per base unit (else the mark price)")
    live_apr: Pct | None = Field(description=f"current rate annualised from its own interval, {APR}")
    hist_apr: Pct | None = Field(description=f"realised APR over the requested period, {APR}; null: no settlement")
    frequency: Num | None = Field(description="payouts per day (24 / interval_h)")
    history: list[Pct] = Field(description="APR of each settlement in the period, oldest first (at most 60)")
    image: str | None = Field(description="always null: arbstream keeps no logos")
    market_cap: Num | None = Field(description="always null: arbstream keeps no market caps")
    volume: Num | None = Field(description="24 h traded notional in the quote currency, from the venue's listing")
    open_interest: Num | None = Field(
        default=None,
        description="open interest as notional in the quote currency, from the venue's listing or ticker "
        "(null: the venue publishes none in it, e.g. Binance)",
    )
    rate: Num | None = Field(description="current rate per interval, fraction")
    interval_h: int | None
    funding_per_h: Num | None = Field(description="rate / interval_h, fraction of notional per hour")
    predicted_rate: Num | None = Field(description="the venue's predicted next rate, where it publishes one")
    predicted_apr: Pct | None
    next_funding_time: int | None = Field(description="Unix ms of the next settlement")
    next_funding_estimated: bool = Field(description="the venue sends no time: the UTC grid of its interval")
    mark: Num | None
    index: Num | None
    side: Literal["LONG", "SHORT", "FLAT"] | None = Field(description="which side the current rate pays")
    averages: AveragesOut
    healthy: bool = Field(description="the venue's connections are not disconnected, stale, gapped or failing")
    age_ms: int = Field(description="since the funding update was received")
    cap: Num | None = Field(default=None, description="the venue's highest rate per interval (null: not published)")
    floor: Num | None = Field(default=None, description="the venue's lowest rate per interval (null: not published)")
    at_cap: bool | None = Field(
        default=None, description="the current rate sits at the cap or the floor (null: no bound known, or no rate)"
    )


class FundingRowOut(BaseModel):
    symbol: str
    asset_info: None = Field(description="always null: no CoinGecko data")
    spread: Pct | None = Field(description=f"max - min hist_apr across the row, {APR}")
    live_spread: Pct | None = Field(description=f"max - min live_apr across the row, {APR}")
    exchanges_data: list[ExchangeFundingOut]


class FundingTableOut(Page):
    period: str
    results: list[FundingRowOut]


class PairLegOut(BaseModel):
    exchange: str
    instrument_id: str
    rate: Num
    interval_h: int
    apr: Pct
    avg_apr: Pct | None = Field(description=f"realised over the requested period, {APR}")
    funding_per_h: Num
    next_funding_time: int
    next_funding_estimated: bool
    price: Num | None = Field(description="executable per base unit now: ask (long leg) or bid (short leg)")
    fee: Num = Field(description="taker fee assumed (fraction)")
    volume: Num | None
    open_interest: Num | None = Field(default=None, description="open interest, quote notional (null: not published)")


class PairOut(BaseModel):
    symbol: str
    exchange: str = Field(description="the leg named by `side` (seed field)")
    side: Literal["LONG", "SHORT"]
    apr: Pct = Field(description=f"the pair's APR differential on the requested period (live for `now`), {APR}")
    price: Num | None = Field(description="that leg's executable price")
    long: PairLegOut
    short: PairLegOut
    apr_spread: Pct = Field(description=f"short APR - long APR at current rates, {APR}")
    avg_apr_spread: Pct | None = Field(description=f"the same on the period's averages, {APR}")
    carry_per_h: Pct = Field(description="funding earned per hour, percent of notional")
    price_spread: Num | None = Field(description="long ask - short bid per base unit")
    entry_cost: Pct | None = Field(description="price spread / long ask + both taker fees, percent of notional")
    break_even_hours: Num | None = Field(description="entry_cost / carry per hour (null: no carry or no prices)")
    avg_break_even_hours: Num | None
    common_settlement_time: int | None = Field(description="Unix ms of the first settlement both legs share")
    carry_to_common: Pct | None = Field(description="funding net of both legs until then, percent of notional")


class PairsOut(Page):
    period: str
    side: str
    results: list[PairOut]


class SummaryStatOut(BaseModel):
    exchange: str
    instrument_id: str
    current_apr: Pct | None
    avg_apr: Pct | None = Field(description=f"30 days, {APR}")
    averages: AveragesOut
    price: Num | None
    volume: Num | None = Field(default=None, description="24 h traded notional, quote currency")
    open_interest: Num | None = Field(default=None, description="open interest, quote notional (null: not published)")
    interval_h: int | None
    next_funding_time: int | None
    predicted_apr: Pct | None
    cap: Num | None = Field(default=None, description="funding rate cap per interval (null: not published)")
    floor: Num | None = Field(default=None, description="funding rate floor per interval (null: not published)")
    at_cap: bool | None = Field(default=None, description="the current rate sits at the cap or the floor")


class PointOut(BaseModel):
    t: int = Field(description="settlement time, Unix ms")
    v: Pct = Field(description=f"settled rate annualised, {APR}")


class VenueHistoryOut(BaseModel):
    exchange: str
    instrument_id: str
    points: list[PointOut]


class CoinDetailOut(BaseModel):
    symbol: str
    asset: None = Field(description="always null: no CoinGecko data")
    summary_stats: list[SummaryStatOut]
    history: list[VenueHistoryOut] = Field(description="30 days of settlements per instrument")
    pairs: list[PairOut] = Field(description="this symbol's best pairs, live ranking")


class FundingStatsOut(BaseModel):
    total_coins: int = Field(description="symbols with a funding rate")
    total_exchanges: int = Field(description="venues with a funding rate")
    last_update: Num | None = Field(description="receipt of the newest funding update, Unix epoch seconds")
    settlements: int = Field(description="settled rates kept (up to 35 days)")
    oldest_settlement: int | None = Field(description="Unix ms")
    history_loaded: bool = Field(description="the funding-settlements topic has been read to its end")
    funding_alerts: int = Field(description="recent funding-arbitrage alerts kept")


class SettledOut(BaseModel):
    t: int = Field(description="settlement time, Unix ms")
    rate: Num
    interval_h: int
    apr: Pct
    estimated_time: bool


class InstrumentHistoryOut(BaseModel):
    exchange: str
    instrument_id: str
    points: list[SettledOut]


class FundingHistoryOut(BaseModel):
    symbol: str
    days: int
    series: list[InstrumentHistoryOut]
