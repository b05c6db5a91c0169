"""Per-venue supervision of connection runners, re-planned when the listing changes.

:class:`VenueSupervisor` owns one venue's runners. :meth:`~VenueSupervisor.apply` takes the
venue's tracked instruments, computes a sticky plan (:mod:`ingest.plan`) and replaces only the
runners whose topics or instruments changed: a short reconnect for those, nothing for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ingest.plan import connection_instruments, max_connections, same_inputs, sticky_plan
from ingest.runner import ConnectionRunner
from ingest.venues import venue_class
from ingest.venues.base import Connection
from schemas.market import Instrument

log = logging.getLogger(__name__)

RunnerMaker = Callable[[Connection, Sequence[Instrument]], ConnectionRunner]


@dataclass
class PlanChange:
    """What one :meth:`VenueSupervisor.apply` did, by connection label."""

    kept: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{name} {len(labels)}" for name, labels in vars(self).items() if labels]
        return ", ".join(parts) or "nothing"


class VenueSupervisor:
    def __init__(self, venue: str, ws_base: str, make_runner: RunnerMaker) -> None:
        self.venue = venue
        self.ws_base = ws_base
        self.make_runner = make_runner
        self.instruments: tuple[Instrument, ...] = ()
        self.runners: dict[str, ConnectionRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def plan(self) -> list[Connection]:
        return [runner.plan for runner in self.runners.values()]

    async def apply(self, instruments: Sequence[Instrument]) -> PlanChange:
        """Follow a new set of tracked instruments (raises what the venue module raises on them)."""
        cls = venue_class(self.venue)
        parser = cls(instruments)
        dirty = [
            label
            for label, runner in self.runners.items()
            if not same_inputs(runner.instruments, connection_instruments(parser, runner.plan, instruments))
        ]
        fresh = parser.connections(self.ws_base)
        target = sticky_plan(self.plan(), fresh, cls.max_topics_per_connection, dirty, max_connections(cls))
        change = PlanChange()
        wanted = {conn.label for conn in target}
        for label in [label for label in self.runners if label not in wanted]:
            await self._stop(label)
            change.stopped.append(label)
        for conn in target:
            needed = connection_instruments(parser, conn, instruments)
            old = self.runners.get(conn.label)
            if old is not None and old.plan == conn and same_inputs(old.instruments, needed):
                old.instruments = list(needed)  # same parse inputs; keeps e.g. fresh 24 h volumes
                change.kept.append(conn.label)
                continue
            if old is not None:
                await self._stop(conn.label)  # first: venues cap connections per client
            runner = self.make_runner(conn, needed)
            if old is not None:
                runner.stats = old.stats  # counters continue: they are "since the process started"
            self._start(runner)
            (change.replaced if old is not None else change.started).append(conn.label)
        self.instruments = tuple(instruments)
        return change

    def _start(self, runner: ConnectionRunner) -> None:
        self.runners[runner.plan.label] = runner
        self._tasks[runner.plan.label] = asyncio.create_task(runner.run_forever(), name=runner.plan.label)

    async def _stop(self, label: str) -> None:
        self.runners.pop(label)
        task = self._tasks.pop(label)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop(self) -> None:
        for label in list(self.runners):
            await self._stop(label)
