"""When each instrument updates: per-instrument rates and a heap of next-due times.

Real venues do not send every book every tick: a few symbols change hundreds of times a second,
the long tail about once a second. :func:`heavy_tailed_rates` spreads a total rate over the
instruments that way (a floor for everyone, the rest by weight, i.e. by 24 h volume), and
:class:`Schedule` turns rates into due events for any clock, so tests count frames over
simulated time instead of sleeping. Rates and times are floats/ints: they pace frames and never
touch a price.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

NS = 1_000_000_000
FLOOR_PER_S = 1.0
"""Target rate of the least active instrument (the issue's "long tail near 1/s")."""
FLOOR_SHARE_MAX = 0.5
"""The floor never takes more than this share of the total (small totals, big markets)."""
MAX_LAG_NS = NS
"""A pump more than this far behind drops the backlog (counted) rather than bursting it."""


def heavy_tailed_rates(weights: Mapping[str, float], total_per_s: float) -> dict[str, float]:
    """Updates/s per instrument summing to ``total_per_s``: a floor each, the rest by weight."""
    if not weights or total_per_s <= 0:
        return {key: 0.0 for key in weights}
    floor = min(FLOOR_PER_S, FLOOR_SHARE_MAX * total_per_s / len(weights))
    rest = total_per_s - floor * len(weights)
    weight_sum = sum(weights.values()) or 1.0
    return {key: floor + rest * w / weight_sum for key, w in weights.items()}


def uniform_rates(keys: Iterable[str], per_s: float) -> dict[str, float]:
    return dict.fromkeys(keys, per_s)


@dataclass
class Schedule:
    """Next-due times of every instrument; :meth:`due` pops what is due by ``now_ns``.

    An instrument at ``r``/s is due every ``1/r`` s from a random phase, so equal rates do not
    fire in lockstep. With ``every_step`` set, every key is due at every call (the bench floods
    ingest with as many frames as it takes).
    """

    rates: Mapping[str, float]
    start_ns: int
    seed: int = 1
    every_step: bool = False
    emitted: int = 0
    lagged: int = 0
    """Updates dropped because the caller fell more than MAX_LAG_NS behind."""
    _heap: list[tuple[int, int]] = field(default_factory=list, init=False)
    _keys: list[str] = field(default_factory=list, init=False)
    _periods: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        for key, rate in self.rates.items():
            if rate <= 0 and not self.every_step:
                continue
            period = max(1, int(NS / rate)) if rate > 0 else NS
            self._keys.append(key)
            self._periods.append(period)
            self._heap.append((self.start_ns + int(rng.random() * period), len(self._keys) - 1))
        heapq.heapify(self._heap)

    @property
    def total_per_s(self) -> float:
        return sum(NS / p for p in self._periods)

    def due(self, now_ns: int) -> list[str]:
        """Keys due by ``now_ns``, once per elapsed period (a 300/s key appears ~3 times per 10 ms)."""
        if self.every_step:
            self.emitted += len(self._keys)
            return list(self._keys)
        heap, keys, periods = self._heap, self._keys, self._periods
        out: list[str] = []
        oldest = now_ns - MAX_LAG_NS
        while heap and heap[0][0] <= now_ns:
            at, index = heap[0]
            period = periods[index]
            if at < oldest:
                skipped = (oldest - at) // period + 1
                self.lagged += skipped
                at += skipped * period
                if at > now_ns:
                    heapq.heapreplace(heap, (at, index))
                    continue
            out.append(keys[index])
            heapq.heapreplace(heap, (at + period, index))
        self.emitted += len(out)
        return out
