"""Overload drops resolution, never freshness: a tick partition far behind jumps over its backlog.

On the whole market a tail symbol's record holds one or two ticks, so when the worker falls behind
the backlog builds in Kafka one tick per record and conflation (newest quote per instrument within
a fetch) finds little to drop: every record still costs Faust's per-record path, and tick →
opportunity latency grows without bound (issue 12). With ``worker_skip_behind_ms`` set, a
partition whose newest processed record is older than that seeks to its newest record: everything
between is never processed, and counted (``skipped_records`` on ``worker-stats``, ``/health``,
``/metrics``). The recorder still has every raw frame, and a replay can process them all.

Where the newest record is: the partition's end offset asked from the broker when the jump is
decided (one ListOffsets request for every partition jumping after a batch). The consumer's own
high-water mark is no use here: it is only refreshed when the partition is fetched, and a
partition that is behind is not fetched while the consumer still buffers records of it, so it
can be seconds old (measured: with the cached mark a worker at 25 % CPU offered 3× its rate still
handed records over 1–3.6 s old). Records of a partition fetched before its jump and not yet
processed are dropped when they reach the agent (:meth:`BacklogSkipper.unread`) and counted with
the jump.

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
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import IllegalStateError, KafkaError
from faust.types import TP

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Jump:
    target: int
    """The offset sought: the partition's newest record when the jump was decided."""
    processed: int
    """The newest offset processed before the jump: everything after it and below ``target`` is skipped."""


class BacklogSkipper:
    def __init__(self, skip_behind_ms: int) -> None:
        self.skip_behind_ms = skip_behind_ms
        self.jumps = 0
        self._pending: dict[TP, _Jump] = {}

    def unread(self, tp: TP, offsets: Sequence[int]) -> tuple[int, int]:
        """For ``tp``'s delivered ``offsets`` (ascending): (how many leading ones not to process — fetched
        before a pending jump, they are skipped with it —, records known skipped once the jump landed)."""
        jump = self._pending.get(tp)
        if jump is None:
            return 0, 0
        dropped = bisect_left(offsets, jump.target)
        if dropped == len(offsets):
            return dropped, 0  # the jump has not landed yet
        del self._pending[tp]
        return dropped, offsets[dropped] - jump.processed - 1

    def behind(self, tp: TP, newest_ts_ms: int, now_ms: int) -> bool:
        """Whether ``tp``, whose newest processed record has Kafka time ``newest_ts_ms``, should jump."""
        return self.enabled and tp not in self._pending and now_ms - newest_ts_ms > self.skip_behind_ms

    async def jump(self, consumer: Any, processed: Mapping[TP, int], lag_ms: Mapping[TP, int]) -> None:
        """Seek each partition of ``processed`` (its newest processed offset) to its newest record,
        where records lie between; ``lag_ms`` only for the log."""
        if not processed:
            return
        try:
            ends: Mapping[TP, int] = await consumer.highwaters(*processed)
        except KafkaError as exc:  # the next batch that is behind asks again
            log.warning("backlog jump of %d partitions put off: end offsets unknown (%r)", len(processed), exc)
            return
        targets = {tp: ends[tp] - 1 for tp, last in processed.items() if tp in ends and ends[tp] - 1 > last + 1}
        revoked = await seek_in_consumer_thread(consumer, targets)
        for tp, target in targets.items():
            if tp in revoked:  # a rebalance for a new topic: its next owner reads it
                log.info("%s[%d] revoked before its backlog jump", tp.topic, tp.partition)
                continue
            self._pending[tp] = _Jump(target, processed[tp])
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
        """Partitions no longer assigned: their jumps will not land here."""
        for tp in tps:
            self._pending.pop(tp, None)


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
