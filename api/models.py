"""Response models: what /docs (OpenAPI) shows for every endpoint.

Numbers that are Decimal in arbstream are JSON *numbers* carrying the Decimal's
own digits (``api/wire.py``, decision 0020; Kafka topics keep strings, 0003); the
seed's field names, types and units are kept (decision 0005, issue 14). Prices are
per ONE base unit: a venue quoting the price of 1000 PEPE is divided by 1000.
Percentages (``Pct``) are in percent (0.12 = 0.12 %); ``*_spread`` fractions
(0.0012) come straight from the processors' events. Times: ``timestamp`` fields of
rows are Unix milliseconds, ``*_ts_ns`` fields nanoseconds, top-level
``timestamp`` is the ISO 8601 UTC time the response was built, except where the
seed used epoch seconds (``last_update``, ``last_alert_time``) or ms (/api/spread).

Responses are encoded by ``api.wire.wire`` (pydantic cannot write a Decimal as a
JSON number): never ``model_dump_json()`` a model that holds a ``Num``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.wire import Num, Pct

PER_BASE = "per ONE base unit (the venue's price divided by its price_multiplier)"
NOW = Field(description="ISO 8601 UTC time this response was built")


class ErrorOut(BaseModel):
    error: str = Field(description="what went wrong (the seed's error field)")
    detail: str = Field(description="the same text (FastAPI's field)")


class PriceEntry(BaseModel):
    venue: str
    instrument_id: str = Field(description="canonical id, e.g. BTC-USDT-PERP@binance")
    native_symbol: str
    quote_group: str = Field(description="contracts comparable with each other: USDT, USDC, USD, USD-inverse")
    price: Num | None = Field(description=f"reference price {PER_BASE}; see price_source")
    price_source: Literal["mid", "last", "mark", "none"] = Field(
        description="mid of bid/ask when both exist, else the last trade, else the mark price"
    )
    bid: Num | None = Field(description=f"best bid {PER_BASE}")
    ask: Num | None = Field(description=f"best ask {PER_BASE}")
    bid_size: Num | None = Field(description="size at the best bid, base units")
    ask_size: Num | None = Field(description="size at the best ask, base units")
    last: Num | None = Field(description=f"last trade price {PER_BASE}")
    mark: Num | None = Field(description=f"mark price {PER_BASE}")
    price_multiplier: Num = Field(description="base units one venue price refers to (1000 for 1000PEPE)")
    funding_rate: Num | None = Field(description="latest funding rate per interval, fraction")
    crossed: bool = Field(description="bid >= ask inside this venue: a data error, never used for arbitrage")
    timestamp: int = Field(description="venue's event time of the quote, Unix ms")
    exchange_ts_missing: bool = Field(description="the venue sent no event time; timestamp is the receipt time")
    receipt_timestamp: int = Field(description="when ingest received the quote, Unix ms")
    age_ms: int = Field(description="now - receipt time")


class PricesOut(BaseModel):
    prices: dict[str, dict[str, PriceEntry]] = Field(
        description="symbol -> venue -> quote. One entry per venue: its USDT contract when it has one, "
        "else USDC, USD, USD-inverse; GET /api/prices/{symbol} lists every instrument"
    )
    timestamp: str = NOW
    total: int = Field(default=0, description="symbols matching `symbols`/`venues`, before paging")
    offset: int = Field(default=0, description="symbols skipped (sorted by name) before this page")
    limit: int | None = Field(default=None, description="page size asked for; null = every symbol (unpaged)")


class SymbolPricesOut(BaseModel):
    symbol: str
    prices: dict[str, PriceEntry] = Field(description="venue -> quote (one per venue, as in /api/prices)")
    instruments: list[PriceEntry] = Field(description="every instrument of the symbol, all quote groups")
    timestamp: str = NOW


class BestQuote(BaseModel):
    price: Num = Field(description=PER_BASE)
    size: Num | None = Field(description="base units")
    exchange: str = Field(description="the seed's name for venue")
    venue: str
    instrument_id: str
    timestamp: int = Field(description="venue's event time, Unix ms")
    age_ms: int


class BestGroup(BaseModel):
    quote_group: str
    best_bid: BestQuote | None = Field(description="highest usable bid (fresh, healthy venue, book not crossed)")
    best_ask: BestQuote | None = Field(description="lowest usable ask")
    spread: Num | None = Field(
        description="best_ask - best_bid; negative when buying on one venue and selling on another pays"
    )
    spread_percentage: Pct | None = Field(description="spread / best_ask x 100")


class BestPricesOut(BestGroup):
    symbol: str
    by_quote_group: dict[str, BestGroup] = Field(description="the same for every quote group of the symbol")
    timestamp: str = NOW


class SummaryOut(BaseModel):
    total_symbols: int
    total_exchanges: int
    symbols: list[str]
    exchanges: list[str]
    price_count: int = Field(description="instruments with a quote")
    open_opportunities: int = Field(description="open arbitrage episodes")
    last_update: Num | None = Field(
        description="receipt time of the last tick (not of this request), Unix epoch SECONDS (ms precision), "
        "as the seed's number; null before the first tick"
    )
    last_update_ms: int | None = Field(description="the same, Unix ms")
    last_update_iso: str | None = Field(description="the same, ISO 8601")
    timestamp: str = NOW


class ArbitrageRow(BaseModel):
    symbol: str
    buy_exchange: str
    sell_exchange: str
    buy_price: Num = Field(description=f"ask on the buy venue, {PER_BASE}")
    sell_price: Num = Field(description=f"bid on the sell venue, {PER_BASE}")
    spread: Num = Field(description="sell_price - buy_price")
    spread_percentage: Pct = Field(description="gross spread, (sell_price - buy_price) / buy_price x 100")
    net_spread_percentage: Pct = Field(description="spread_percentage minus both venues' taker fees, x 100")
    potential_profit: Pct = Field(
        description="the seed's profit figure, in PERCENT: net of both taker fees, on executable prices "
        "(= net_spread_percentage)"
    )
    net_profit: Num = Field(description="net profit in the quote currency when trading `size` at these prices")
    profitable: bool = Field(description="net spread > 0 and both legs usable (fresh, healthy venue, sane book)")
    timestamp: int = Field(description="the newer leg's venue event time, Unix ms")
    exchanges: list[str] = Field(description="[buy_exchange, sell_exchange] (the seed's pair)")
    higher: str = Field(description="venue of the higher of buy_price and sell_price (sell_exchange when spread >= 0)")
    lower: str = Field(description="venue of the lower of the two")
    higher_price: Num = Field(description="max(buy_price, sell_price)")
    lower_price: Num = Field(description="min(buy_price, sell_price)")
    size: Num = Field(description="executable size, base units: min(ask size buy venue, bid size sell venue)")
    notional: Num = Field(description="size x buy_price, quote currency")
    buy_age_ms: int
    sell_age_ms: int
    skew_ms: int = Field(description="difference between the legs' receipt times")
    buy_instrument_id: str
    sell_instrument_id: str
    quote_group: str
    buy_fee: Num = Field(description="taker fee fraction assumed on the buy venue")
    sell_fee: Num = Field(description="taker fee fraction assumed on the sell venue")
    problem: str | None = Field(description="why a leg is not usable right now (stale quote, venue stale, ...)")
    episode_id: str | None = Field(description="event_id of the open episode of this pair, if one is open")


class ArbitrageOut(BaseModel):
    opportunities: list[ArbitrageRow] = Field(description="best net spread first")
    min_spread: Pct | None = Field(description="the floor applied to spread_percentage (null: all=true)")
    timestamp: str = NOW


class ArbitrageSymbolOut(ArbitrageOut):
    symbol: str = Field(description="canonical symbol (the seed's top-level field)")


class SymbolSpreadRow(BaseModel):
    symbol: str
    quote_group: str | None = Field(description="group compared (the one with most usable venues unless asked)")
    usable_venues: int = Field(description="venues of that group with a usable quote (fresh, healthy, uncrossed)")
    buy_exchange: str | None = Field(description="venue of the best (lowest) usable ask")
    sell_exchange: str | None = Field(description="venue of the best (highest) usable bid, another venue")
    buy_price: Num | None = Field(description=f"best ask, {PER_BASE}")
    sell_price: Num | None = Field(description=f"best bid, {PER_BASE}")
    spread: Num | None = Field(description="sell_price - buy_price; positive = bid above ask across venues")
    spread_percentage: Pct | None = Field(description="spread / buy_price x 100 (gross)")
    net_spread_percentage: Pct | None = Field(description="spread_percentage minus both venues' taker fees, x 100")
    size: Num | None = Field(description="min(ask size, bid size), base units")
    notional: Num | None = Field(description="size x buy_price, quote currency")
    buy_fee: Num | None
    sell_fee: Num | None
    buy_instrument_id: str | None
    sell_instrument_id: str | None


class SpreadsOut(BaseModel):
    spreads: list[SymbolSpreadRow] = Field(description="best net spread first; symbols without a pair last")
    total: int = Field(description="rows matching the filters, before paging")
    offset: int
    limit: int | None
    timestamp: str = NOW


class SpreadOut(BaseModel):
    symbol: str
    exchanges: list[str] = Field(description="[exchange1, exchange2] (the seed's field)")
    spread: Num | None = Field(description="higher_price - lower_price (>= 0), reference prices, as the seed")
    spread_percentage: Pct | None = Field(description="spread / lower_price x 100, as the seed")
    higher: str | None = Field(description="venue with the higher reference price")
    lower: str | None = Field(description="venue with the lower reference price")
    higher_price: Num | None
    lower_price: Num | None
    exchange1: str
    exchange2: str
    quote_group: str = Field(description="the quote group both venues' compared contracts belong to")
    instrument1: str
    instrument2: str
    price1: Num | None = Field(description=f"reference price on exchange1, {PER_BASE}")
    price2: Num | None = Field(description=f"reference price on exchange2, {PER_BASE}")
    price_difference: Num | None = Field(description="price2 - price1 (signed; what /history records)")
    price_difference_percentage: Pct | None = Field(description="price_difference / price1 x 100")
    buy_1_sell_2: ArbitrageRow | None = Field(description="executable: buy on exchange1, sell on exchange2")
    buy_2_sell_1: ArbitrageRow | None = Field(description="executable: buy on exchange2, sell on exchange1")
    timestamp: int = Field(description="time of this response, Unix ms (the seed's unit here)")
    timestamp_iso: str = NOW


class SpreadPointOut(BaseModel):
    ts_ns: int = Field(description="when the API applied the state change that produced this sample (its clock), ns")
    spread: Num = Field(description="price2 - price1 (signed), as `price_difference` of /api/spread at that time")
    spread_percentage: Pct | None = Field(description="spread / price1 x 100, as `price_difference_percentage`")


class SpreadHistoryOut(BaseModel):
    symbol: str
    exchange1: str
    exchange2: str
    seconds: int = Field(description="the window asked for: samples of the last `seconds` seconds")
    interval_ms: int = Field(description="at most one sample per this interval (the latest change inside it wins)")
    points: list[SpreadPointOut] = Field(description="oldest first; empty until a state change was sampled")
    timestamp: str = NOW


class AlertStatusOut(BaseModel):
    symbol: str
    can_send_alert: bool
    last_alert_time: Num | None = Field(description="event time of the last alert, Unix epoch SECONDS; null: none")
    seconds_since_last_alert: Num | None = Field(description="now - last_alert_time, seconds; null: no alert yet")
    last_alert_time_iso: str | None = Field(description="the same time, ISO 8601")
    last_alert_timestamp_ms: int | None
    last_alert_net_spread: Num | None = Field(description="net spread fraction of the last alert")
    seconds_until_next_alert: float
    cooldown_seconds: int = Field(description="ARBSTREAM_COOLDOWN_S, the worker's setting")
    cooldown_break_ratio: Num = Field(description="a new alert this many times better breaks the cooldown")
    timestamp: str = NOW


class ReloadOut(BaseModel):
    status: Literal["success"]
    message: str
    exchanges: list[str] = Field(description="venues of the configured universe (the seed's field)")
    total_symbols: int
    ingest_notified: bool = Field(description="the reload request reached ingest's control topic")
    symbols: list[str]
    venues: list[str]
    instruments: int
    added: list[str] = Field(description="instrument ids added by this reload")
    removed: list[str] = Field(description="instrument ids removed by this reload")
    timestamp: str = NOW


class LegOut(BaseModel):
    venue: str
    instrument_id: str
    price: Num = Field(description=f"executable price {PER_BASE}: the ask on the buy leg, the bid on the sell leg")
    size: Num
    fee: Num
    age_ms: int
    exchange_ts_ns: int
    receipt_ts_ns: int
    quote: str | None = Field(
        default=None, description="the contract's quote currency (USDT, USDC, USD); null on alerts before decision 0036"
    )
    kind: Literal["linear", "inverse"] | None = Field(default=None, description="the contract's kind; null as quote")


class OpportunityOut(BaseModel):
    """An alert from the ``opportunities`` topic, or the latest evaluation of an open episode."""

    type: Literal["opportunity"] = "opportunity"
    event_id: str
    symbol: str
    buy: LegOut
    sell: LegOut
    gross_spread: Num = Field(description="fraction")
    net_spread: Num = Field(description="fraction, after both taker fees")
    size: Num
    notional: Num
    skew_ms: int
    episode_start_ts_ns: int
    cooldown_broken: bool
    exchange_ts_ns: int
    receipt_ts_ns: int
    detected_ts_ns: int
    emitted_ts_ns: int | None


class EpisodeClosedOut(BaseModel):
    type: Literal["episode_closed"] = "episode_closed"
    event_id: str
    symbol: str
    buy_venue: str
    sell_venue: str
    buy_instrument_id: str
    sell_instrument_id: str
    start_ts_ns: int
    end_ts_ns: int
    duration_ms: int
    peak_net_spread: Num
    avg_net_spread: Num
    ticks: int
    close_reason: str
    alerted: bool
    exchange_ts_ns: int
    receipt_ts_ns: int


class OpenEpisodeOut(BaseModel):
    event_id: str
    symbol: str
    buy_venue: str
    sell_venue: str
    buy_instrument_id: str
    sell_instrument_id: str
    start_ts_ns: int
    alive_ms: int = Field(description="now - episode start")
    ticks: int
    peak_net_spread: Num
    avg_net_spread: Num
    last_net_spread: Num
    alerted: bool = Field(description="false when the symbol's cooldown suppressed the alert")
    last: OpportunityOut = Field(description="latest evaluation of the pair")


class OpportunitiesOut(BaseModel):
    opportunities: list[OpenEpisodeOut] = Field(description="open episodes, best last net spread first")
    recent_alerts: list[OpportunityOut] = Field(description="latest alerts first")
    timestamp: str = NOW


class EpisodesOut(BaseModel):
    episodes: list[EpisodeClosedOut] = Field(description="closed episodes, latest end first")
    total: int = Field(description="closed episodes matching the filters")
    limit: int
    offset: int
    timestamp: str = NOW
