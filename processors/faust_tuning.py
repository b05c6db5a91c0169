"""Adjustments to faust-streaming 0.15.3 that its settings cannot express, each checked by a test.

The consumer it builds also walks its partitions with :mod:`plumbing.fetch_walk` (decision 0043)
and fetches in incremental sessions (:mod:`plumbing.fetch_sessions`, decision 0031).

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

from aiokafka.errors import IllegalOperation
from aiokafka.structs import TopicPartition
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.utils import terminal as faust_terminal

from plumbing import fetch_walk
from plumbing.fetch_sessions import enable as fetch_sessions_enable

_ORIGINAL = "_arbstream_original_create_worker_consumer"


def tune_worker_consumer(max_wait_ms: int, min_bytes: int = 1, fetch_sessions: bool = False) -> None:
    """Every consumer Faust builds for the worker: long-polls for at most ``max_wait_ms``,
    returning early once ``min_bytes`` are waiting; seeks to committed offsets in one request;
    fetches in incremental sessions when ``fetch_sessions`` (:mod:`plumbing.fetch_sessions`).
    Idempotent."""
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread_class, _ORIGINAL, None) or thread_class._create_worker_consumer

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        # Read by AIOKafkaConsumer.start() when it builds its Fetcher.
        consumer._fetch_max_wait_ms = max_wait_ms
        consumer._fetch_min_bytes = min_bytes
        seek_to_committed_in_one_request(consumer)
        start = consumer.start

        async def start_tuned() -> None:
            await start()
            # The walk first: a session wraps whichever walk the fetcher has.
            fetch_walk.install(consumer._fetcher)
            if fetch_sessions:
                fetch_sessions_enable(consumer._fetcher)

        consumer.start = start_tuned
        return consumer

    setattr(thread_class, _ORIGINAL, original)
    thread_class._create_worker_consumer = create_worker_consumer


def seek_to_committed_in_one_request(consumer: Any) -> None:
    """Make ``consumer.seek_to_committed()`` (Faust calls it after every assignment) read the
    group's committed offsets of all assigned partitions in one OffsetFetch request.

    aiokafka asks one partition at a time, one round trip each: on the whole market's 480
    partitions that was 2.3 s of every worker (re)start in the soak, between "Seek stream
    partitions to committed offsets" and "Worker ready" (issue 12's recovery). Same result:
    partitions with a committed offset > 0 are positioned there; the mapping returned holds
    None for partitions without one, as aiokafka's does."""

    async def seek_to_committed(*partitions: TopicPartition) -> dict[TopicPartition, int | None]:
        if consumer._group_id is None:
            raise IllegalOperation("Requires group_id")
        wanted = list(partitions or consumer._subscription.assigned_partitions())
        committed = await consumer._coordinator.fetch_committed_offsets(wanted)
        offsets: dict[TopicPartition, int | None] = {}
        for tp in wanted:
            found = committed.get(tp)
            offset = None if found is None or found.offset == -1 else found.offset
            offsets[tp] = offset
            if offset and offset > 0:
                consumer._fetcher.seek_to(tp, offset)
        return offsets

    consumer.seek_to_committed = seek_to_committed


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


PARTITION_FETCH_BYTES = 128 * 1024
"""Faust's ``consumer_max_fetch_size`` for the worker: aiokafka's ``max_partition_fetch_bytes``,
the most one fetch returns per partition (Faust's default: 1 MiB). A setting, not a patch.

aiokafka keeps what it fetched for a partition in memory until the agent has taken all of it,
and only leaves that partition out of the next fetch: a worker behind on many partitions (after
a restart, a broker outage, or while it cannot keep up) holds up to partitions × this much. At
1 MiB that is 480 MiB for the whole market at one partition per topic and 1.4 GiB at three (the
60-minute soak's worker reached 1,306 MiB); at 128 KiB, 60 MiB and 180 MiB (issue 13). It costs
no throughput: 128 KiB is ~300 one-tick records of one symbol per fetch, and a record batch
larger than this still arrives whole once its partition is the first with data in a fetch
(KIP-74: the broker never sends a consumer part of a batch; aiokafka shuffles the partitions of
every fetch); ``tests/test_processors_faust.py`` checks both on the real consumer and broker."""

MAX_POLL_RECORDS = 2_000
"""Faust's ``broker_max_poll_records`` for the worker: the most records one ``getmany`` hands
Faust (Faust's default: no limit). Faust turns a whole ``getmany`` into messages before its stream
buffer (4,096 events) can push back, so a worker catching up took everything aiokafka had
buffered into Python objects at once (~0.9 million more live memory blocks on the whole market).
2,000 records are ~0.5 s of work for a worker catching up (~4,000 records/s measured): the agent's
buffer stays full.

Both limits measured on the whole market (480 topics, one partition each; 417k records of backlog
published with no worker, then the worker started): peak RSS 355 -> 142 MiB, caught up in ~150 s
-> ~105 s. Keeping up (1,500 ticks/s for 6 min) it stays at 82-88 MiB either way."""


_HIGHWATER_ORIGINAL = "_arbstream_original_highwater"


def tolerate_revoked_highwater() -> None:
    """Faust's ``getmany`` asks the high-water mark of each record's partition while it hands over
    records fetched before a rebalance; aiokafka asserts the partition is still assigned, and the
    ``AssertionError`` crashed Faust's fetcher and stopped the worker (seen in the 60-minute soak,
    issue 13). The replacement answers None for a partition no longer assigned (the host then drops
    its records: :meth:`processors.faust_host.EngineHost.handle`) and otherwise does what the
    original does (idempotent)."""
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    if not hasattr(thread_class, _HIGHWATER_ORIGINAL):
        setattr(thread_class, _HIGHWATER_ORIGINAL, thread_class.highwater)
    original = getattr(thread_class, _HIGHWATER_ORIGINAL)

    def highwater(self: Any, tp: TP) -> int | None:
        try:
            return cast(int | None, original(self, tp))
        except AssertionError:
            if self._ensure_consumer()._subscription.is_assigned(tp):
                raise
            return None

    thread_class.highwater = highwater


class LazyTable:
    """A Faust log table rendered only when a log record is formatted (``str``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args, self._kwargs = args, kwargs

    def __str__(self) -> str:
        return str(faust_terminal.logtable(*self._args, **self._kwargs))


class _TerminalWithLazyTables:
    """``faust.utils.terminal`` as the consumer module sees it, with ``logtable`` deferred."""

    logtable = LazyTable

    def __getattr__(self, name: str) -> Any:
        return getattr(faust_terminal, name)


def lazy_commit_log_table() -> None:
    """Faust's ``Consumer._commit_offsets`` renders an ASCII table of every offset it commits
    (terminaltables, a row per partition) for a log line at Faust's "dev" level, below DEBUG, which
    is never emitted: on the whole market (~480 partitions with new offsets, a commit every 500 ms)
    6 % of the worker's main thread in the processors stage's profile (pyinstrument; ~15 ms per
    commit under the profiler, with the event loop blocked). The consumer module's ``terminal`` is
    replaced by one whose tables render only when the log record is formatted (idempotent)."""
    setattr(faust_consumer, "terminal", _TerminalWithLazyTables())  # noqa: B010 - not exported: mypy
