"""processors.recovery_watch: the stall rule, and on the installed Faust against the real broker, a table
recovery whose changelog records were skipped stalls until the watch seeks the partition back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaProducer
from faust.types import TP

from plumbing.kafka import ensure_topics
from processors.recovery_watch import RecoveryWatch, Stall, stalled
from tests.helpers import raw_faust_app

A, B = TP("t-changelog", 0), TP("t-changelog", 1)


def test_a_partition_with_records_left_and_nothing_heard_for_long_enough_is_stalled() -> None:
    found = stalled(
        now=110.0,
        started_at=100.0,
        offsets={A: -1, B: 41},
        highwaters={A: 9, B: 99},
        heard_at={B: 108.0},
        stall_after_s=3.0,
    )
    assert found == [Stall(A, seek_to=0, idle_s=10.0, remaining=10)]  # B was heard 2 s ago


def test_heard_long_ago_is_stalled_from_that_time_and_seeks_to_the_last_applied_offset() -> None:
    (found,) = stalled(110.0, 100.0, {B: 41}, {B: 99}, {B: 105.0}, 3.0)
    assert found == Stall(B, seek_to=41, idle_s=5.0, remaining=58)


def test_a_time_heard_before_this_recovery_started_counts_from_its_start() -> None:
    assert stalled(102.0, 100.0, {A: 3}, {A: 9}, {A: 50.0}, 3.0) == []
    assert stalled(103.0, 100.0, {A: 3}, {A: 9}, {A: 50.0}, 3.0) == [Stall(A, 3, 3.0, 6)]


@pytest.mark.parametrize(("offset", "highwater"), [(9, 9), (10, 9), (None, 9), (3, None), (-1, -1)])
def test_nothing_left_or_nothing_known_is_not_a_stall(offset: int | None, highwater: int | None) -> None:
    assert stalled(200.0, 100.0, {A: offset}, {A: highwater}, {}, 3.0) == []


COUNT = 50


async def _until(condition: Any, timeout_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


@pytest.mark.integration
async def test_a_recovery_that_skipped_its_changelog_records_completes_once_the_watch_seeks_back(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    group = f"{namespace}-watch"
    changelog, source = f"{group}-t-changelog", f"{namespace}.src"
    await ensure_topics(kafka_bootstrap, [changelog, source], 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(COUNT):
            await producer.send(changelog, f"v{i}".encode(), key=f"k{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    app = raw_faust_app(group, kafka_bootstrap, tmp_path)
    table = app.Table("t", default=None, key_type=bytes, value_type=bytes, partitions=1)

    @app.agent(app.topic(source, value_type=bytes))
    async def idle(stream: faust.StreamT[bytes]) -> None:
        async for _ in stream:
            pass

    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]  # the TableManager's, untyped
    original_seek = recovery._seek_offsets
    skipped = asyncio.Event()

    async def seek_past_the_records(consumer: Any, tps: set[TP], offsets: Any, title: str) -> None:
        """What a lost fetch leaves behind: the consumer past records the recovery never saw."""
        if title != "active" or skipped.is_set():
            await original_seek(consumer, tps, offsets, title)
            return
        ends = await consumer.highwaters(*tps)
        await consumer.seek_wait({tp: ends[tp] for tp in tps})
        skipped.set()

    recovery._seek_offsets = seek_past_the_records
    # Longer than Faust's default long poll (1.5 s): a fetch in flight when the watch seeks answers
    # for the old position first.
    watch = RecoveryWatch(app, stall_after_s=2.5)
    start = asyncio.ensure_future(app.start())  # returns once the (first) recovery completed
    try:
        assert await _until(skipped.is_set, 60), "the recovery never sought its changelog"
        await asyncio.sleep(3.0)
        assert recovery.in_recovery and len(table) == 0, "skipped records should stall the recovery"
        watch.ensure_running()
        assert await _until(lambda: not recovery.in_recovery, 30), "the watch did not restart the stalled read"
        await asyncio.wait_for(start, 30)
        assert {k: table[k] for k in table} == {f"k{i}".encode(): f"v{i}".encode() for i in range(COUNT)}
        assert watch.reseeks == 1
    finally:
        start.cancel()
        await app.stop()
