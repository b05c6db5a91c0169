"""The API's in-memory read model of the processors' output topics (decision 0005).

It holds the latest ``SymbolState`` per symbol (episodes and cooldowns from the
worker's compacted changelog, quotes from its compacted ``prices`` topic: decision
0015), the latest health snapshot per connection, recent alerts, closed episodes
and each worker's counters. It does no I/O: :mod:`api.follower` feeds it decoded records,
the views read it. Each ``apply_*`` returns what changed, so the WebSocket
fan-out can send deltas without diffing the whole model again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from processors.health_view import HealthView
from schemas.arbitrage import Episode, EpisodeClosed, Opportunity, SymbolState, WorkerStats
from schemas.market import Health, Quote

if TYPE_CHECKING:
    from api.history import SpreadHistory


@dataclass
class Changes:
    """What one batch of records changed (deltas for the WebSocket clients)."""

    quotes: list[tuple[str, Quote]] = field(default_factory=list)
    alerts: list[Opportunity] = field(default_factory=list)
    closed: list[EpisodeClosed] = field(default_factory=list)
    health: list[Health] = field(default_factory=list)
    episodes: list[str] = field(default_factory=list)
    """Symbols whose open episodes (the set, or any episode's latest values) changed."""

    def __bool__(self) -> bool:
        return bool(self.quotes or self.alerts or self.closed or self.health or self.episodes)


def open_episodes_of(state: SymbolState | None) -> dict[str, Episode]:
    """The open episodes of a state, by pair key (what GET /api/opportunities lists)."""
    if state is None:
        return {}
    return {key: e for key, e in state.episodes.items() if e.opened and e.last is not None}


class ReadModel:
    def __init__(self, alerts_keep: int = 1_000, episodes_keep: int = 10_000) -> None:
        self.symbols: dict[str, SymbolState] = {}
        self.health = HealthView()
        self.previous_health: dict[str, Health] = {}
        """The snapshot before the latest one, per ``venue|connection``: rates need two points."""
        self.alerts: OrderedDict[str, Opportunity] = OrderedDict()
        self.closed: OrderedDict[str, EpisodeClosed] = OrderedDict()
        self.last_tick_ts_ns: int | None = None
        self.workers: dict[str, WorkerStats] = {}
        """Latest counters per worker id (processed, conflated, ... ticks), from ``worker-stats``."""
        self.version = 0
        """Bumped on every state change; lets periodic pushes skip unchanged models."""
        self.complete = False
        self.ready = asyncio.Event()
        self._alerts_keep = alerts_keep
        self._episodes_keep = episodes_keep
        self.history: SpreadHistory | None = None
        """Spread samples per venue pair (api.history), recorded once the model is complete."""

    def attach_history(self, history: SpreadHistory) -> None:
        self.history = history
        if self.complete:
            self._sample_all()

    def mark_complete(self) -> None:
        self.complete = True
        self._sample_all()
        self.ready.set()

    def _sample_all(self) -> None:
        if self.history is not None:
            for symbol, state in self.symbols.items():
                self.history.record(symbol, state)

    def apply_state(self, symbol: str, state: SymbolState | None, changes: Changes) -> None:
        """A changelog record: the full state of ``symbol`` (None = tombstone, symbol removed)."""
        self.version += 1
        old = self.symbols.pop(symbol, None) if state is None else self.symbols.get(symbol)
        if state is not None and not state.quotes and old is not None:
            state.quotes = old.quotes  # the worker's rows carry no quotes: they come from `prices`
        if open_episodes_of(old) != open_episodes_of(state):
            changes.episodes.append(symbol)
        if self.history is not None and self.complete:
            self.history.record(symbol, state)
        if state is None:
            return
        self.symbols[symbol] = state
        before = old.quotes if old is not None else {}
        for instrument_id, quote in state.quotes.items():
            if before.get(instrument_id) != quote:
                changes.quotes.append((symbol, quote))
        if state.last_tick_ts_ns is not None and (
            self.last_tick_ts_ns is None or state.last_tick_ts_ns > self.last_tick_ts_ns
        ):
            self.last_tick_ts_ns = state.last_tick_ts_ns

    def apply_quotes(self, symbol: str, quotes: list[Quote], changes: Changes) -> None:
        """Latest quotes of ``symbol``'s instruments (``prices`` topic); an older one never replaces a newer one."""
        state = self.symbols.get(symbol)
        if state is None:
            state = self.symbols[symbol] = SymbolState()
        changed = False
        for quote in quotes:
            current = state.quotes.get(quote.instrument_id)
            if current is not None and current.receipt_ts_ns >= quote.receipt_ts_ns:
                continue
            state.quotes[quote.instrument_id] = quote
            changes.quotes.append((symbol, quote))
            changed = True
            if self.last_tick_ts_ns is None or quote.receipt_ts_ns > self.last_tick_ts_ns:
                self.last_tick_ts_ns = quote.receipt_ts_ns
        if changed:
            self.version += 1
            if self.history is not None and self.complete:
                self.history.record(symbol, state)

    def apply_worker_stats(self, stats: WorkerStats) -> None:
        self.workers[stats.worker_id] = stats

    def prune_workers(self, reported_before_ns: int) -> None:
        """Forget workers whose last report is older than this (a replaced worker id must not linger)."""
        for worker_id in [w for w, stats in self.workers.items() if stats.ts_ns < reported_before_ns]:
            del self.workers[worker_id]

    def apply_health(self, health: Health, changes: Changes) -> None:
        self.version += 1
        key = f"{health.venue}|{health.connection}"
        current = self.health.by_connection.get(key)
        if current is not None:
            self.previous_health[key] = current
        self.health.apply(health)
        changes.health.append(health)

    def apply_alert(self, alert: Opportunity, changes: Changes) -> None:
        # At-least-once delivery: the same event id may arrive twice; keep one.
        if alert.event_id in self.alerts:
            return
        self.version += 1
        self.alerts[alert.event_id] = alert
        while len(self.alerts) > self._alerts_keep:
            self.alerts.popitem(last=False)
        changes.alerts.append(alert)

    def apply_closed(self, closed: EpisodeClosed, changes: Changes) -> None:
        if closed.event_id in self.closed:
            return
        self.version += 1
        self.closed[closed.event_id] = closed
        while len(self.closed) > self._episodes_keep:
            self.closed.popitem(last=False)
        changes.closed.append(closed)

    def venue_health(self, venue: str) -> Health | None:
        return self.health.by_venue.get(venue)

    def connections(self, venue: str) -> list[tuple[Health, Health | None]]:
        """(latest, previous) snapshot of each of ``venue``'s connections."""
        prefix = f"{venue}|"
        return [
            (health, self.previous_health.get(key))
            for key, health in sorted(self.health.by_connection.items())
            if key.startswith(prefix)
        ]
