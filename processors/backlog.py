"""Overload drops resolution, never freshness: a tick partition far behind jumps over its backlog.

On the whole market a tail symbol's record holds one or two ticks, so when the worker falls behind
the backlog builds in Kafka one tick per record and conflation (newest quote per instrument within
a fetch) finds little to drop: every record still costs Faust's per-record path, and tick →
opportunity latency grows without bound (issue 12). With ``worker_skip_behind_ms`` (500 by
default; 0: off, for an exact replay through a live worker), a partition whose newest processed
record is older than that seeks to its newest record: everything between is never processed, and
counted (``skipped_records`` on ``worker-stats``, ``/health``, ``/metrics``). The recorder still
has every raw frame, and a replay can process them all.

Where the newest record is: the partition's end offset asked from the broker when the jump is
decided (one ListOffsets request for every partition jumping). The consumer's own high-water mark
is no use here: it is only refreshed when the partition is fetched, and a partition that is behind
is not fetched while the consumer still buffers records of it, so it can be seconds old (measured:
with the cached mark a worker at 25 % CPU offered 3× its rate still handed records over 1–3.6 s
old). The jump runs beside the agent, not in its way: its two round trips (end offsets, then the
seek on the consumer's thread) took most of a throttled worker's time per batch when awaited there.

What the consumer already fetched is sorted before Faust makes a message of it
(:meth:`BacklogSkipper.admit`, called by :mod:`processors.faust_batches` per partition and fetch):
records below a pending jump's target are left out (counted when the jump lands), and of records
older than the threshold only the newest of the fetch goes on, the others counted as skipped
(the newest quote wins; a partition always delivers something, so a worker whose fetches arrive
late still processes its newest records instead of starving). Measured on the whole market, worker
at 25 % CPU offered 3× its rate: the agent took fetches whose newest record was ~850 ms old and
processed every record of them before deciding to jump; sorted first (and the jump beside the
agent), p50 about halved and p99 down by a third to a half (decision 0034).

How Faust learns of the jump: the seek goes to the driver (its consumer thread's ``seek``, private in
faust-streaming 0.15.3) and leaves Faust's read offset alone, so the records Faust had already
taken are still delivered, and the first record after the jump arrives with a gap in offsets,
which :mod:`processors.faust_batches` records as Faust does for compacted topics; its commits then
go past the jump. ``tests/test_worker_backlog.py`` checks this against the real consumer (every
tick processed or counted as skipped, the committed offset at the end of the partition), so a
Faust upgrade that changes it fails there.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from aiokafka.errors import IllegalStateError, KafkaError
from faust.types import TP

log = logging.getLogger(__name__)


class FetchedRecord(Protocol):
    """What :meth:`BacklogSkipper.admit` reads of a fetched record (aiokafka's ``ConsumerRecord``)."""

    @property
    def offset(self) -> int: ...

    @property
    def timestamp(self) -> int:
        """Kafka time, ms."""
        ...


R = TypeVar("R", bound=FetchedRecord)


def _offset(record: FetchedRecord) -> int:
    return record.offset


class BacklogSkipper:
    def __init__(self, skip_behind_ms: int) -> None:
        self.skip_behind_ms = skip_behind_ms
        self.jumps = 0
        self._pending: dict[TP, int] = {}
        """The offset each jumping partition seeks: its newest record when the jump was decided."""
        self._handed: dict[TP, int] = {}
        """The newest offset handed to the agent per partition (everything below it is accounted for)."""

    def admit(self, tp: TP, records: Sequence[R], now_ms: int) -> tuple[Sequence[R], int]:
        """Of ``tp``'s fetched ``records`` (ascending offsets, Kafka times in ms): those to hand the
        agent, and how many records are known skipped now.

        Left out: records handed over already (a seek can go back to one), records below a pending
        jump's target (fetched before the jump; counted with it when it lands: everything between
        the last record handed over and the first after the jump), and records older than the
        threshold but the newest of the fetch."""
        handed = self._handed.get(tp)
        start = 0 if handed is None else bisect_left(records, handed + 1, key=_offset)
        skipped = 0
        target = self._pending.get(tp)
        if target is not None:
            start = max(start, bisect_left(records, target, key=_offset))
            if start == len(records):
                return (), 0  # the jump has not landed yet
            del self._pending[tp]
            if handed is not None:
                skipped = records[start].offset - handed - 1
        if start == len(records):
            return (), 0
        oldest_fresh = now_ms - self.skip_behind_ms
        first_fresh = next((i for i in range(start, len(records)) if records[i].timestamp >= oldest_fresh), None)
        keep_from = len(records) - 1 if first_fresh is None else first_fresh
        skipped += keep_from - start
        self._handed[tp] = records[-1].offset
        return records[keep_from:], skipped

    def behind(self, tp: TP, newest_ts_ms: int, now_ms: int) -> bool:
        """Whether ``tp``, whose newest processed record has Kafka time ``newest_ts_ms``, should jump."""
        return self.enabled and tp not in self._pending and now_ms - newest_ts_ms > self.skip_behind_ms

    async def jump(self, consumer: Any, lag_ms: Mapping[TP, int]) -> None:
        """Seek each partition of ``lag_ms`` (how far behind it is, for the log) to its newest record,
        where records lie between it and the newest handed to the agent."""
        handed = {tp: self._handed[tp] for tp in lag_ms if tp in self._handed and tp not in self._pending}
        if not handed:
            return
        try:
            ends: Mapping[TP, int] = await consumer.highwaters(*handed)
        except KafkaError as exc:  # the next batch that is behind asks again
            log.warning("backlog jump of %d partitions put off: end offsets unknown (%r)", len(handed), exc)
            return
        targets = {tp: ends[tp] - 1 for tp, last in handed.items() if tp in ends and ends[tp] - 1 > last + 1}
        revoked = await seek_in_consumer_thread(consumer, targets)
        for tp, target in targets.items():
            if tp in revoked or tp not in self._handed:  # revoked before or while seeking: its next owner reads it
                log.info("%s[%d] revoked before its backlog jump", tp.topic, tp.partition)
                continue
            self._pending[tp] = target
            self.jumps += 1
            if self.jumps <= 10 or self.jumps % 1000 == 0:
                log.warning("%s[%d] %d ms behind: jumping to offset %d", tp.topic, tp.partition, lag_ms[tp], target)

    @property
    def enabled(self) -> bool:
        """Off (``worker_skip_behind_ms`` 0): the worker's per-batch path does no backlog work at all."""
        return self.skip_behind_ms > 0

    @property
    def pending(self) -> set[TP]:
        """Partitions with a jump not yet landed."""
        return set(self._pending)

    def forget(self, tps: Iterable[TP]) -> None:
        """Partitions revoked: their jumps will not land here, and Faust reads them again from the
        committed offset if they come back."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._handed.pop(tp, None)


async def seek_in_consumer_thread(consumer: Any, targets: Mapping[TP, int]) -> set[TP]:
    """Seek each partition to its target on the thread that owns aiokafka's consumer; the partitions
    no longer assigned (not sought).

    Faust's own ``Consumer._seek`` calls aiokafka's ``seek`` from the caller's thread: aiokafka then
    wakes its fetcher's futures from outside their event loop, which asyncio does not allow. (A
    worker seen to stop after jumping on many partitions at once, both threads idle, was first
    blamed on this; the bench later showed that symptom from commits stalled after offset 0 —
    decision 0034's amendment.)"""
    thread = consumer._thread

    def seek_all() -> set[TP]:
        revoked: set[TP] = set()
        for tp, offset in targets.items():
            try:
                thread.seek(tp, offset)
            except IllegalStateError:
                revoked.add(tp)
        return revoked

    if not targets:
        return set()
    revoked: set[TP] = await thread.call_thread(seek_all)
    return revoked
