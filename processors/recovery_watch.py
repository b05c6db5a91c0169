"""Restart a table recovery's read of a changelog partition that stopped delivering (issue 12's CI).

Faust recovers the ``symbols`` table after a rebalance by seeking each active changelog partition
to where its table stands and reading up to the high-water mark it noted; the worker's tick
partitions stay paused until every changelog partition is read. Faust drops already-fetched
records in several places without moving the consumer back (its queue of changelog events is
cleared whenever flow control resumes; ``getmany`` stops mid-fetch when the flow stops or the
generation changes), and a changelog partition has no committed offset to fall back on: its
recovery then waits forever for records the consumer is already past. Seen twice in CI, the survivor
of a SIGKILLed worker logging "No event received for active tp ... since recovery start" until the
test gave up, with nothing to say where the records went.

:class:`RecoveryWatch` looks every second: an active changelog partition with records left to
read that delivered nothing for ``stall_after_s`` (since the recovery started, its last record or
the watch's last seek) is logged with the consumer's view of it and sought back to the recovery's
own offset (Faust's ``seek_wait``, which also resets the read offset). Re-reading is harmless: the
recovery applies only offsets past the last one it applied. Counted (:attr:`RecoveryWatch.reseeks`,
``worker-stats``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from time import monotonic
from typing import Any

from aiokafka.errors import KafkaError
from faust.types import TP

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0


@dataclass(frozen=True)
class Stall:
    """An active changelog partition whose recovery stopped receiving records."""

    tp: TP
    seek_to: int
    """The recovery's own offset for it (the last offset applied, or 0), as Faust's seek uses it."""
    idle_s: float
    remaining: int


def stalled(
    now: float,
    started_at: float,
    offsets: Mapping[TP, int | None],
    highwaters: Mapping[TP, int | None],
    heard_at: Mapping[TP, float],
    stall_after_s: float,
) -> list[Stall]:
    """Partitions with records left (``highwaters[tp] - offsets[tp] > 0``, Faust's own rule) that
    delivered nothing for ``stall_after_s``: since ``heard_at[tp]`` (the last record or seek) or,
    when never heard of, since ``started_at``."""
    found = []
    for tp, highwater in highwaters.items():
        offset = offsets.get(tp)
        if highwater is None or offset is None or highwater - offset <= 0:
            continue
        idle_s = now - max(started_at, heard_at.get(tp, started_at))
        if idle_s >= stall_after_s:
            found.append(Stall(tp, max(offset, 0), idle_s, highwater - offset))
    return found


class RecoveryWatch:
    """Watches ``app``'s table recovery (Faust 0.15.3 ``Recovery`` internals, tested against the
    installed Faust in ``tests/test_recovery_watch.py``)."""

    def __init__(self, app: Any, stall_after_s: float) -> None:
        self.app = app
        self.stall_after_s = stall_after_s
        self.reseeks = 0
        self._sought_at: dict[TP, float] = {}
        self._task: asyncio.Future[None] | None = None

    def ensure_running(self) -> None:
        """Start watching (once; call from the app's loop, e.g. on the first assignment)."""
        if self._task is None:
            self._task = self.app.add_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            try:
                await self.check(monotonic())
            except Exception:  # a watchdog that dies watches nothing; say so and go on
                log.exception("recovery watch: check failed")

    async def check(self, now: float) -> list[Stall]:
        """Seek back every stalled partition of a recovery in progress; returns them."""
        recovery = self.app.tables.recovery
        started_at = recovery._recovery_started_at
        if not recovery.in_recovery or started_at is None:
            self._sought_at.clear()
            return []
        events, sought = recovery._active_events_received_at, self._sought_at
        heard = {tp: max(events.get(tp, started_at), sought.get(tp, started_at)) for tp in {*events, *sought}}
        stalls = stalled(
            now, started_at, recovery.active_offsets, recovery.active_highwaters, heard, self.stall_after_s
        )
        if not stalls:
            return []
        consumer = self.app.consumer
        for stall in stalls:
            log.warning(
                "recovery of %s stalled: nothing for %.1f s, %d records left; %s; seeking back to %d",
                stall.tp,
                stall.idle_s,
                stall.remaining,
                await self._describe(stall.tp),
                stall.seek_to,
            )
        paused = [s.tp for s in stalls if s.tp in consumer._paused_partitions]
        if paused:
            consumer.resume_partitions(paused)
        await consumer.seek_wait({s.tp: s.seek_to for s in stalls})
        for stall in stalls:
            self._sought_at[stall.tp] = now
        self.reseeks += len(stalls)
        return stalls

    async def _describe(self, tp: TP) -> str:
        """What the consumer holds for ``tp``: enough to tell a skipped record from an unfetched one."""
        consumer = self.app.consumer
        try:
            position: int | str = await consumer.position(tp)
        except KafkaError as exc:  # not assigned (any more): the seek below says so too
            position = f"unknown ({exc!r})"
        active = consumer._active_partitions or set()
        return (
            f"position {position}, read offset {consumer._read_offset.get(tp)}, "
            f"assigned {tp in consumer.assignment()}, paused {tp in consumer._paused_partitions}, "
            f"fetching {tp in active}, flow {'active' if consumer.flow_active else 'stopped'}, "
            f"flow control {'active' if self.app.flow_control.is_active() else 'suspended'}, "
            f"changelog events queued {self.app.tables.changelog_queue.qsize()}"
        )
