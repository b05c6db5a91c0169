"""processors.backlog's rules on a stand-in consumer: where a jump goes, what it drops, what it counts.
(``tests/test_worker_backlog.py`` runs it in a worker on the real broker and Faust's consumer.)"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiokafka.errors import IllegalStateError, KafkaTimeoutError
from faust.types import TP

from processors.backlog import BacklogSkipper

A, B, C = TP("t.ticks.A", 0), TP("t.ticks.B", 0), TP("t.ticks.C", 0)


class _Thread:
    def __init__(self, revoked: set[TP]) -> None:
        self.sought: dict[TP, int] = {}
        self.revoked = revoked

    def seek(self, tp: TP, offset: int) -> None:
        if tp in self.revoked:
            raise IllegalStateError(f"{tp} is not assigned")
        self.sought[tp] = offset

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        return fun(*args)


class _Consumer:
    """What the skipper uses of Faust's consumer: the broker's end offsets and the driver thread."""

    def __init__(self, ends: dict[TP, int], revoked: frozenset[TP] = frozenset(), fail: bool = False) -> None:
        self.ends = ends
        self.fail = fail
        self.asked: list[tuple[TP, ...]] = []
        self._thread = _Thread(set(revoked))

    def highwater(self, tp: TP) -> int:
        raise AssertionError("the cached high-water mark is stale while the partition is buffered")

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        self.asked.append(tps)
        if self.fail:
            raise KafkaTimeoutError()
        return {tp: self.ends[tp] for tp in tps}


NOW_MS = 1_000_000


def _records(*offsets: int, age_ms: int = 0) -> list[Any]:
    """Fetched records of one partition, all ``age_ms`` old at ``NOW_MS``."""
    return [SimpleNamespace(offset=offset, timestamp=NOW_MS - age_ms) for offset in offsets]


def _offsets(records: Any) -> list[int]:
    return [record.offset for record in records]


def _handed(skipper: BacklogSkipper, **newest: int) -> None:
    """The agent was handed each partition's records up to ``newest`` (fresh ones: all pass)."""
    for name, offset in newest.items():
        kept, skipped = skipper.admit(TP(f"t.ticks.{name}", 0), _records(offset), NOW_MS)
        assert (_offsets(kept), skipped) == ([offset], 0)


async def test_a_jump_goes_to_the_newest_record_by_the_broker_s_end_offsets_asked_once() -> None:
    skipper, consumer = BacklogSkipper(200), _Consumer({A: 500, B: 41, C: 9})
    _handed(skipper, A=99, B=10, C=7)
    # C's newest handed record is 7 and its end 9: only record 8 lies ahead, nothing to jump over.
    await skipper.jump(consumer, {A: 900, B: 300, C: 250})
    assert consumer.asked == [(A, B, C)]
    assert consumer._thread.sought == {A: 499, B: 40}
    assert skipper.pending == {A, B} and skipper.jumps == 2


async def test_records_fetched_before_the_jump_are_left_out_and_counted_when_it_lands() -> None:
    skipper, consumer = BacklogSkipper(200), _Consumer({A: 500})
    _handed(skipper, A=99)
    await skipper.jump(consumer, {A: 900})
    assert skipper.admit(A, _records(100, 101, 102), NOW_MS) == ((), 0)  # fetched before the seek
    kept, skipped = skipper.admit(A, _records(103, 499, 500), NOW_MS)
    assert (_offsets(kept), skipped) == ([499, 500], 499 - 99 - 1)  # landed: 100..498 skipped
    assert skipper.pending == set()
    kept, skipped = skipper.admit(A, _records(501, 502), NOW_MS)
    assert (_offsets(kept), skipped) == ([501, 502], 0)


def test_of_a_fetch_older_than_the_threshold_only_the_newest_record_goes_on() -> None:
    skipper = BacklogSkipper(200)
    kept, skipped = skipper.admit(A, _records(10, 11, 12, age_ms=201), NOW_MS)
    assert (_offsets(kept), skipped) == ([12], 2)
    stale, fresh = _records(13, 14, age_ms=900), _records(15, 16, age_ms=200)
    kept, skipped = skipper.admit(A, stale + fresh, NOW_MS)
    assert (_offsets(kept), skipped) == ([15, 16], 2)  # the fresh tail, whole
    kept, skipped = BacklogSkipper(200).admit(B, _records(1, 2, age_ms=200), NOW_MS)
    assert (_offsets(kept), skipped) == ([1, 2], 0)  # at the threshold: not stale


async def test_records_handed_over_already_are_not_handed_again_nor_counted() -> None:
    """A jump decided while the agent went on can land behind what it was handed meanwhile."""
    skipper = BacklogSkipper(200)
    _handed(skipper, A=50)
    await skipper.jump(_Consumer({A: 60}), {A: 300})  # target 59
    kept, skipped = skipper.admit(A, _records(*range(51, 71)), NOW_MS)  # fetched before the seek
    assert (_offsets(kept), skipped) == (list(range(59, 71)), 59 - 50 - 1)  # reached the target: landed
    assert skipper.pending == set()
    kept, skipped = skipper.admit(A, _records(59, 60, 70, 71), NOW_MS)  # the seek went back
    assert (_offsets(kept), skipped) == ([71], 0)


async def test_a_partition_is_behind_once_older_than_the_threshold_and_not_while_jumping() -> None:
    skipper = BacklogSkipper(200)
    assert not skipper.behind(A, newest_ts_ms=1_000, now_ms=1_200)
    assert skipper.behind(A, newest_ts_ms=1_000, now_ms=1_201)
    _handed(skipper, A=3)
    await skipper.jump(_Consumer({A: 50}), {A: 201})
    assert not skipper.behind(A, newest_ts_ms=0, now_ms=10_000)  # its jump has not landed yet
    assert not BacklogSkipper(0).behind(A, newest_ts_ms=0, now_ms=10_000)  # off


async def test_a_partition_revoked_before_its_seek_and_a_failed_end_offset_request_start_no_jump() -> None:
    skipper = BacklogSkipper(200)
    _handed(skipper, A=1, B=1, C=1)
    await skipper.jump(_Consumer({A: 500, B: 500}, revoked=frozenset({B})), {A: 900, B: 900})
    assert skipper.pending == {A}
    failing = _Consumer({C: 500}, fail=True)
    await skipper.jump(failing, {C: 900})
    assert C not in skipper.pending and failing._thread.sought == {}
    await skipper.jump(failing, {})
    assert len(failing.asked) == 1  # nothing behind: no request at all


async def test_a_revoked_partition_forgets_its_jump_and_what_it_handed_over() -> None:
    """Faust reads it again from the committed offset if it comes back: nothing is left out then."""
    skipper = BacklogSkipper(200)
    _handed(skipper, A=40)
    await skipper.jump(_Consumer({A: 500}), {A: 900})
    skipper.forget({A})
    assert skipper.pending == set()
    kept, skipped = skipper.admit(A, _records(30, 31), NOW_MS)
    assert (_offsets(kept), skipped) == ([30, 31], 0)
