"""processors.faust_batches on the installed Faust: a fetch of the batched topics reaches the agent as
one list, other topics keep Faust's per-event path, and commits follow the agent's acks (real broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.structs import TopicPartition
from faust.types import TP, Message

from plumbing.kafka import ensure_topics
from processors.discovery import committed_offsets
from processors.faust_batches import BatchRouter, deliver_in_batches, gap
from tests.helpers import raw_faust_app

PER_TOPIC = 300


async def _produce(bootstrap: str, counts: dict[str, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for topic, count in counts.items():
            for i in range(count):
                await producer.send(topic, f"{topic}:{i}".encode(), key=b"k")
        await producer.flush()
    finally:
        await producer.stop()


async def _until(condition: Any, timeout_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


def _kept(offset: int, every: int) -> bool:
    return offset % every == every - 1


@pytest.mark.integration
@pytest.mark.parametrize("every", [1, 10], ids=["all", "admitted"])
async def test_a_fetch_reaches_the_agent_as_one_list_and_commits_follow_its_acks(
    kafka_bootstrap: str, namespace: str, tmp_path: Path, every: int
) -> None:
    """With ``admit`` leaving records out (``every``: one in ten kept, as a backlog jump does), the
    others still arrive once and in order and the commits still pass what was left out."""
    batched, other = [f"{namespace}.b1", f"{namespace}.b2"], f"{namespace}.other"
    await ensure_topics(kafka_bootstrap, [*batched, other], 1)
    await _produce(kafka_bootstrap, {batched[0]: PER_TOPIC, batched[1]: PER_TOPIC, other: 20})
    group = f"{namespace}-batches"
    app = raw_faust_app(
        group, kafka_bootstrap, tmp_path, consumer_auto_offset_reset="earliest", broker_commit_interval=0.2
    )
    names = list(batched)
    app.topics.add(faust.Topic(app, topics=names, key_type=bytes, value_type=bytes))
    channel = app.channel(maxsize=2)

    def admit(tp: TP, records: Sequence[ConsumerRecord]) -> list[ConsumerRecord]:
        return [record for record in records if _kept(record.offset, every)]

    router = deliver_in_batches(app, channel, names, admit if every > 1 else None)
    fetches: list[list[Message]] = []
    singles: list[bytes] = []

    @app.agent(channel)
    async def take(stream: faust.StreamT[list[Message]]) -> None:
        async for fetched in stream:
            messages = router.current(fetched)
            fetches.append(messages)
            router.ack(messages)

    @app.agent(app.topic(other, value_type=bytes))
    async def plain(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            singles.append(value)

    await app.start()
    try:
        await _until(lambda: sum(map(len, fetches)) >= 2 * PER_TOPIC // every and len(singles) >= 20)
        tps = [TopicPartition(t, 0) for t in (*batched, other)]

        async def committed() -> dict[TopicPartition, int]:
            return await committed_offsets(kafka_bootstrap, group, tps)

        found: dict[TopicPartition, int] = {}
        for _ in range(100):
            found = await committed()
            if found == {tp: (20 if tp.topic == other else PER_TOPIC) for tp in tps}:
                break
            await asyncio.sleep(0.2)
    finally:
        await app.stop()
    assert found == {tp: (20 if tp.topic == other else PER_TOPIC) for tp in tps}
    for topic in batched:
        values = [m.value for f in fetches for m in f if m.topic == topic]
        assert values == [f"{topic}:{i}".encode() for i in range(PER_TOPIC) if _kept(i, every)]  # once, in order
    assert max(len(f) for f in fetches) > 1  # a fetch arrives as one list, not record by record
    assert all(m.topic in batched for f in fetches for m in f)
    assert singles == [f"{other}:{i}".encode() for i in range(20)]  # Faust's own path, unchanged


def test_a_gap_is_the_offsets_between_the_last_read_and_the_next_delivered() -> None:
    """Right after offset 0 too: Faust's own test of the last read offset is for truth, so a backlog
    jump after a partition's first record left the group's committed offset at 1 for good (its
    commits skip at most one missing offset) — seen in the bench as a drain that never finished."""
    assert gap(0, 5) == (1, 5)  # right after offset 0, too
    assert gap(7, 9) == (8, 9)
    assert gap(7, 8) is None  # the next offset: no gap
    assert gap(None, 5) is None  # nothing read since the assignment: Faust's commits start at the first ack


class _Consumer:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, message: Any) -> bool:
        self.acked.append(message.offset)
        return True


class _Channel:
    """A channel as the router uses it: ``put`` waits while the agent's buffer is full."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)

    async def put(self, value: Any) -> None:
        await self.queue.put(value)


def _router(generation: int, active: bool = True, channel: Any = None) -> tuple[BatchRouter, _Consumer, list[int]]:
    consumer, out = _Consumer(), cast(list[int], [])
    app = SimpleNamespace(
        consumer=consumer,
        consumer_generation_id=generation,
        flow_control=SimpleNamespace(is_active=lambda: active),
        sensors=SimpleNamespace(on_message_out=lambda tp, offset, message: out.append(offset)),
        in_recovery=False,
    )
    return BatchRouter(cast(Any, app), channel, ["t.ticks.BTC"]), consumer, out


def _message(offset: int, generation: int) -> Any:
    return SimpleNamespace(tp=TP("t.ticks.BTC", 0), topic="t.ticks.BTC", offset=offset, generation_id=generation)


def test_records_fetched_before_a_rebalance_are_acknowledged_not_processed() -> None:
    """As Faust's stream skips and acknowledges an event of an earlier generation."""
    router, consumer, out = _router(generation=3)
    messages = [_message(1, 2), _message(2, 3), _message(3, 2), _message(4, 3)]
    assert [m.offset for m in router.current(messages)] == [2, 4]
    assert (consumer.acked, out) == ([1, 3], [1, 3])
    router.ack(router.current([_message(5, 3)]))
    assert consumer.acked == [1, 3, 5]


def test_while_flow_is_suspended_nothing_is_processed() -> None:
    router, consumer, _ = _router(generation=3, active=False)
    assert router.current([_message(1, 3), _message(2, 3)]) == []
    assert consumer.acked == [1, 2]


def test_topics_discovery_adds_are_batched_too() -> None:
    router, _, _ = _router(generation=1)
    assert (router.batched("t.ticks.BTC"), router.batched("t.ticks.SOL")) == (True, False)
    router.names.append("t.ticks.SOL")  # what TopicDiscovery does to the list
    assert router.batched("t.ticks.SOL")


async def _full_channel() -> _Channel:
    channel = _Channel(maxsize=1)
    await channel.put(["earlier batch"])
    return channel


async def test_a_hand_over_waits_while_the_agent_is_behind() -> None:
    channel = await _full_channel()
    router, _, _ = _router(1, channel=channel)
    handing = asyncio.create_task(router.hand_over([_message(1, 1)], asyncio.Event()))
    await asyncio.sleep(0.25)  # longer than a recheck: still waiting, nothing dropped
    assert not handing.done()
    assert channel.queue.get_nowait() == ["earlier batch"]  # the agent takes one
    assert await handing is True
    assert [m.offset for m in channel.queue.get_nowait()] == [1]


async def test_a_hand_over_gives_up_when_a_table_recovery_starts() -> None:
    """Faust's recovery needs the drain loop (faust-streaming #74): a full buffer must not hold it."""
    channel = await _full_channel()
    router, _, _ = _router(1, channel=channel)
    handing = asyncio.create_task(router.hand_over([_message(1, 1)], asyncio.Event()))
    await asyncio.sleep(0.05)
    cast(Any, router.app).in_recovery = True
    assert await asyncio.wait_for(handing, 2.0) is False
    assert channel.queue.qsize() == 1 and channel.queue.get_nowait() == ["earlier batch"]


async def test_a_hand_over_gives_up_when_the_flow_is_suspended() -> None:
    channel = await _full_channel()
    router, _, _ = _router(1, channel=channel)
    suspended = asyncio.Event()
    handing = asyncio.create_task(router.hand_over([_message(1, 1)], suspended))
    await asyncio.sleep(0.05)
    suspended.set()
    assert await asyncio.wait_for(handing, 2.0) is False
    assert channel.queue.qsize() == 1
