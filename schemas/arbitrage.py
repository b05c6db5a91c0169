"""Arbitrage events (``opportunities``, ``opportunity-episodes``) and the processors' table state.

Spreads are fractions (0.0012 = 0.12 %), Decimal, serialised as strings like
every number in arbstream. Prices here are per ONE base unit (a ``1000PEPE``
quote of 0.0112 appears as 0.0000112), so venues with different contract
multipliers compare directly. Ages and skews are milliseconds.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from schemas.market import ContractKind, Funding, Health, Quote


class Leg(msgspec.Struct, frozen=True, kw_only=True):
    """One side of an opportunity. ``quote`` and ``kind`` are its contract's quote currency and kind
    (the pair's quote group); null only on alerts written before decision 0036."""

    venue: str
    instrument_id: str
    price: Decimal
    """Executable price per base unit: the ask on the buy leg, the bid on the sell leg."""
    size: Decimal
    """Size at that price, base units."""
    fee: Decimal
    """Taker fee fraction assumed for this venue."""
    age_ms: int
    """Age of the quote at detection (detection time - receipt time)."""
    exchange_ts_ns: int
    receipt_ts_ns: int
    quote: str | None = None
    """The leg's quote currency, from its quote (``Quote.quote``). None only on alerts written
    before decision 0036: read it through ``schemas.market.identity`` / ``quote_group``."""
    kind: ContractKind | None = None
    """Linear or inverse (``Quote.kind``); None as ``quote``."""


class Opportunity(msgspec.Struct, frozen=True, kw_only=True, tag="opportunity", tag_field="type"):
    """An alert: an episode opened and the symbol was not inside its cooldown."""

    event_id: str
    """Deterministic: ``<symbol>:<buy venue>-><sell venue>:<episode start ns>``; de-duplicate on it."""
    symbol: str
    buy: Leg
    sell: Leg
    gross_spread: Decimal
    net_spread: Decimal
    size: Decimal
    """Executable size, base units: min(ask size on buy leg, bid size on sell leg)."""
    notional: Decimal
    """size x buy price, in the quote currency."""
    skew_ms: int
    """Difference between the legs' receipt times."""
    episode_start_ts_ns: int
    cooldown_broken: bool = False
    """True when this alert broke the symbol's cooldown by being much better than the last one."""
    exchange_ts_ns: int
    """The newer leg's exchange time."""
    receipt_ts_ns: int
    """The newer leg's receipt time."""
    detected_ts_ns: int
    """Event time of detection: the receipt time of the tick that opened the alert. Using
    event time (not the wall clock) makes replays and backtests reproduce live results."""
    emitted_ts_ns: int | None = None
    """Wall-clock time the worker published the event (tick -> event latency = this - receipt_ts_ns)."""


class EpisodeClosed(msgspec.Struct, frozen=True, kw_only=True, tag="episode_closed", tag_field="type"):
    event_id: str
    symbol: str
    buy_venue: str
    sell_venue: str
    buy_instrument_id: str
    sell_instrument_id: str
    start_ts_ns: int
    end_ts_ns: int
    duration_ms: int
    peak_net_spread: Decimal
    avg_net_spread: Decimal
    ticks: int
    close_reason: str
    alerted: bool
    exchange_ts_ns: int
    receipt_ts_ns: int


class FundingLeg(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    instrument_id: str
    rate: Decimal
    """Funding rate per interval as the venue reports it (fraction)."""
    interval_h: int
    apr: Decimal
    """rate x (24 / interval_h) x 365: comparable across venues with different intervals."""
    next_funding_ts_ns: int | None
    age_ms: int
    exchange_ts_ns: int
    receipt_ts_ns: int
    price: Decimal | None = None
    """Executable price per base unit when the entry cost was priced: the ask on the long leg,
    the bid on the short leg (None: no usable quote, the entry cost counts the fees only)."""
    fee: Decimal | None = None
    """Taker fee assumed for this venue (fraction)."""


class FundingOpportunity(msgspec.Struct, frozen=True, kw_only=True, tag="funding_opportunity", tag_field="type"):
    """Funding-rate arbitrage alert: a funding episode opened (long where funding is low, short
    where it is high, same base and quote group) and the symbol was not inside its funding cooldown.

    ``spread_apr`` is gross; ``net_apr`` subtracts the entry cost amortised over the assumed
    holding time (``ARBSTREAM_FUNDING_HOLD_H``), the figure the episode opens and closes on
    (decision 0025).
    """

    event_id: str
    """``<symbol>:funding:<long venue>/<short venue>:<episode start ns>``; de-duplicate on it."""
    symbol: str
    long: FundingLeg
    short: FundingLeg
    spread_apr: Decimal
    exchange_ts_ns: int
    receipt_ts_ns: int
    detected_ts_ns: int
    emitted_ts_ns: int | None = None
    entry_cost: Decimal | None = None
    """Price spread (long ask - short bid) / long ask + both taker fees, fraction of notional; the
    fees alone when a leg has no usable quote (``priced`` false)."""
    priced: bool = False
    """Both legs had usable quotes: the entry cost includes the price spread."""
    net_apr: Decimal | None = None
    """spread_apr - entry_cost x 8760 / hold hours."""
    episode_start_ts_ns: int | None = None
    cooldown_broken: bool = False
    """The symbol alerted within its cooldown, but this net APR is at least the break ratio times the last."""


class FundingEpisodeClosed(msgspec.Struct, frozen=True, kw_only=True, tag="funding_episode_closed", tag_field="type"):
    """A funding episode ended: its net APR fell under the close threshold or a leg became unusable.
    On ``funding-opportunities`` next to the alerts (same key, the symbol)."""

    event_id: str
    """The episode's id, as its alert's (``<symbol>:funding:<long>/<short>:<start ns>``)."""
    symbol: str
    long_venue: str
    short_venue: str
    long_instrument_id: str
    short_instrument_id: str
    start_ts_ns: int
    end_ts_ns: int
    duration_ms: int
    peak_net_apr: Decimal
    last_net_apr: Decimal
    evaluations: int
    close_reason: str
    alerted: bool
    exchange_ts_ns: int
    receipt_ts_ns: int


class FundingEpisode(msgspec.Struct, kw_only=True):
    """An open funding episode of one (long, short) pair of a symbol (table state)."""

    long_instrument_id: str
    short_instrument_id: str
    start_ts_ns: int
    alerted: bool = False
    evaluations: int = 0
    peak_net_apr: Decimal = Decimal(0)
    last_net_apr: Decimal = Decimal(0)
    last: FundingOpportunity | None = None


class Episode(msgspec.Struct, kw_only=True):
    """State of one (buy, sell) pair of a symbol: pending, open, or absent."""

    buy_instrument_id: str
    sell_instrument_id: str
    start_ts_ns: int
    opened: bool = False
    alerted: bool = False
    ticks: int = 0
    peak_net: Decimal = Decimal(0)
    sum_net: Decimal = Decimal(0)
    last_net: Decimal = Decimal(0)
    last: Opportunity | None = None
    """The latest evaluation while open (what the API shows as a live opportunity)."""


class SymbolState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Everything the worker keeps per canonical symbol.

    In the worker's changelog (compacted, keyed by symbol) ``quotes`` is empty: quotes live in
    memory and are rebuilt from the last seconds of the tick topic after a failover
    (decision 0015); the row is written when an episode or the cooldown changes and every few
    seconds while anything else (funding, episode counters) changed. The API's read model fills
    ``quotes`` from the ``prices`` topic.
    """

    quotes: dict[str, Quote] = {}
    funding: dict[str, Funding] = {}
    episodes: dict[str, Episode] = {}
    """Keyed by ``<buy instrument>|<sell instrument>``."""
    last_alert_ts_ns: int | None = None
    last_alert_net: Decimal | None = None
    last_tick_ts_ns: int | None = None
    funding_episodes: dict[str, FundingEpisode] = {}
    """Open funding episodes keyed by ``<long instrument>|<short instrument>``."""
    funding_last_alert_ts_ns: int | None = None
    """The symbol's last funding alert (its funding cooldown, separate from the price one)."""
    funding_last_alert_net: Decimal | None = None
    applied_offset: int = -1
    """Offset (on the symbol's ``ticks.<BASE>`` partition) of the last tick whose effects this row
    holds. A tick at or below it is already in the state: after a failover it only rebuilds the
    quotes, so re-reading it can neither count an evaluation twice nor alert twice."""


class WorkerStats(msgspec.Struct, frozen=True, kw_only=True, tag="worker_stats", tag_field="type"):
    """A worker's cumulative counters, on ``worker-stats`` keyed by worker id (every second).

    Every tick a worker reads ends in exactly one of: processed, conflated (a newer quote of
    the same instrument in the same fetch superseded it while the worker was behind),
    rebuilt (already in the restored state: quotes only), forwarded (wrong partition) or
    rejected (undecodable or not a finite, sane number).
    """

    worker_id: str
    started_ts_ns: int
    ts_ns: int
    processed: int
    conflated: int
    rebuilt: int
    forwarded: int
    rejected: int
    partitions: int
    """Tick partitions assigned to this worker now."""
    lag_ms: int
    """Wall clock minus the Kafka timestamp of the newest tick the worker handled last."""
    send_failures: int = 0
    """Output records (alerts, rows, prices) the producer could not deliver after its retries."""
    out_of_order: int = 0
    """Quotes older than the one the worker held for their instrument (by exchange time, then
    sequence; or the same quote again): ignored, not processed."""
    skipped_records: int = 0
    """Records (each one symbol's ticks of a few ms) never processed: the worker was more than
    ``worker_skip_behind_ms`` behind on their partition and jumped to its newest record, or they
    were older than that when fetched and a newer record of the same fetch went on instead."""
    recovery_reseeks: int = 0
    """Times a table recovery received nothing from a changelog partition with records left and
    the worker sought it back (``processors.recovery_watch``; each one is also logged)."""


class RejectedTick(msgspec.Struct, frozen=True, kw_only=True, tag="rejected_tick", tag_field="type"):
    """A tick (or an undecodable tick record) the worker rejected, on ``rejected-ticks`` keyed by
    the symbol: nothing rejected is lost, and the reason travels with it."""

    symbol: str
    topic: str
    partition: int
    offset: int
    reason: str
    """Why: ``undecodable: ...``, ``unusable number NaN``, ``base 'ETH' on 'BTC''s topic``, ..."""
    payload: str
    """The rejected tick as JSON, or the whole record's bytes (UTF-8, undecodable bytes escaped)."""
    rejected_ts_ns: int
    """Wall-clock time of the rejection."""


ArbitrageEvent = Opportunity | EpisodeClosed

_encoder = msgspec.json.Encoder(decimal_format="string")
_event_decoder = msgspec.json.Decoder(ArbitrageEvent)
_state_decoder = msgspec.json.Decoder(SymbolState)
_health_map_decoder = msgspec.json.Decoder(dict[str, Health])


def encode(value: object) -> bytes:
    return _encoder.encode(value)


def decode_event(payload: bytes) -> Opportunity | EpisodeClosed:
    event: Opportunity | EpisodeClosed = _event_decoder.decode(payload)
    return event


FundingEvent = FundingOpportunity | FundingEpisodeClosed
_funding_decoder = msgspec.json.Decoder(FundingEvent)


def decode_funding_event(payload: bytes) -> FundingOpportunity | FundingEpisodeClosed:
    event: FundingOpportunity | FundingEpisodeClosed = _funding_decoder.decode(payload)
    return event


_stats_decoder = msgspec.json.Decoder(WorkerStats)


def decode_worker_stats(payload: bytes) -> WorkerStats:
    stats: WorkerStats = _stats_decoder.decode(payload)
    return stats


def decode_state(payload: bytes) -> SymbolState:
    state: SymbolState = _state_decoder.decode(payload)
    return state
