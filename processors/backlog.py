"""Overload drops resolution, never freshness: a tick partition far behind jumps over its backlog.

On the whole market a tail symbol's record holds one or two ticks, so when the worker falls behind
the backlog builds in Kafka one tick per record and conflation (newest quote per instrument within
a fetch) finds little to drop: every record still costs Faust's per-record path, and tick →
opportunity latency grows without bound (issue 12). With ``worker_skip_behind_ms`` set, a
partition whose newest delivered record is older than that seeks to its newest record: everything
between is never read, and counted (``skipped_records`` on ``worker-stats``, ``/health``,
``/metrics``). The recorder still has every raw frame, and a replay can process them all.

How Faust learns of the jump: the seek goes to the driver (its consumer thread's ``seek``, private in
faust-streaming 0.15.3) and leaves Faust's read offset alone, so the records Faust had already
taken are still delivered, and the first record after the jump arrives with a gap in offsets,
which Faust records as it does for compacted topics; its commits then go past the jump.
``tests/test_worker_backlog.py`` checks this against the real consumer (every tick processed or
counted as skipped, the committed offset at the end of the partition), so a Faust upgrade that
changes it fails there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import IllegalStateError
from faust.types import TP

log = logging.getLogger(__name__)


@dataclass
class _Jump:
    target: int
    """The offset sought: the partition's newest record when the jump was decided."""
    delivered: int
    """The highest offset delivered below the target so far."""


class BacklogSkipper:
    def __init__(self, skip_behind_ms: int) -> None:
        self.skip_behind_ms = skip_behind_ms
        self.jumps = 0
        self._pending: dict[TP, _Jump] = {}

    async def after_batch(self, consumer: Any, tp: TP, offsets: Sequence[int], newest_ts_ms: int, now_ms: int) -> int:
        """Records known skipped once a jump landed on ``tp``; may start a jump. ``offsets``: the
        delivered records' offsets, ascending; ``newest_ts_ms``: the Kafka time of the last."""
        skipped = self._landed(tp, offsets)
        if tp in self._pending or not self.enabled or now_ms - newest_ts_ms <= self.skip_behind_ms:
            return skipped
        try:
            highwater: int | None = consumer.highwater(tp)
        except AssertionError:  # aiokafka asserts the partition is assigned: revoked meanwhile
            return skipped
        newest = (highwater or 0) - 1  # keep the newest record: the freshest quotes
        if newest > offsets[-1] + 1:
            try:
                await seek_in_consumer_thread(consumer, tp, newest)
            except IllegalStateError:  # revoked meanwhile (a rebalance for a new topic): its next owner reads it
                log.info("%s[%d] revoked before its backlog jump", tp.topic, tp.partition)
                return skipped
            self._pending[tp] = _Jump(newest, offsets[-1])
            self.jumps += 1
            if self.jumps <= 10 or self.jumps % 1000 == 0:
                lag_ms = now_ms - newest_ts_ms
                log.warning("%s[%d] %d ms behind: jumping to offset %d", tp.topic, tp.partition, lag_ms, newest)
        return skipped

    def _landed(self, tp: TP, offsets: Sequence[int]) -> int:
        jump = self._pending.get(tp)
        if jump is None:
            return 0
        below = [offset for offset in offsets if offset < jump.target]
        jump.delivered = max([jump.delivered, *below])
        after = [offset for offset in offsets if offset >= jump.target]
        if not after:
            return 0  # still delivering what Faust had taken before the jump
        del self._pending[tp]
        return after[0] - jump.delivered - 1

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


async def seek_in_consumer_thread(consumer: Any, tp: TP, offset: int) -> None:
    """Seek on the thread that owns aiokafka's consumer.

    Faust's own ``Consumer._seek`` calls aiokafka's ``seek`` from the caller's thread: aiokafka then
    wakes its fetcher's futures from outside their event loop, which can leave the fetcher waiting
    forever (seen: a worker that jumped over backlogs on many partitions at once stopped fetching,
    both threads idle)."""
    thread = consumer._thread
    await thread.call_thread(thread.seek, tp, offset)
