"""Correlated synthetic markets with planted cross-venue dislocations.

One mid per canonical base follows a mean-reverting random walk; each venue's quote sits within a
basis point of it, except while a dislocation is planted: then one venue's quote for one base is
shifted by ``bps``. The hot path is integer arithmetic: a base's walk is an integer count of half
basis points, an instrument's reference mid an integer count of its ticks, and a quote becomes
Decimal only at the end (``ticks * tick_size``, exact), so the frames carry exactly the prices a
test expects at tens of thousands of quotes per second. The walk moves when one of the base's
instruments is quoted, so busy symbols move more often, as they do.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from schemas.market import ContractKind, Instrument

START_PRICES = {"BTC": Decimal("86400"), "ETH": Decimal("3200"), "SOL": Decimal("180"), "PEPE": Decimal("0.0000112")}
BPS = Decimal("0.0001")
EIGHT_HOURS_MS = 8 * 3600 * 1000
UNIT = 20_000
"""Mids are integers in 1/UNIT of the reference price: one step is half a basis point."""
REVERSION = 512
"""The walk is pulled back by walk/REVERSION per move (keeps prices near their reference)."""
SIZE_POOL = 16
_STEPS = (-2, -2, -2, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2)
"""A walk step per 4 random bits: symmetric, -2..2 half basis points."""


class SimQuote(NamedTuple):
    """Top of book in the instrument's price unit; sizes in base units.

    A NamedTuple (immutable like a frozen dataclass, built several times faster: one per update)."""

    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal
    ts_ms: int


@dataclass(frozen=True)
class SimFunding:
    rate: Decimal
    mark: Decimal
    index: Decimal
    next_funding_ms: int
    ts_ms: int


@dataclass
class Dislocation:
    base: str
    venue: str
    bps: Decimal
    until_ms: int


@dataclass(frozen=True)
class PlantedCarry:
    """A funding dislocation: ``venue``'s instruments of ``base`` fund at exactly ``rate`` per
    interval (no noise) until ``until_ms`` (None: until replaced). With ``first_settlement_ms``
    their next funding time is that instant and then every interval after it, instead of the UTC
    grid, so a demo or a test sees a settlement of the planted rate within seconds."""

    base: str
    venue: str
    rate: Decimal
    until_ms: int | None = None
    first_settlement_ms: int | None = None


@dataclass
class _Book:
    """Per-instrument constants computed once, so quoting is integer math plus two Decimal products."""

    inst: Instrument
    tick: Decimal
    ref_ticks: int
    """Reference mid (price x multiplier) in ticks."""
    bias: int
    """This venue's constant offset from the common mid, in half basis points (-2..2)."""
    half_spread: int
    """Half the spread in UNIT-scaled ticks: half a basis point, at least one tick."""
    sizes: tuple[Decimal, ...]
    funding_level: int
    """Per-interval funding rate around which this instrument's rate moves, in millionths."""


def _default_tick(price: Decimal) -> Decimal:
    """Five significant digits, like venues that quote by significant figures (Hyperliquid)."""
    return Decimal(1).scaleb(price.adjusted() - 4)


@dataclass
class Market:
    instruments: list[Instrument]
    seed: int = 7
    auto_dislocation_every_ms: int = 20_000
    auto_dislocation_bps: Decimal = Decimal(80)
    auto_dislocation_ms: int = 6_000
    reference_prices: dict[str, Decimal] = field(default_factory=dict)
    """Price of one base unit per base; START_PRICES, then 10, where missing."""
    walks: dict[str, int] = field(default_factory=dict)
    dislocations: list[Dislocation] = field(default_factory=list)
    carries: dict[tuple[str, str], PlantedCarry] = field(default_factory=dict)
    """Planted funding dislocations by (base, venue)."""
    _rng: random.Random = field(init=False)
    _books: dict[str, _Book] = field(init=False)
    _shifts: dict[tuple[str, str], int] = field(init=False)
    _next_auto_ms: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._shifts = {}
        for inst in self.instruments:
            self.reference_prices.setdefault(inst.base, START_PRICES.get(inst.base, Decimal(10)))
            self.walks.setdefault(inst.base, 0)
        self._books = {inst.instrument_id: self._book(inst) for inst in self.instruments}

    @property
    def mids(self) -> dict[str, Decimal]:
        """Current mid per base (price of one base unit)."""
        return {b: p * (UNIT + self.walks[b]) / UNIT for b, p in self.reference_prices.items() if b in self.walks}

    def _book(self, inst: Instrument) -> _Book:
        price = self.reference_prices[inst.base] * inst.price_multiplier
        tick = inst.tick_size or _default_tick(price)
        ref_ticks = max(1, int(price / tick))
        bias = zlib.crc32(f"{inst.venue}:{inst.base}".encode()) % 5 - 2
        rng = random.Random(zlib.crc32(inst.instrument_id.encode()))
        sizes = tuple(self._size(inst, rng) for _ in range(SIZE_POOL))
        level = rng.randint(-20, 120) * (inst.funding_interval_h or 8) // 8
        return _Book(inst, tick, ref_ticks, bias, max(ref_ticks, UNIT), sizes, level)

    def _size(self, inst: Instrument, rng: random.Random) -> Decimal:
        """5k-250k USD of the base: whole contracts for linear venues, 0.001 base units for inverse."""
        per_base = self.reference_prices[inst.base]
        base_units = Decimal(rng.randint(5_000, 250_000)) / per_base
        if inst.kind is ContractKind.LINEAR and inst.contract_size > 0:
            return max(1, int(base_units / inst.contract_size)) * inst.contract_size
        return base_units.quantize(Decimal("0.001"))

    def step(self, now_ms: int) -> None:
        """Expire and plant dislocations (mids move as instruments are quoted)."""
        before = len(self.dislocations)
        self.dislocations = [d for d in self.dislocations if d.until_ms > now_ms]
        if len(self.dislocations) != before:
            self._index_shifts()
        if self.auto_dislocation_every_ms <= 0 or not self.instruments:
            return
        if self._next_auto_ms is None:
            self._next_auto_ms = now_ms + self.auto_dislocation_every_ms // 4
        if now_ms >= self._next_auto_ms:
            inst = self._rng.choice(self.instruments)
            sign = 1 if self._rng.random() < 0.5 else -1
            self.plant(inst.base, inst.venue, sign * self.auto_dislocation_bps, self.auto_dislocation_ms, now_ms)
            self._next_auto_ms = now_ms + self.auto_dislocation_every_ms

    def plant(self, base: str, venue: str, bps: Decimal, duration_ms: int, now_ms: int) -> None:
        """Shift ``venue``'s quotes of ``base`` by ``bps`` (rounded to half a basis point) for a while."""
        self.dislocations.append(Dislocation(base.upper(), venue, bps, now_ms + duration_ms))
        self._index_shifts()

    def _index_shifts(self) -> None:
        shifts: dict[tuple[str, str], int] = {}
        for d in self.dislocations:
            shifts[d.base, d.venue] = shifts.get((d.base, d.venue), 0) + int(d.bps * 2)
        self._shifts = shifts

    def quote(self, inst: Instrument, now_ms: int) -> SimQuote:
        book = self._books.get(inst.instrument_id) or self._add(inst)
        bits = self._rng.getrandbits(12)  # one draw: 4 bits per size, 4 bits for the walk's step
        walk = self.walks[inst.base]
        walk += _STEPS[bits >> 8] - int(walk / REVERSION)
        self.walks[inst.base] = walk
        mid = book.ref_ticks * (UNIT + walk + book.bias + self._shifts.get((inst.base, inst.venue), 0))
        bid_ticks = max(1, (mid - book.half_spread) // UNIT)
        ask_ticks = max(bid_ticks + 1, -(-(mid + book.half_spread) // UNIT))
        sizes, tick = book.sizes, book.tick
        bid, ask = Decimal(bid_ticks) * tick, Decimal(ask_ticks) * tick
        return SimQuote(bid, ask, sizes[bits & 15], sizes[bits >> 4 & 15], now_ms)

    def plant_carry(self, carry: PlantedCarry) -> None:
        """Fix ``carry.venue``'s funding rate of ``carry.base`` (replaces an earlier carry there)."""
        self.carries[carry.base.upper(), carry.venue] = carry

    def funding(self, inst: Instrument, now_ms: int) -> SimFunding:
        book = self._books.get(inst.instrument_id) or self._add(inst)
        noise = self._rng.randint(-3, 3)  # drawn even when planted: the other instruments' draws stay the same
        carry = self.carries.get((inst.base, inst.venue))
        if carry is not None and carry.until_ms is not None and carry.until_ms <= now_ms:
            del self.carries[inst.base, inst.venue]
            carry = None
        rate = carry.rate if carry is not None else Decimal(book.funding_level + noise).scaleb(-6)
        mark = Decimal(book.ref_ticks * (UNIT + self.walks[inst.base]) // UNIT) * book.tick
        interval_ms = (inst.funding_interval_h or 8) * 3600 * 1000
        return SimFunding(rate, mark, mark, next_settlement_ms(now_ms, interval_ms, carry), now_ms)

    def settled_rate(self, inst: Instrument, settled_ms: int) -> Decimal:
        """The rate ``inst`` settled at ``settled_ms``: its funding level and a deterministic wobble
        (same market, same history), as ``funding`` quotes it live."""
        book = self._books.get(inst.instrument_id) or self._add(inst)
        wobble = zlib.crc32(f"{self.seed}:{inst.instrument_id}:{settled_ms}".encode()) % 7 - 3
        return Decimal(book.funding_level + wobble).scaleb(-6)

    def _add(self, inst: Instrument) -> _Book:
        """An instrument the market was not built with (tests quote ad-hoc ones)."""
        self.reference_prices.setdefault(inst.base, START_PRICES.get(inst.base, Decimal(10)))
        self.walks.setdefault(inst.base, 0)
        book = self._books[inst.instrument_id] = self._book(inst)
        return book


def next_settlement_ms(now_ms: int, interval_ms: int, carry: PlantedCarry | None = None) -> int:
    """The next funding time after ``now_ms``: the UTC grid of the interval, or a planted carry's
    schedule (its first settlement, then every interval after it)."""
    first = carry.first_settlement_ms if carry is not None else None
    if first is None:
        return (now_ms // interval_ms + 1) * interval_ms
    if now_ms < first:
        return first
    return first + ((now_ms - first) // interval_ms + 1) * interval_ms
