"""Spread history per (symbol, venue1, venue2) for ``GET /api/spread/{symbol}/{ex1}/{ex2}/history``.

Whenever the read model applies a changelog record (a symbol's new state), every
ordered venue pair of that symbol that ``/api/spread`` would answer for gets a
sample of that endpoint's ``spread`` and ``spread_percentage``, computed by the
same functions (``common_pair`` + ``reference_spread``). Memory is bounded: at
most one sample per pair per ``interval_ms`` (a change inside the interval
overwrites the last sample's values, keeping its time) and at most ``points``
samples per pair (a ring buffer). Sample times are the API's wall clock when
the state was applied, like ``timestamp`` of ``/api/spread``; the model records
nothing while it loads (replayed states would all carry the load time) and
samples every symbol once when loading completes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import NamedTuple

from api.views_arbitrage import common_pair, reference_spread
from schemas.arbitrage import SymbolState


class Sample(NamedTuple):
    ts_ns: int
    spread: Decimal
    spread_percentage: Decimal | None


class SpreadHistory:
    def __init__(
        self,
        bridges: dict[str, str],
        points: int = 2_400,
        interval_ms: int = 250,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.points = points
        self.interval_ms = interval_ms
        self.clock = clock
        self._bridges = bridges
        self._interval_ns = interval_ms * 1_000_000
        self._series: dict[str, dict[tuple[str, str], deque[Sample]]] = {}

    def record(self, symbol: str, state: SymbolState | None) -> None:
        """Sample every venue pair of ``symbol``'s new state (None = tombstone: forget the symbol)."""
        if state is None:
            self._series.pop(symbol, None)
            return
        now = self.clock()
        by_pair = self._series.setdefault(symbol, {})
        venues = sorted({q.venue for q in state.quotes.values()})
        for i, v1 in enumerate(venues):
            for v2 in venues[i + 1 :]:
                pair = common_pair(state, v1, v2, self._bridges)  # symmetric: one lookup for both orders
                if pair is None:
                    continue
                q1, q2 = pair
                for key, (a, b) in (((v1, v2), (q1, q2)), ((v2, v1), (q2, q1))):
                    _, _, diff, percentage = reference_spread(a, b)
                    if diff is not None:
                        self._add(by_pair, key, Sample(now, diff, percentage))

    def _add(self, by_pair: dict[tuple[str, str], deque[Sample]], key: tuple[str, str], sample: Sample) -> None:
        series = by_pair.get(key)
        if series is None:
            series = by_pair[key] = deque(maxlen=self.points)
        if series and sample.ts_ns - series[-1].ts_ns < self._interval_ns:
            series[-1] = sample._replace(ts_ns=series[-1].ts_ns)
        else:
            series.append(sample)

    def since(self, symbol: str, venue1: str, venue2: str, since_ns: int) -> list[Sample]:
        """Samples of (venue1, venue2) taken at or after ``since_ns``, oldest first."""
        series = self._series.get(symbol, {}).get((venue1, venue2))
        if not series:
            return []
        return [s for s in series if s.ts_ns >= since_ns]
