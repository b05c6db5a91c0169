"""What every venue module provides, and the helpers they share.

A venue module (``ingest/venues/<name>.py``) holds the venue's constants, its
subscribe/heartbeat messages and *pure* parse functions: frame in, schema
objects out, no I/O. The shared runner (``ingest/runner.py``) owns connect,
subscribe, heartbeat, reconnect and publish. Exchange field names never leave
``ingest/``.
"""

from __future__ import annotations

import itertools
import logging
import math
import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import aiohttp
import msgspec
import orjson

from plumbing.errors import RetryableError
from schemas.market import ContractKind, Funding, Instrument, Quote, instrument_id_of

log = logging.getLogger(__name__)

# Venue JSON is decoded with every number kept as its own text turned into a
# Decimal (never a binary float): 86401.5 arrives as Decimal("86401.5").
_json = msgspec.json.Decoder(float_hook=Decimal)

ALIASES = {"XBT": "BTC"}


class FrameError(ValueError):
    """A frame the venue module cannot understand (malformed, unexpected shape)."""


def load_json(frame: str | bytes) -> Any:
    """Decode a JSON frame exactly (numbers with fractions become Decimals)."""
    try:
        return _json.decode(frame)
    except msgspec.DecodeError as exc:
        raise FrameError(f"not JSON: {exc}") from exc


MAX_EXPONENT = 24
"""No price, size, rate or timestamp a venue sends reaches 10**25 (ns timestamps are ~10**18)."""
MIN_EXPONENT = -30
"""Nor is any non-zero one smaller than 10**-30 (the worker's float pre-filter would divide by 0.0)."""


def dec(value: Any) -> Decimal | None:
    """Exact decimal from a venue value (str, int or Decimal); None for absent/empty."""
    # The common cases first, dispatched on the exact type: ingest calls this several times per
    # tick, and the general checks below cost more than the conversion itself (issue 12).
    kind = type(value)
    if kind is str:
        if not value:
            return None
        try:
            result = Decimal(value)
        except InvalidOperation as exc:
            raise FrameError(f"not a decimal: {value!r}") from exc
    elif kind is Decimal:
        result = value
    elif kind is int:
        result = Decimal(value)
    elif value is None:
        return None
    else:
        result = _other_decimal(value)
    if not result.is_finite():
        raise FrameError(f"not a finite decimal: {value!r}")
    if result and not MIN_EXPONENT <= result.adjusted() <= MAX_EXPONENT:
        # "1E+999999999" is a valid Decimal; arithmetic on it downstream raises or explodes.
        raise FrameError(f"decimal out of any sane range: {value!r}")
    return result


def _other_decimal(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        # A float here means someone decoded JSON lossily upstream: refuse loudly.
        raise FrameError(f"refusing binary float {value!r}; decode with load_json")
    try:
        return value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise FrameError(f"not a decimal: {value!r}") from exc


def gunzip(payload: bytes) -> bytes:
    """One gzip member, whole (venues that compress their frames send one per frame).

    zlib in gzip mode rather than ``gzip.decompress``, whose header parsing is Python: ~1.4 against
    ~3.7 µs per frame, every CoinEx and MEXC frame (issue 12). Same strictness: a truncated
    member, bad data or bytes after the member are a malformed frame."""
    inflater = zlib.decompressobj(wbits=GZIP_WBITS)
    try:
        data = inflater.decompress(payload)
    except zlib.error as exc:
        raise FrameError(f"bad gzip payload: {exc}") from exc
    if not inflater.eof or inflater.unused_data:
        raise FrameError("bad gzip payload: truncated, or bytes after the gzip member")
    return data


GZIP_WBITS = 16 + zlib.MAX_WBITS
"""zlib's ``wbits`` for the gzip container (header and CRC-32/length trailer checked)."""


def ms_to_ns(value: Any) -> int:
    """Milliseconds (int or numeric string) to integer nanoseconds."""
    return int(value) * 1_000_000


def iso_to_ns(value: str) -> int:
    """ISO-8601 UTC (``2026-09-27T13:41:05.530Z``) to integer nanoseconds, exactly."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FrameError(f"bad timestamp {value!r}") from exc
    whole = math.floor(parsed.timestamp())
    return whole * 1_000_000_000 + parsed.microsecond * 1_000


def canonical_base(asset: str) -> tuple[str, Decimal]:
    """Canonical base and price multiplier: ``1000PEPE`` -> (PEPE, 1000), ``kPEPE`` -> (PEPE, 1000)."""
    asset = ALIASES.get(asset, asset)
    for prefix, mult in _MULTIPLIER_PREFIXES:
        rest = asset[len(prefix) :]
        if asset.startswith(prefix) and rest.isalpha() and rest.isupper():
            return ALIASES.get(rest, rest), Decimal(mult)
    return asset, Decimal(1)


# Longest first, so 10000LADYS is not read as 1000 x "0LADYS".
_MULTIPLIER_PREFIXES = (
    ("1000000", 1_000_000),
    ("100000", 100_000),
    ("10000", 10_000),
    ("1000", 1000),
    ("100", 100),
    ("1M", 1_000_000),
    ("k", 1000),
)


def make_instrument(
    venue: str,
    native_symbol: str,
    base_asset: str,
    quote: str,
    settle: str,
    kind: ContractKind,
    contract_size: Decimal = Decimal(1),
    tick_size: Decimal | None = None,
    funding_interval_h: int | None = 8,
    volume_24h_quote: Decimal | None = None,
) -> Instrument:
    base, multiplier = canonical_base(base_asset)
    quote = ALIASES.get(quote, quote)
    return Instrument(
        instrument_id=instrument_id_of(base, quote, kind, venue),
        venue=venue,
        native_symbol=native_symbol,
        base=base,
        quote=quote,
        settle=ALIASES.get(settle, settle),
        kind=kind,
        price_multiplier=multiplier,
        contract_size=contract_size,
        tick_size=tick_size,
        funding_interval_h=funding_interval_h,
        volume_24h_quote=volume_24h_quote,
    )


def contracts_to_base(instrument: Instrument, contracts: Decimal | None, price: Decimal | None) -> Decimal | None:
    """Venue size in contracts/lots/USD to base units.

    Linear: contracts x contract_size (base units per contract, already including
    any 1000x prefix). Inverse: contracts x contract_size quote units / price.
    """
    if contracts is None:
        return None
    if instrument.kind is ContractKind.LINEAR:
        return contracts * instrument.contract_size
    if price is None or price == 0:
        return None
    return contracts * instrument.contract_size / price


def open_interest_notional(instrument: Instrument, contracts: Decimal | None, price: Decimal | None) -> Decimal | None:
    """Open interest in quote currency from a count in the venue's size unit (``Instrument.open_interest_quote``).

    Linear: contracts x contract_size base units x the price of one base unit (``price`` is per
    ``price_multiplier`` base units, as the venue quotes it). Inverse: contracts x contract_size,
    quote units already (no price needed). None when the count, or a linear contract's price, is
    missing: never guessed.
    """
    if contracts is None:
        return None
    if instrument.kind is ContractKind.INVERSE:
        return contracts * instrument.contract_size
    if price is None:
        return None
    return contracts * instrument.contract_size * price / instrument.price_multiplier


def make_quote(
    instrument: Instrument,
    *,
    bid: Decimal | None,
    bid_qty: Decimal | None,
    ask: Decimal | None,
    ask_qty: Decimal | None,
    exchange_ts_ns: int | None,
    receipt_ts_ns: int,
    last: Decimal | None = None,
    mark: Decimal | None = None,
    sequence: int | None = None,
) -> Quote:
    """A Quote from venue-native quantities (``*_qty`` in the venue's size unit)."""
    # The instrument's fields come from its template; only the tick's are set here. Building the
    # Quote with all 17 keyword arguments cost ~1.5 µs more per tick: CPython 3.11 takes a slower
    # call path from 16 keyword arguments on (measured with timeit; issue 12).
    return _replace(
        _quote_template(instrument),
        bid=bid,
        bid_size=contracts_to_base(instrument, bid_qty, bid),
        ask=ask,
        ask_size=contracts_to_base(instrument, ask_qty, ask),
        last=last,
        mark=mark,
        exchange_ts_ns=receipt_ts_ns if exchange_ts_ns is None else exchange_ts_ns,
        receipt_ts_ns=receipt_ts_ns,
        exchange_ts_missing=exchange_ts_ns is None,
        sequence=sequence,
    )


_replace = msgspec.structs.replace
_QUOTE_TEMPLATES: dict[str, tuple[Instrument, Quote]] = {}
"""instrument_id -> (the instrument, a Quote holding its fields). Both are frozen; an instrument
object that is not the one cached (a relisting) gets a new template."""


def _quote_template(instrument: Instrument) -> Quote:
    cached = _QUOTE_TEMPLATES.get(instrument.instrument_id)
    if cached is not None and cached[0] is instrument:
        return cached[1]
    template = Quote(
        instrument_id=instrument.instrument_id,
        venue=instrument.venue,
        native_symbol=instrument.native_symbol,
        base=instrument.base,
        bid=None,
        bid_size=None,
        ask=None,
        ask_size=None,
        price_multiplier=instrument.price_multiplier,
        exchange_ts_ns=0,
        receipt_ts_ns=0,
        quote=instrument.quote,
        kind=instrument.kind,
    )
    _QUOTE_TEMPLATES[instrument.instrument_id] = (instrument, template)
    return template


def make_funding(
    instrument: Instrument,
    *,
    rate: Decimal | None,
    exchange_ts_ns: int | None,
    receipt_ts_ns: int,
    next_funding_ts_ns: int | None = None,
    predicted_rate: Decimal | None = None,
    mark: Decimal | None = None,
    index: Decimal | None = None,
    interval_h: int | None = None,
) -> Funding:
    return Funding(
        instrument_id=instrument.instrument_id,
        venue=instrument.venue,
        native_symbol=instrument.native_symbol,
        base=instrument.base,
        rate=rate,
        interval_h=instrument.funding_interval_h if interval_h is None else interval_h,
        next_funding_ts_ns=next_funding_ts_ns,
        predicted_rate=predicted_rate,
        mark=mark,
        index=index,
        price_multiplier=instrument.price_multiplier,
        exchange_ts_ns=receipt_ts_ns if exchange_ts_ns is None else exchange_ts_ns,
        receipt_ts_ns=receipt_ts_ns,
        exchange_ts_missing=exchange_ts_ns is None,
        quote=instrument.quote,
        kind=instrument.kind,
    )


@dataclass
class Parsed:
    """What one frame produced. Empty for acks, pongs and other control frames."""

    events: list[Quote | Funding] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    """Frames the runner must send back (answers to venue heartbeats)."""
    gap: str | None = None
    """A sequence gap was detected on the whole connection: the runner emits health and reconnects."""
    resyncs: list[str] = field(default_factory=list)
    """Native symbols whose sequence skipped on a channel that re-sends snapshots (Bybit
    ``orderbook.1``, CoinDCX): the venue module withholds their quotes until the next snapshot;
    the runner counts them and keeps the connection (hundreds of other symbols ride on it)."""
    error: str | None = None
    """The venue reported an error (e.g. unknown symbol); counted and reported on ``health``."""
    subscribed: bool = False
    """This frame acknowledged a subscription."""


@dataclass(frozen=True)
class Connection:
    """One WebSocket the runner opens: where, and which venue topics ride on it."""

    label: str
    url: str
    topics: tuple[str, ...]


class Venue(ABC):
    """Base of every venue adapter. Subclasses set the constants and implement the pure parts."""

    name: ClassVar[str]
    ws_base: ClassVar[str]
    """Live WebSocket base URL (scheme + host [+ fixed path]); the simulator replaces it."""
    rest_base: ClassVar[str]
    """Live REST base URL for instrument listings."""
    max_topics_per_connection: ClassVar[int] = 200
    topics_per_subscribe: ClassVar[int] = 10
    subscribe_interval_s: ClassVar[float] = 0.2
    """Pause between subscribe frames, to stay inside the venue's message-rate limit."""
    ping_interval_s: ClassVar[float | None] = 20.0
    stale_after_s: ClassVar[float] = 30.0
    transport: ClassVar[str] = "websocket"
    """"websocket" (frames as sent) or "socketio" (events as ``["event", data]`` JSON text)."""
    subscribe_after_first_frame: ClassVar[bool] = False
    """Wait for the server's first frame (a welcome message) before subscribing."""
    ws_headers: ClassVar[dict[str, str]] = {}
    """Extra HTTP headers for the WebSocket handshake (e.g. Gate's X-Gate-Size-Decimal)."""

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        self.by_native: dict[str, Instrument] = {i.native_symbol: i for i in instruments if i.venue == self.name}
        self._request_ids = itertools.count(1)

    def next_request_id(self) -> int:
        """1, 2, 3... per connection: ids that match a venue's replies to our requests."""
        return next(self._request_ids)

    # -- connection plan -------------------------------------------------
    @abstractmethod
    def topics(self, instrument: Instrument) -> list[str]:
        """Venue channel names for one instrument (top of book with sizes + funding/mark)."""

    def connections(self, ws_base: str) -> list[Connection]:
        """Split all topics over as many connections as the per-connection cap needs."""
        topics = [t for inst in self.by_native.values() for t in self.topics(inst)]
        cap = self.max_topics_per_connection
        return [
            Connection(f"{self.name}-{n}", self.ws_url(ws_base, "default"), tuple(topics[i : i + cap]))
            for n, i in enumerate(range(0, len(topics), cap))
        ]

    async def resolve_url(self, connection: Connection, rest_base: str, http: aiohttp.ClientSession) -> str:
        """Final URL to dial; venues that need a token first (KuCoin's bullet) fetch it here."""
        return connection.url

    def ws_url(self, ws_base: str, kind: str) -> str:
        """Full URL for a connection kind; override when a venue routes channels by path."""
        return ws_base

    @abstractmethod
    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        """Frames that subscribe ``topics`` (already batched per the venue's limits)."""

    def on_connect(self) -> list[str]:
        """Frames to send right after connecting, before subscribing (e.g. enable heartbeats)."""
        return []

    def ping_message(self) -> str | None:
        """Application-level ping the client must send every ``ping_interval_s`` (None: none)."""
        return None

    def reset(self) -> None:
        """Forget per-connection state (books, sequences) after a reconnect."""
        return None

    # -- parsing ----------------------------------------------------------
    @abstractmethod
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        """Turn one raw frame into events. Pure: no I/O. Raises FrameError on malformed input."""

    # -- instruments ------------------------------------------------------
    instrument_paths: ClassVar[tuple[str, ...]] = ()
    """REST paths+queries (under ``rest_base``) of the venue's instrument listings (GET)."""
    optional_instrument_paths: ClassVar[frozenset[str]] = frozenset()
    """Those of ``instrument_paths`` the listing can do without (24 h volumes): a failed GET is
    logged and the path left out, which ``parse_instruments`` must tolerate."""

    @classmethod
    async def fetch_listing(cls, http: aiohttp.ClientSession, rest_base: str) -> bytes:
        """The listing file's bytes: each response verbatim, keyed by its path (no re-encoding).

        Override for venues whose listing is not a plain GET (Hyperliquid's POST /info).
        """
        parts = []
        for path in cls.instrument_paths:
            try:
                async with http.get(rest_base + path, timeout=aiohttp.ClientTimeout(total=30)) as response:
                    if response.status != 200:
                        raise RetryableError(f"GET {rest_base}{path}: HTTP {response.status}")
                    parts.append(orjson.dumps(path) + b":" + await response.read())
            except (RetryableError, aiohttp.ClientError, TimeoutError) as exc:
                if path not in cls.optional_instrument_paths:
                    raise
                log.warning("%s listing: optional %s left out (%s)", cls.name, path, exc)
        return b"{" + b",".join(parts) + b"}"

    @classmethod
    @abstractmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        """Perpetual instruments from the venue's REST listings.

        ``listing`` maps each of ``instrument_paths`` to its decoded response
        (``load_json``); the bundled snapshot file has exactly that shape.
        """

    @classmethod
    def untracked_reason(cls, native_symbol: str) -> str | None:
        """Why a symbol this venue lists (or listed) is a contract family arbstream does not track
        (quanto, a retired settlement model), or None. A symbols file naming one is skipped with a
        warning instead of failing as an unknown symbol would."""
        return None

    def instrument(self, native_symbol: object) -> Instrument | None:
        """The tracked instrument of a symbol read from a frame; None for a symbol not tracked. A
        symbol that is not a string (a list or object in a malformed frame) is a :class:`FrameError`."""
        if not isinstance(native_symbol, str):
            raise FrameError(f"symbol {native_symbol!r} is not a string")
        return self.by_native.get(native_symbol)
