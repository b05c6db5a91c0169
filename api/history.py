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

from api.views_arbitrage import reference_spread
from api.views_prices import group_rank
from schemas.arbitrage import SymbolState
from schemas.market import Quote, quote_group

Price = Decimal | None
Stored = tuple[int, Decimal, Decimal]


class Sample(NamedTuple):
    ts_ns: int
    spread: Decimal
    spread_percentage: Decimal | None


def pair_prices(state: SymbolState, bridges: dict[str, str]) -> dict[tuple[str, str], tuple[Price, Price]]:
    """Reference prices per base unit of every venue pair (v1 < v2) that ``/api/spread`` answers for.

    What ``common_pair`` + ``reference_spread`` give pair by pair (a test compares them), in one
    pass: a symbol's quotes are grouped and priced once, not once per pair (91 pairs at 14 venues
    made each applied quote cost ~0.9 ms).
    """
    by_group: dict[str, dict[str, Quote]] = {}
    for quote in state.quotes.values():
        by_group.setdefault(quote_group(quote, bridges), {}).setdefault(quote.venue, quote)
    ranked = sorted(by_group, key=group_rank)
    prices: dict[int, Price] = {}
    out: dict[tuple[str, str], tuple[Price, Price]] = {}
    venues = sorted({q.venue for q in state.quotes.values()})
    for i, v1 in enumerate(venues):
        for v2 in venues[i + 1 :]:
            group = next((g for g in ranked if v1 in by_group[g] and v2 in by_group[g]), None)
            if group is not None:
                q1, q2 = by_group[group][v1], by_group[group][v2]
                out[(v1, v2)] = (_price(q1, prices), _price(q2, prices))
    return out


def _price(quote: Quote, cache: dict[int, Price]) -> Price:
    key = id(quote)
    if key not in cache:
        cache[key] = reference_spread(quote, quote)[0]
    return cache[key]


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
        self._window_ns = points * self._interval_ns
        self._series: dict[str, dict[tuple[str, str], deque[Stored]]] = {}
        """symbol -> (v1, v2) with v1 < v2 -> (time, v1's price, v2's price): one entry serves both
        directions, and one record's price objects are shared by all the pairs of its venues — at
        whole-market size (~27k ordered pairs) two Decimal samples per direction took ~5 GB."""
        self.samples = 0
        """Samples held (all pairs): the API's largest memory holder, exported on /metrics."""

    def record(self, symbol: str, state: SymbolState | None) -> None:
        """Sample every venue pair of ``symbol``'s new state (None = tombstone: forget the symbol)."""
        if state is None:
            self.samples -= sum(len(series) for series in self._series.pop(symbol, {}).values())
            return
        now = self.clock()
        by_pair = self._series.setdefault(symbol, {})
        for pair, (p1, p2) in pair_prices(state, self._bridges).items():
            if p1 is None or p2 is None:
                continue
            series = by_pair.get(pair)
            if series is None:
                series = by_pair[pair] = deque(maxlen=self.points)
            if series and now - series[-1][0] < self._interval_ns:
                series[-1] = (series[-1][0], p1, p2)  # inside the interval: new values, same time
            else:
                self.samples += len(series) < self.points  # a full ring drops its oldest
                series.append((now, p1, p2))
            # Only the window (points x interval) is kept, by time: a tail symbol's few samples an
            # hour would otherwise fill its ring over hours (the soak's API grew ~6 MiB/min).
            while series[0][0] < now - self._window_ns:
                series.popleft()
                self.samples -= 1

    @property
    def pairs(self) -> int:
        """Venue pairs with a series (each serves both directions)."""
        return sum(len(by_pair) for by_pair in self._series.values())

    def since(self, symbol: str, venue1: str, venue2: str, since_ns: int) -> list[Sample]:
        """Samples of (venue1, venue2) taken at or after ``since_ns``, oldest first: ``spread`` is
        venue2's price minus venue1's, ``spread_percentage`` that over venue1's price."""
        by_pair = self._series.get(symbol, {})
        forward = (venue1, venue2) in by_pair
        series = by_pair.get((venue1, venue2) if forward else (venue2, venue1))
        if not series:
            return []
        out = []
        for ts_ns, a, b in series:
            if ts_ns >= since_ns:
                first, second = (a, b) if forward else (b, a)
                diff = second - first
                out.append(Sample(ts_ns, diff, diff / first * 100 if first else None))
        return out
