"""A backtest: replayed events through the worker's unchanged per-tick engine, in event time.

The worker's Faust/Kafka plumbing only delivers a symbol's ticks in order and persists state;
the decisions (episodes, cooldown, alerts, funding arbitrage) are :class:`processors.engine.Engine`.
A backtest hands it the replayed ticks in receipt-time order — one symbol's ticks stay in order
exactly as on its partition live — with the venue health live saw applied at its recorded time,
so a replay of a recorded live period yields the live period's event ids. Episodes whose symbol
goes silent are closed by the worker's sweep rule, run on the event time of the replay (every
``worker_sweep_interval_ms`` of it, and once at the end), so they close exactly as live closes
them (decision 0024) — with the venue health of the sweep's horizon, as the worker's sweep
(``processors/faust_host.py``) passes it, so a funding episode whose venue went unhealthy closes
at the same point. Conflation is off (``conflate_after_ms=0``): the live worker only conflates a
quote already superseded when it is fetched late, i.e. when it is behind, and which quotes that
skips depends on the machine's load; a backtest must be deterministic and evaluate every tick,
so it always runs as a worker that keeps up (README). Nothing here reads a clock: the same
recording and settings give the same result, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from processors.engine import Engine
from processors.health_view import HealthView
from processors.settings import WorkerSettings
from schemas.arbitrage import EpisodeClosed, FundingEpisodeClosed, FundingOpportunity, Opportunity
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
    funding_closed: list[FundingEpisodeClosed] = field(default_factory=list)
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
    grace_ns = settings.worker_sweep_grace_ms * 1_000_000
    every_ns, next_sweep_ns = settings.worker_sweep_interval_ms * 1_000_000, 0
    for event in events:
        if event.receipt_ts_ns >= next_sweep_ns:
            _sweep(engine, event.receipt_ts_ns - grace_ns, health, result)
            next_sweep_ns = event.receipt_ts_ns + every_ns
        if isinstance(event, Health):
            health.apply(event)
            result.health_events += 1
            continue
        if (symbols and event.base not in symbols) or (venues and event.venue not in venues):
            continue
        offset = offsets[event.base] = offsets.get(event.base, -1) + 1
        record = _Record(offset, event.instrument_id.encode(), encode(event), event.receipt_ts_ns // 1_000_000)
        emitted = engine.apply_batch(event.base, [record], health, record.timestamp)
        result.alerts += emitted.alerts
        result.closed += emitted.closed
        result.funding += emitted.funding
        result.funding_closed += emitted.funding_closed
        result.ticks += 1
        result.first_ts_ns = result.first_ts_ns or event.receipt_ts_ns
        result.last_ts_ns = event.receipt_ts_ns
    if result.last_ts_ns is not None:
        _sweep(engine, result.last_ts_ns - grace_ns, health, result)
    result.rejected = engine.counters.rejected
    for slot in engine.slots.values():
        for episode in slot.state.episodes.values():
            if episode.opened and episode.last is not None:
                result.still_open.append(episode.last)
    result.still_open.sort(key=lambda o: o.event_id)
    return result


def _sweep(engine: Engine, horizon_ns: int, health: HealthView, result: BacktestResult) -> None:
    venues = health.at(horizon_ns)
    for base in sorted(engine.slots):
        swept = engine.sweep(base, horizon_ns, venues)
        result.closed += swept.closed
        result.funding_closed += swept.funding_closed
