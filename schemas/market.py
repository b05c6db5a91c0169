"""Market-data events published by ingest on ``ticks.<BASE>`` and ``health``.

Numbers: every price, size and rate is a :class:`decimal.Decimal` parsed from
the venue's own text and serialised as a JSON *string* ("64012.5"), so no value
passes through a binary float between the venue and a consumer (decision 0003).

Times: integers in nanoseconds since the Unix epoch. ``exchange_ts_ns`` is the
venue's event time (``exchange_ts_missing`` is true when the venue sent none and
the receipt time was copied in); ``receipt_ts_ns`` is when our socket read the
frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple, Protocol

import msgspec


class ContractKind(StrEnum):
    LINEAR = "linear"
    INVERSE = "inverse"


class InstrumentKey(NamedTuple):
    """What a canonical instrument id says: ``BTC-USDT-PERP@binance``, ``BTC-USD-INV-PERP@bitmex``.

    The id format is defined here and only here (:func:`instrument_id_of` writes it,
    :func:`instrument_key` reads it). Quotes, funding and legs carry their quote currency and
    kind as typed fields (decision 0036): :func:`quote_group` reads those, and parses the id
    only for a record written before they existed (:func:`identity`)."""

    base: str
    quote: str
    kind: ContractKind
    venue: str

    @property
    def quote_group(self) -> str:
        """Which contracts can be compared: USD-inverse with USD, USDT with USDT, USDC with USDC."""
        return group_of(self.quote, self.kind)


def group_of(quote: str, kind: ContractKind, bridges: Mapping[str, str] | None = None) -> str:
    """The quote group of a contract quoted in ``quote`` of kind ``kind``: the quote currency for a
    linear contract (USDT, USDC), ``<quote>-inverse`` for an inverse one (USD-inverse). With
    ``bridges`` (``ArbConfig.quote_bridges``, e.g. {"USDC": "USDT"}) a bridged currency counts as
    the one it is bridged to."""
    if bridges:
        quote = bridges.get(quote, quote)
    return quote if kind is ContractKind.LINEAR else quote + "-inverse"


_KIND_SUFFIX = {ContractKind.LINEAR: "PERP", ContractKind.INVERSE: "INV-PERP"}


def instrument_id_of(base: str, quote: str, kind: ContractKind, venue: str) -> str:
    return f"{base}-{quote}-{_KIND_SUFFIX[kind]}@{venue}"


@lru_cache(maxsize=1 << 16)
def instrument_key(instrument_id: str) -> InstrumentKey:
    """The parts of a canonical id (cached: the worker asks for every pair on every tick).

    Raises ValueError for anything :func:`instrument_id_of` did not write."""
    contract, at, venue = instrument_id.partition("@")
    parts = contract.split("-")
    if not at or not venue or len(parts) not in (3, 4) or parts[-1] != "PERP" or not parts[0] or not parts[1]:
        raise ValueError(f"not a canonical instrument id: {instrument_id!r} (want BASE-QUOTE-PERP@venue)")
    if len(parts) == 4 and parts[2] != "INV":
        raise ValueError(f"not a canonical instrument id: {instrument_id!r} (want BASE-QUOTE-INV-PERP@venue)")
    kind = ContractKind.INVERSE if len(parts) == 4 else ContractKind.LINEAR
    return InstrumentKey(parts[0], parts[1], kind, venue)


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """One perpetual contract on one venue."""

    instrument_id: str
    """Canonical id, unambiguous across venues: ``BTC-USDT-PERP@binance``."""
    venue: str
    native_symbol: str
    """The venue's own symbol, exactly as its API spells it (``XBTUSD``, ``1000PEPEUSDT``)."""
    base: str
    """Canonical base asset (XBT is BTC; ``1000PEPE`` and ``kPEPE`` are PEPE)."""
    quote: str
    settle: str
    kind: ContractKind
    price_multiplier: Decimal = Decimal(1)
    """Base units one quoted price refers to: 1000 for ``1000PEPE`` (price of 1000 PEPE)."""
    contract_size: Decimal = Decimal(1)
    """What one unit of the venue's size field is worth. Linear: base units (so a
    ``1000PEPE`` contract of 1 has 1000 here; OKX BTC-USDT-SWAP 0.01). Inverse:
    quote units (BitMEX XBTUSD 1 USD, Deribit BTC-PERPETUAL amounts are USD: 1)."""
    tick_size: Decimal | None = None
    funding_interval_h: int | None = 8
    volume_24h_quote: Decimal | None = None
    """Traded notional over the last 24 h in quote currency, where the venue's listing (or the
    ticker endpoint fetched with it) publishes it; None when it does not. Ranks ``top:N``."""
    open_interest_quote: Decimal | None = None
    """Open interest as notional in quote currency, from the venue's listing or the one
    whole-venue ticker/open-interest call fetched with it: linear contracts x
    ``contract_size`` x the venue's price (mark where the row has one); inverse contracts are
    quote units already (contracts x ``contract_size``). None when the venue publishes none in
    that response (Binance needs one call per symbol): never guessed. Each venue module says
    which field it reads."""
    funding_cap: Decimal | None = None
    """Highest funding rate per interval the venue allows for this contract, where its listing
    publishes one (Binance fundingInfo, Bybit, OKX, Gate, MEXC); None: not published, never guessed."""
    funding_floor: Decimal | None = None
    """Lowest funding rate per interval (negative), as ``funding_cap``."""

    @property
    def quote_group(self) -> str:
        """Which contracts can be compared (see :func:`group_of`)."""
        return group_of(self.quote, self.kind)

    @property
    def key(self) -> InstrumentKey:
        return InstrumentKey(self.base, self.quote, self.kind, self.venue)


class Quote(msgspec.Struct, frozen=True, kw_only=True, tag="quote", tag_field="type"):
    """Best bid/ask of one instrument.

    ``bid``/``ask``/``last``/``mark`` are in the venue's price unit (the price of
    ``price_multiplier`` base units). Sizes are in base units, already converted
    from contracts/lots, so ``size * price / price_multiplier`` is quote notional.

    ``quote`` and ``kind`` are the instrument's quote currency and contract kind (its quote group:
    ``USDT``, ``USDC``, ``USD-inverse``); null only on records written before decision 0036,
    whose canonical ``instrument_id`` says them.
    """

    instrument_id: str
    venue: str
    native_symbol: str
    base: str
    bid: Decimal | None
    bid_size: Decimal | None
    ask: Decimal | None
    ask_size: Decimal | None
    last: Decimal | None = None
    mark: Decimal | None = None
    price_multiplier: Decimal = Decimal(1)
    exchange_ts_ns: int
    receipt_ts_ns: int
    exchange_ts_missing: bool = False
    sequence: int | None = None
    quote: str | None = None
    """Quote currency of the instrument (USDT, USDC, USD: ``Instrument.quote``), set by ingest from
    the typed instrument. None only on records written before decision 0036: read the identity
    through :func:`identity` / :func:`quote_group`, which handle those."""
    kind: ContractKind | None = None
    """Linear or inverse (``Instrument.kind``); None as ``quote``."""

    @property
    def key(self) -> InstrumentKey:
        """Base, quote, kind and venue of the instrument (its quote group: ``key.quote_group``)."""
        return InstrumentKey(self.base, *identity(self), self.venue)


class Funding(msgspec.Struct, frozen=True, kw_only=True, tag="funding", tag_field="type"):
    """Funding state of one instrument. ``rate`` is per interval, as a fraction (0.0001 = 1 bp).

    ``quote`` and ``kind`` as on :class:`Quote` (null only on records written before decision 0036).
    """

    instrument_id: str
    venue: str
    native_symbol: str
    base: str
    rate: Decimal | None
    interval_h: int | None
    next_funding_ts_ns: int | None = None
    predicted_rate: Decimal | None = None
    mark: Decimal | None = None
    index: Decimal | None = None
    price_multiplier: Decimal = Decimal(1)
    exchange_ts_ns: int
    receipt_ts_ns: int
    exchange_ts_missing: bool = False
    rate_cap: Decimal | None = None
    """The venue's funding-rate cap per interval when its funding stream carries one (OKX
    ``maxFundingRate``); else the instrument's listed ``funding_cap`` applies."""
    rate_floor: Decimal | None = None
    quote: str | None = None
    """Quote currency of the instrument (USDT, USDC, USD: ``Instrument.quote``), set by ingest from
    the typed instrument. None only on records written before decision 0036: read the identity
    through :func:`identity` / :func:`quote_group`, which handle those."""
    kind: ContractKind | None = None
    """Linear or inverse (``Instrument.kind``); None as ``quote``."""

    @property
    def key(self) -> InstrumentKey:
        """Base, quote, kind and venue of the instrument (its quote group: ``key.quote_group``)."""
        return InstrumentKey(self.base, *identity(self), self.venue)


class Identified(Protocol):
    """What carries an instrument's identity: :class:`Quote`, :class:`Funding`, an opportunity's
    ``Leg`` (each with ``quote``/``kind`` fields, None on records written before decision 0036),
    or an :class:`Instrument` (always set)."""

    @property
    def instrument_id(self) -> str: ...

    @property
    def quote(self) -> str | None: ...

    @property
    def kind(self) -> ContractKind | None: ...


def identity(item: Identified) -> tuple[str, ContractKind]:
    """(quote currency, kind) of ``item``, from its typed fields.

    The legacy-record path, and the only one (decision 0036): a quote, funding or leg written
    before those fields existed has none, and only then are they read from its canonical
    instrument id (:func:`instrument_key`, cached). Anything written since carries them."""
    quote, kind = item.quote, item.kind
    if quote is None or kind is None:
        key = instrument_key(item.instrument_id)
        return key.quote, key.kind
    return quote, kind


def quote_group(item: Identified, bridges: Mapping[str, str] | None = None) -> str:
    """The quote group of ``item`` (see :func:`group_of`), bridged currencies applied.

    Called for every pair the worker or the API compares, hence :func:`group_of` inlined: a
    typed record costs two attribute reads; only a legacy one goes through :func:`identity`."""
    quote, kind = item.quote, item.kind
    if quote is None or kind is None:
        quote, kind = identity(item)
    if bridges:
        quote = bridges.get(quote, quote)
    return quote if kind is ContractKind.LINEAR else quote + "-inverse"


class HealthState(StrEnum):
    CONNECTED = "connected"
    SUBSCRIBED = "subscribed"
    STREAMING = "streaming"
    STALE = "stale"
    DISCONNECTED = "disconnected"
    GAP = "gap"
    ERROR = "error"


class Health(msgspec.Struct, frozen=True, kw_only=True, tag="health", tag_field="type"):
    """Connector health event on the ``health`` topic, keyed by venue."""

    venue: str
    connection: str
    """Which of the venue's connections (a venue may need several)."""
    state: HealthState
    reason: str = ""
    reconnects: int = 0
    """Reconnections of this connection since the ingest process started."""
    frames_total: int = 0
    """Frames received on this connection since the process started (all reconnects)."""
    events_total: int = 0
    """Quotes and funding events parsed from those frames."""
    malformed_total: int = 0
    """Frames that could not be parsed (counted, logged, skipped)."""
    resyncs_total: int = 0
    """Per-instrument sequence skips resynced from the next snapshot without reconnecting."""
    last_data_ts_ns: int | None = None
    """Receipt time of the last frame that carried market data."""
    exchange_ts_ns: int
    """For health events this is the emission time: venues do not timestamp connection state."""
    receipt_ts_ns: int


class ListingSource(StrEnum):
    LIVE = "live"
    """Fetched from the venue's REST listing just now."""
    CACHE = "cache"
    """The venue could not be reached: the last successful fetch, from the cache directory."""
    BUNDLED = "bundled"
    """Neither live nor cached: the snapshot shipped in ``ingest/data/instruments``."""


class BackfillStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Progress of a venue's funding-history backfill from its REST endpoint (decision 0023)."""

    state: str
    """pending, running, done, unreachable (connections failed, the rest not tried),
    unsupported (the venue has no public funding-history endpoint) or failed (our side: the broker
    refused the writes, a parser's bug; ``last_error`` says which)."""
    instruments: int
    done: int
    written: int
    """Settlements published to ``funding-settlements``."""
    skipped: int
    """Instruments whose history was already on the topic."""
    errors: int
    """Failed instrument fetches (HTTP error, unreachable, payload not understood)."""
    last_error: str = ""


class ListingStatus(msgspec.Struct, frozen=True, kw_only=True, tag="listing", tag_field="type"):
    """Which instrument listing a venue's connections use, on the ``listings`` topic keyed by venue."""

    venue: str
    source: ListingSource
    listed_ts_ns: int
    """When the listing in use was fetched from the venue (cache/bundled: when that copy was made)."""
    instruments: int
    """Perpetuals in the listing; ``tracked`` of them are in the universe."""
    tracked: int
    error: str = ""
    """Why the live fetch failed, when ``source`` is not live."""
    funding_backfill: BackfillStatus | None = None
    """The venue's funding-history backfill (None: not started or disabled)."""
    exchange_ts_ns: int
    """Emission time (listings carry no venue time)."""
    receipt_ts_ns: int


TickEvent = Quote | Funding
"""One tick; a ``ticks.<BASE>`` record carries several in a :class:`TickBatch`."""

_encoder = msgspec.json.Encoder(decimal_format="string")
_tick_decoder = msgspec.json.Decoder(TickEvent)
_health_decoder = msgspec.json.Decoder(Health)


def encode(event: Quote | Funding | Health | Instrument | ListingStatus) -> bytes:
    return _encoder.encode(event)


def decode_tick(payload: bytes) -> Quote | Funding:
    event: Quote | Funding = _tick_decoder.decode(payload)
    return event


class TickBatch(msgspec.Struct, frozen=True, kw_only=True, tag="batch", tag_field="type"):
    """What a ``ticks.<BASE>`` record carries: several ticks of one symbol, in the order ingest
    received them (the ticks one publisher batch window collected; decision 0019). Keyed by the
    symbol. Readers also accept a bare ``Quote``/``Funding`` record (written before batching):
    :func:`decode_ticks` returns the ticks of either."""

    ticks: list[Quote | Funding]


_ticks_decoder = msgspec.json.Decoder(TickBatch | Quote | Funding)


def encode_ticks(ticks: Sequence[Quote | Funding]) -> bytes:
    """One tick-topic record holding ``ticks`` (all of one symbol, in receipt order)."""
    return _encoder.encode(TickBatch(ticks=list(ticks)))


def decode_ticks(payload: bytes) -> list[Quote | Funding]:
    """The ticks of one ``ticks.<BASE>`` record, in order (see :class:`TickBatch`)."""
    decoded = _ticks_decoder.decode(payload)
    return decoded.ticks if isinstance(decoded, TickBatch) else [decoded]


class SymbolPrices(msgspec.Struct, frozen=True, kw_only=True, tag="prices", tag_field="type"):
    """What a ``prices`` record carries: the worker's latest quote of every instrument of one
    symbol it holds, keyed by the symbol, so the compacted topic keeps each symbol's latest whole
    set (decision 0041). Sent at most once per ``ARBSTREAM_PRICES_INTERVAL_MS`` for a symbol with a
    changed quote. Readers also accept a bare ``Quote`` keyed by its instrument id (one record per
    instrument, written before 0041): :func:`decode_prices` returns the quotes of either."""

    symbol: str
    quotes: list[Quote]


_prices_decoder = msgspec.json.Decoder(SymbolPrices | Quote)


def encode_prices(symbol: str, quotes: Sequence[Quote]) -> bytes:
    """One ``prices`` record: ``symbol``'s latest quote per instrument."""
    return _encoder.encode(SymbolPrices(symbol=symbol, quotes=list(quotes)))


def decode_prices(payload: bytes) -> list[Quote]:
    """The quotes of one ``prices`` record (see :class:`SymbolPrices`)."""
    decoded = _prices_decoder.decode(payload)
    return decoded.quotes if isinstance(decoded, SymbolPrices) else [decoded]


def decode_health(payload: bytes) -> Health:
    event: Health = _health_decoder.decode(payload)
    return event
