"""Correlated synthetic markets with planted cross-venue dislocations.

All arithmetic is Decimal so the simulator's frames carry exactly the prices a
test expects. One mid per canonical base follows a random walk; each venue's
quote sits within a couple of basis points of it, except while a dislocation
is planted: then one venue's quote for one base is shifted by ``bps``.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from schemas.market import Instrument

START_PRICES = {"BTC": Decimal("86400"), "ETH": Decimal("3200"), "SOL": Decimal("180"), "PEPE": Decimal("0.0000112")}
BPS = Decimal("0.0001")
EIGHT_HOURS_MS = 8 * 3600 * 1000


@dataclass(frozen=True)
class SimQuote:
    """Top of book in the instrument's price unit; sizes in base units."""

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


@dataclass
class Market:
    instruments: list[Instrument]
    seed: int = 7
    auto_dislocation_every_ms: int = 20_000
    auto_dislocation_bps: Decimal = Decimal(80)
    auto_dislocation_ms: int = 6_000
    mids: dict[str, Decimal] = field(default_factory=dict)
    dislocations: list[Dislocation] = field(default_factory=list)
    _rng: random.Random = field(init=False)
    _next_auto_ms: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        for inst in self.instruments:
            self.mids.setdefault(inst.base, START_PRICES.get(inst.base, Decimal(10)))

    def step(self, now_ms: int) -> None:
        """Advance every mid by a small random move; expire and plant dislocations."""
        for base, mid in self.mids.items():
            self.mids[base] = mid * (1 + Decimal(self._rng.randint(-3, 3)) * BPS / 2)
        self.dislocations = [d for d in self.dislocations if d.until_ms > now_ms]
        if self.auto_dislocation_every_ms <= 0:
            return
        if self._next_auto_ms is None:
            self._next_auto_ms = now_ms + self.auto_dislocation_every_ms // 4
        if now_ms >= self._next_auto_ms:
            inst = self._rng.choice(self.instruments)
            sign = 1 if self._rng.random() < 0.5 else -1
            self.plant(inst.base, inst.venue, sign * self.auto_dislocation_bps, self.auto_dislocation_ms, now_ms)
            self._next_auto_ms = now_ms + self.auto_dislocation_every_ms

    def plant(self, base: str, venue: str, bps: Decimal, duration_ms: int, now_ms: int) -> None:
        self.dislocations.append(Dislocation(base.upper(), venue, bps, now_ms + duration_ms))

    def _shift(self, inst: Instrument) -> Decimal:
        return sum((d.bps for d in self.dislocations if d.base == inst.base and d.venue == inst.venue), Decimal(0))

    def quote(self, inst: Instrument, now_ms: int) -> SimQuote:
        venue_bias = Decimal(zlib.crc32(f"{inst.venue}:{inst.base}".encode()) % 5 - 2) * BPS / 2
        mid = self.mids[inst.base] * inst.price_multiplier * (1 + venue_bias + self._shift(inst) * BPS)
        tick = inst.tick_size or _default_tick(mid)
        half_spread = max(mid * BPS / 2, tick)
        bid = ((mid - half_spread) / tick).to_integral_value(ROUND_FLOOR) * tick
        ask = ((mid + half_spread) / tick).to_integral_value(ROUND_CEILING) * tick
        notional = Decimal(self._rng.randint(5_000, 250_000))
        per_base = self.mids[inst.base]
        bid_size = (notional / per_base).quantize(Decimal("0.001"))
        ask_size = (Decimal(self._rng.randint(5_000, 250_000)) / per_base).quantize(Decimal("0.001"))
        return SimQuote(bid.normalize(), ask.normalize(), bid_size, ask_size, now_ms)

    def funding(self, inst: Instrument, now_ms: int) -> SimFunding:
        rate = Decimal(self._rng.randint(-20, 120)) / Decimal(1_000_000)
        mark = (self.mids[inst.base] * inst.price_multiplier).quantize(inst.tick_size or Decimal("0.00000001"))
        interval_ms = (inst.funding_interval_h or 8) * 3600 * 1000
        next_ms = (now_ms // interval_ms + 1) * interval_ms
        return SimFunding(rate, mark, mark, next_ms, now_ms)


def _default_tick(price: Decimal) -> Decimal:
    return Decimal(1).scaleb(price.adjusted() - 5)
