"""A synthetic whole market for the API stage: N symbols x 14 venues in a read model, and a feeder that moves it.

Shaped like the market issue 11 asks for: every venue quotes every symbol (the
upper bound of 450 x 14 instruments), every tenth symbol is 1000-prefixed on a
few venues (price multiplier 1000), BitMEX and Deribit add an inverse contract
for the first symbols (so a venue's shown contract is chosen among two), and
every instrument has a funding record. Prices are integers of ticks times a
per-symbol tick size, so every number is an exact Decimal.

The feeder moves quotes the way the API's follower applies the worker's
``prices`` topic — one quote record decoded from bytes, applied with
``ReadModel.apply_quotes`` (which also samples the spread history) — at a
heavy-tailed rate:
symbol i is picked with weight 1/(i+1), so a few symbols move many times a
second on every venue and the tail moves rarely (and goes stale, as it does live).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal

from api.readmodel import Changes, ReadModel
from schemas.arbitrage import SymbolState
from schemas.market import Funding, Health, HealthState, Quote, decode_tick, encode

VENUES = (
    "binance",
    "bybit",
    "okx",
    "kucoin",
    "deribit",
    "bitmex",
    "gate",
    "mexc",
    "bitget",
    "phemex",
    "coindcx",
    "hyperliquid",
    "paradex",
    "coinex",
)
SCALED_VENUES = ("binance", "bybit", "okx")
"""Where every tenth symbol is listed 1000-prefixed."""
INVERSE_VENUES = ("bitmex", "deribit")
INVERSE_SYMBOLS = 20
FEED_PERIOD_S = 0.01
MAX_BACKLOG_S = 0.05
"""A feeder that falls behind drops what is older than this instead of starving the API's loop."""


def symbol_names(count: int) -> list[str]:
    return ["BTC", "ETH", *(f"T{i:03d}" for i in range(count - 2))][:count]


@dataclass
class _Book:
    """One instrument's moving price, in ticks."""

    instrument_id: str
    venue: str
    base: str
    multiplier: Decimal
    ticks: int
    half_spread: int
    """Ticks between the mid and each side."""


@dataclass
class SyntheticMarket:
    symbols: int = 450
    seed: int = 11
    updates_applied: int = 0
    paused: bool = False
    """The feeder idles (the stage pauses it to measure a request's own CPU cost)."""
    _rng: random.Random = field(init=False)
    _books: dict[str, list[_Book]] = field(init=False, default_factory=dict)
    _tick: dict[str, Decimal] = field(init=False, default_factory=dict)
    _sequence: itertools.count[int] = field(init=False, default_factory=itertools.count)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        for i, base in enumerate(symbol_names(self.symbols)):
            # Mid prices from 1e-5 to 1e5: tick = mid / 100,000, a power of ten.
            self._tick[base] = Decimal(1).scaleb(self._rng.randint(-10, 0))
            mid_ticks = self._rng.randint(100_000, 999_999)
            books = [
                self._book(base, venue, "USDT", i % 10 == 0 and venue in SCALED_VENUES, mid_ticks) for venue in VENUES
            ]
            if i < INVERSE_SYMBOLS:
                books += [self._book(base, venue, "USD-INV", False, mid_ticks) for venue in INVERSE_VENUES]
            self._books[base] = books

    def _book(self, base: str, venue: str, quote: str, scaled: bool, mid_ticks: int) -> _Book:
        # Venues' mids disagree by up to ~0.05 %, their books are ~0.2-1.2 bp wide each side: a
        # few cross-venue pairs cross (positive gross spread), most do not — as in a live market.
        offset = self._rng.randint(-50, 50)
        multiplier = Decimal(1000) if scaled else Decimal(1)
        half = self._rng.randint(20, 60)
        return _Book(f"{base}-{quote}-PERP@{venue}", venue, base, multiplier, mid_ticks + offset, half)

    @property
    def instruments(self) -> int:
        return sum(len(books) for books in self._books.values())

    def _quote(self, book: _Book, now_ns: int) -> Quote:
        scale = self._tick[book.base] * book.multiplier
        return Quote(
            instrument_id=book.instrument_id,
            venue=book.venue,
            native_symbol=book.instrument_id.split("@")[0],
            base=book.base,
            bid=(book.ticks - book.half_spread) * scale,
            bid_size=Decimal(self._rng.randint(1, 500)),
            ask=(book.ticks + book.half_spread) * scale,
            ask_size=Decimal(self._rng.randint(1, 500)),
            mark=book.ticks * scale,
            price_multiplier=book.multiplier,
            exchange_ts_ns=now_ns - 2_000_000,
            receipt_ts_ns=now_ns,
            sequence=next(self._sequence),
        )

    def _funding(self, book: _Book, now_ns: int) -> Funding:
        return Funding(
            instrument_id=book.instrument_id,
            venue=book.venue,
            native_symbol=book.instrument_id.split("@")[0],
            base=book.base,
            rate=Decimal(self._rng.randint(-300, 300)).scaleb(-6),
            interval_h=self._rng.choice((1, 4, 8)),
            exchange_ts_ns=now_ns,
            receipt_ts_ns=now_ns,
        )

    def build(self, now_ns: int) -> ReadModel:
        """A complete read model: every venue streaming, every instrument quoted at ``now_ns``."""
        model, changes = ReadModel(), Changes()
        for venue in VENUES:
            model.apply_health(_streaming(venue, now_ns), changes)
        for base, books in self._books.items():
            state = SymbolState(
                quotes={b.instrument_id: self._quote(b, now_ns) for b in books},
                funding={b.instrument_id: self._funding(b, now_ns) for b in books},
                last_tick_ts_ns=now_ns,
            )
            model.apply_state(base, state, changes)
        model.mark_complete()
        return model

    def move(self, model: ReadModel, base: str, now_ns: int) -> None:
        """One ``prices`` record: one instrument of ``base`` moves."""
        book = self._rng.choice(self._books[base])
        book.ticks += self._rng.randint(-3, 3)
        quote = decode_tick(encode(self._quote(book, now_ns)))
        assert isinstance(quote, Quote)
        model.apply_quotes(base, [quote], Changes())
        self.updates_applied += 1

    async def feed(self, model: ReadModel, updates_per_s: float) -> None:
        """Move the market at ``updates_per_s`` (heavy-tailed over symbols) until cancelled."""
        names = list(self._books)
        weights = list(itertools.accumulate(1 / (i + 1) for i in range(len(names))))
        carry, last = 0.0, time.monotonic()
        while True:
            await asyncio.sleep(FEED_PERIOD_S)
            now = time.monotonic()
            # Time-based: a late wake-up applies the backlog, up to MAX_BACKLOG_S of it (the rest is
            # dropped, so an API that cannot keep up shows a lower applied rate, not a frozen loop).
            carry = min(carry + (now - last) * updates_per_s, max(1.0, updates_per_s * MAX_BACKLOG_S))
            last = now
            due, carry = (0, 0.0) if self.paused else (int(carry), carry - int(carry))
            wall = time.time_ns()
            for base in self._rng.choices(names, cum_weights=weights, k=due):
                self.move(model, base, wall)


def _streaming(venue: str, now_ns: int) -> Health:
    return Health(
        venue=venue,
        connection="main",
        state=HealthState.STREAMING,
        reason="",
        reconnects=0,
        frames_total=1,
        events_total=1,
        last_data_ts_ns=now_ns,
        exchange_ts_ns=now_ns,
        receipt_ts_ns=now_ns,
    )
