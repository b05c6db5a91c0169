"""processors.backlog's rules on a stand-in consumer: where a jump goes, what it drops, what it counts.
(``tests/test_worker_backlog.py`` runs it in a worker on the real broker and Faust's consumer.)"""

from __future__ import annotations

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


async def test_a_jump_goes_to_the_newest_record_by_the_broker_s_end_offsets_asked_once() -> None:
    skipper, consumer = BacklogSkipper(200), _Consumer({A: 500, B: 41, C: 9})
    # C's newest processed record is 7 and its end 9: only record 8 lies ahead, nothing to jump over.
    await skipper.jump(consumer, {A: 99, B: 10, C: 7}, {A: 900, B: 300, C: 250})
    assert consumer.asked == [(A, B, C)]
    assert consumer._thread.sought == {A: 499, B: 40}
    assert skipper.pending == {A, B} and skipper.jumps == 2


async def test_records_fetched_before_the_jump_are_dropped_and_counted_when_it_lands() -> None:
    skipper, consumer = BacklogSkipper(200), _Consumer({A: 500})
    await skipper.jump(consumer, {A: 99}, {A: 900})
    assert skipper.unread(A, [100, 101, 102]) == (3, 0)  # still queued from before: not processed
    assert skipper.unread(A, [103, 499, 500]) == (1, 499 - 99 - 1)  # landed: 100..498 skipped
    assert skipper.pending == set()
    assert skipper.unread(A, [501, 502]) == (0, 0)


async def test_a_partition_is_behind_once_older_than_the_threshold_and_not_while_jumping() -> None:
    skipper = BacklogSkipper(200)
    assert not skipper.behind(A, newest_ts_ms=1_000, now_ms=1_200)
    assert skipper.behind(A, newest_ts_ms=1_000, now_ms=1_201)
    await skipper.jump(_Consumer({A: 50}), {A: 3}, {A: 201})
    assert not skipper.behind(A, newest_ts_ms=0, now_ms=10_000)  # its jump has not landed yet
    assert not BacklogSkipper(0).behind(A, newest_ts_ms=0, now_ms=10_000)  # off


async def test_a_partition_revoked_before_its_seek_and_a_failed_end_offset_request_start_no_jump() -> None:
    skipper = BacklogSkipper(200)
    await skipper.jump(_Consumer({A: 500, B: 500}, revoked=frozenset({B})), {A: 1, B: 1}, {A: 900, B: 900})
    assert skipper.pending == {A}
    failing = _Consumer({C: 500}, fail=True)
    await skipper.jump(failing, {C: 1}, {C: 900})
    assert C not in skipper.pending and failing._thread.sought == {}
    await skipper.jump(failing, {}, {})
    assert len(failing.asked) == 1  # nothing behind: no request at all
