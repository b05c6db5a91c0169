"""The API's in-memory read model of the processors' output topics (decision 0005).

It holds the latest ``SymbolState`` per symbol (episodes and cooldowns from the
worker's compacted changelog, quotes from its compacted ``prices`` topic: decision
0015), the latest health snapshot per connection, recent alerts, closed episodes
and each worker's counters. It does no I/O: :mod:`api.follower` feeds it decoded records,
the views read it. Each ``apply_*`` returns what changed, so the WebSocket
fan-out can send deltas without diffing the whole model again.

**Only the tracked universe is shown.** The ``prices`` topic is compacted and the worker's
changelog keeps every symbol it ever saw, so after ``POST /api/reload-config`` removes a symbol
or a listing refresh delists an instrument, its last quote would be served forever. The model
keeps every state it received (``_states``: a re-added instrument shows its last quote again at
once) and exposes in ``symbols`` only the tracked instruments' quotes, funding and episodes, as
the universe (:mod:`api.universe`) says through :meth:`ReadModel.track`. ``symbols`` is kept up
to date when a record arrives or the universe changes, never computed per request: a symbol
whose instruments are all tracked is shown as the very state received (no copy); only a symbol
with an untracked instrument gets a filtered copy. While ingest has published no universe,
everything is shown.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

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


def _everything(instrument_id: str) -> bool:
    return True


class ReadModel:
    def __init__(self, alerts_keep: int = 1_000, episodes_keep: int = 10_000) -> None:
        self.symbols: dict[str, SymbolState] = {}
        """What the views read: each symbol's state restricted to tracked instruments (see the module doc)."""
        self._states: dict[str, SymbolState] = {}
        """Each symbol's state as received, untracked instruments included."""
        self._tracks: Callable[[str], bool] = _everything
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
        old = self._states.pop(symbol, None) if state is None else self._states.get(symbol)
        if state is not None and not state.quotes and old is not None:
            state.quotes = old.quotes  # the worker's rows carry no quotes: they come from `prices`
        shown_before = self.symbols.get(symbol)
        if state is not None:
            self._states[symbol] = state
        shown = self._show(symbol)
        if open_episodes_of(shown_before) != open_episodes_of(shown):
            changes.episodes.append(symbol)
        if self.history is not None and self.complete:
            self.history.record(symbol, shown)
        if state is None:
            return
        if shown is not None:
            before = shown_before.quotes if shown_before is not None else {}
            for instrument_id, quote in shown.quotes.items():
                if before.get(instrument_id) != quote:
                    changes.quotes.append((symbol, quote))
        if state.last_tick_ts_ns is not None and (
            self.last_tick_ts_ns is None or state.last_tick_ts_ns > self.last_tick_ts_ns
        ):
            self.last_tick_ts_ns = state.last_tick_ts_ns

    def apply_quotes(self, symbol: str, quotes: list[Quote], changes: Changes) -> None:
        """Latest quotes of ``symbol``'s instruments (``prices`` topic); an older one never replaces a newer one."""
        state = self._states.get(symbol)
        if state is None:
            state = self._states[symbol] = SymbolState()
        # Per tick, no rebuild: shown as received, the views see the in-place update; shown as a
        # filtered copy, a tracked quote goes into the copy too and an untracked one changes nothing.
        shown = self.symbols.get(symbol)
        reshow = shown is None
        changed = False
        for quote in quotes:
            current = state.quotes.get(quote.instrument_id)
            if current is not None and current.receipt_ts_ns >= quote.receipt_ts_ns:
                continue
            state.quotes[quote.instrument_id] = quote
            if self._tracks(quote.instrument_id):
                changes.quotes.append((symbol, quote))
                if shown is not None and shown is not state:
                    shown.quotes[quote.instrument_id] = quote
            elif shown is state:
                reshow = True  # kept for a re-add, never shown or pushed
            changed = True
            if self.last_tick_ts_ns is None or quote.receipt_ts_ns > self.last_tick_ts_ns:
                self.last_tick_ts_ns = quote.receipt_ts_ns
        if reshow:
            shown = self._show(symbol)
        if changed:
            self.version += 1
            if self.history is not None and self.complete:
                self.history.record(symbol, shown)

    # -- the tracked universe ------------------------------------------------
    def track(self, tracks: Callable[[str], bool]) -> None:
        """Show only instruments for which ``tracks(instrument_id)`` is true (``Universe.tracks``)."""
        self._tracks = tracks
        self.retrack(None)

    def retrack(self, symbols: Iterable[str] | None) -> None:
        """The universe changed for ``symbols`` (None: maybe for all): re-derive what they show."""
        names = list(self._states) if symbols is None else [s for s in symbols if s in self._states]
        for symbol in names:
            if self._show(symbol) is None and self.history is not None:
                self.history.record(symbol, None)  # forget a removed symbol's spread history too
        self.version += 1

    def _show(self, symbol: str) -> SymbolState | None:
        """Put ``symbol``'s tracked part into ``symbols`` (or remove it) and return it."""
        state = self._states.get(symbol)
        tracks = self._tracks
        if state is None:
            self.symbols.pop(symbol, None)
            return None
        if all(tracks(i) for i in state.quotes) and all(tracks(i) for i in state.funding):
            self.symbols[symbol] = state
            return state
        quotes = {i: q for i, q in state.quotes.items() if tracks(i)}
        funding = {i: f for i, f in state.funding.items() if tracks(i)}
        if not quotes and not funding:  # nothing of it is tracked any more: the symbol is gone
            self.symbols.pop(symbol, None)
            return None

        def pair_tracked(key: str) -> bool:  # episode keys are "<buy or long>|<sell or short>"
            first, _, second = key.partition("|")
            return tracks(first) and tracks(second)

        shown = msgspec.structs.replace(
            state,
            quotes=quotes,
            funding=funding,
            episodes={k: e for k, e in state.episodes.items() if pair_tracked(k)},
            funding_episodes={k: e for k, e in state.funding_episodes.items() if pair_tracked(k)},
        )
        self.symbols[symbol] = shown
        return shown

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
