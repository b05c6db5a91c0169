"""Adjustments to faust-streaming 0.15.3 that its settings cannot express, each checked by a test.

Faust creates its consumer with ``fetch_max_wait_ms=1500`` hard-coded (no setting reaches it).
aiokafka keeps one fetch in flight per broker and leaves partitions that still have buffered
records out of it, so while a busy partition is being processed the next fetch long-polls the
idle ones (hundreds of ``ticks.<BASE>`` partitions are idle most of the time) for up to 1.5 s
and holds back fresh ticks: measured in ``make demo`` before decision 0004's fix, state lagged
the ticks by p50 0.93 s / p99 1.55 s. ``tests/test_processors_faust.py`` checks the patch on the
real consumer Faust builds, so a Faust upgrade that renames anything fails there, not silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from time import monotonic
from typing import Any, cast

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

_ORIGINAL = "_arbstream_original_create_worker_consumer"


def limit_fetch_wait(max_wait_ms: int, min_bytes: int = 1) -> None:
    """Make Faust's worker consumers long-poll for at most ``max_wait_ms``, returning early once
    ``min_bytes`` are waiting (idempotent)."""
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread_class, _ORIGINAL, None) or thread_class._create_worker_consumer

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        # Read by AIOKafkaConsumer.start() when it builds its Fetcher.
        consumer._fetch_max_wait_ms = max_wait_ms
        consumer._fetch_min_bytes = min_bytes
        return consumer

    setattr(thread_class, _ORIGINAL, original)
    thread_class._create_worker_consumer = create_worker_consumer


_SCAN_ORIGINAL = "_arbstream_original_verify_all_partitions_active"
SCAN_CHUNK = 256
"""Partitions checked between two yields to the event loop (Faust yields after every one)."""


def throttle_livelock_scan(every_s: float) -> None:
    """Run Faust's livelock check (every assigned partition: highwater vs. commits, a warning when a
    partition stalls) at most every ``every_s`` instead of every 2.5 commit intervals, yielding
    every :data:`SCAN_CHUNK` partitions instead of after each (idempotent).

    It only logs. Over the whole market's ~1,440 partitions it yielded 1,440 times every 1.25 s:
    11 % of the worker's CPU in the market bench's profile (README, Performance). The worker's own
    lag and stall signals (``worker-stats``, ``/health``) do not depend on it."""
    consumer_class: Any = faust_aiokafka.Consumer
    if not hasattr(consumer_class, _SCAN_ORIGINAL):
        setattr(consumer_class, _SCAN_ORIGINAL, consumer_class.verify_all_partitions_active)
    last_scan: dict[int, float] = {}

    async def verify_all_partitions_active(self: Any) -> None:
        now = monotonic()
        if now - last_scan.get(id(self), float("-inf")) < every_s:
            return
        last_scan[id(self)] = now
        for index, tp in enumerate(list(self.assignment())):
            if index % SCAN_CHUNK == SCAN_CHUNK - 1:
                await self.sleep(0)
            if self.should_stop:
                return
            self.verify_event_path(now, tp)

    consumer_class.verify_all_partitions_active = verify_all_partitions_active


_COMMIT_ORIGINAL = "_arbstream_original_commit"


def commit_against_one_assignment() -> None:
    """Faust's ``AIOKafkaConsumerThread._commit`` filters the offsets to commit with
    ``tp in self.assignment()``, which rebuilds the whole assignment as a new set for every
    partition it checks: quadratic. On the whole market (1,440 partitions, ~500 with offsets each
    commit) that was 18 % of the worker's CPU (py-spy, market bench). The replacement reads the
    assignment once and otherwise does what the original does (idempotent)."""
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    if not hasattr(thread_class, _COMMIT_ORIGINAL):
        setattr(thread_class, _COMMIT_ORIGINAL, thread_class._commit)
    original = getattr(thread_class, _COMMIT_ORIGINAL)

    async def _commit(self: Any, offsets: Mapping[TP, int]) -> bool:
        return bool(await original(_AssignmentReadOnce(self), offsets))

    thread_class._commit = _commit


class _AssignmentReadOnce:
    """Faust's consumer thread as its ``_commit`` sees it, with ``assignment()`` computed once."""

    def __init__(self, thread: Any) -> None:
        self._thread = thread
        self._assigned = thread.assignment()

    def assignment(self) -> set[TP]:
        return cast(set[TP], self._assigned)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._thread, name)
