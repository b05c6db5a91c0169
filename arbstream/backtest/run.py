"""A backtest: replayed events through the worker's unchanged per-tick engine, in event time.

The worker's Faust/Kafka plumbing only delivers a symbol's ticks in order and persists state;
the decisions (episodes, cooldown, alerts, funding arbitrage) are :class:`processors.engine.Engine`.
A backtest hands it the replayed ticks in receipt-time order — one symbol's ticks stay in order
exactly as on its partition live — with the venue health live saw applied at its recorded time,
so a replay of a recorded live period yields the live period's event ids. Nothing here reads a
clock: the same recording and settings give the same result, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from processors.engine import Engine
from processors.health_view import HealthView
from processors.settings import WorkerSettings
from schemas.arbitrage import EpisodeClosed, FundingOpportunity, Opportunity
from schemas.market import Funding, Health, Quote, encode


@dataclass(frozen=True)
class _Record:
    """What the engine reads of a Kafka record."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


@dataclass
class BacktestResult:
    alerts: list[Opportunity] = field(default_factory=list)
    closed: list[EpisodeClosed] = field(default_factory=list)
    funding: list[FundingOpportunity] = field(default_factory=list)
    still_open: list[Opportunity] = field(default_factory=list)
    """Episodes open when the recording ended (their latest evaluation)."""
    ticks: int = 0
    rejected: int = 0
    health_events: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None


def run_backtest(
    events: Iterable[Quote | Funding | Health],
    settings: WorkerSettings,
    symbols: frozenset[str] = frozenset(),
    venues: frozenset[str] = frozenset(),
) -> BacktestResult:
    """Every alert, closed episode and funding alert the worker would emit for ``events``.

    ``symbols``/``venues`` restrict the ticks considered (empty = all).
    """
    engine = Engine(settings.arb_config(), settings.funding_config(), conflate_after_ms=0)
    health = HealthView()
    result = BacktestResult()
    offsets: dict[str, int] = {}
    for event in events:
        if isinstance(event, Health):
            health.apply(event)
            result.health_events += 1
            continue
        if (symbols and event.base not in symbols) or (venues and event.venue not in venues):
            continue
        offset = offsets[event.base] = offsets.get(event.base, -1) + 1
        record = _Record(offset, event.instrument_id.encode(), encode(event), event.receipt_ts_ns // 1_000_000)
        emitted = engine.apply_batch(event.base, [record], health.by_venue, record.timestamp)
        result.alerts += emitted.alerts
        result.closed += emitted.closed
        result.funding += emitted.funding
        result.ticks += 1
        result.first_ts_ns = result.first_ts_ns or event.receipt_ts_ns
        result.last_ts_ns = event.receipt_ts_ns
    result.rejected = engine.counters.rejected
    for slot in engine.slots.values():
        for episode in slot.state.episodes.values():
            if episode.opened and episode.last is not None:
                result.still_open.append(episode.last)
    result.still_open.sort(key=lambda o: o.event_id)
    return result
