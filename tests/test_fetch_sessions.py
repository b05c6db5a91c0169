"""Incremental fetch sessions (plumbing.fetch_sessions): what goes on the wire, and on the real
broker that nothing is lost, duplicated or reordered, including when the broker drops a session."""

from __future__ import annotations

import asyncio
import random
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.protocol.fetch import FetchRequest, FetchRequest_v4, FetchRequest_v11
from aiokafka.structs import TopicPartition

from plumbing.fetch_sessions import (
    FETCH_SESSION_ID_NOT_FOUND,
    INVALID_FETCH_SESSION_EPOCH,
    MAX_EPOCH,
    FetchSession,
    SessionFetchRequest,
    enable,
)
from plumbing.kafka import ensure_topics

MAX_BYTES = 1024


def _full(offsets: dict[tuple[str, int], int]) -> FetchRequest:
    by_topic: dict[str, list[tuple[int, int, int]]] = {}
    for (topic, partition), offset in offsets.items():
        by_topic.setdefault(topic, []).append((partition, offset, MAX_BYTES))
    return FetchRequest(20, 1, 50 * 2**20, 0, list(by_topic.items()))


def _on_wire(struct: object) -> tuple[dict[tuple[str, int], int], set[tuple[str, int]]]:
    """(partition -> fetch offset, forgotten partitions) of a built v11 request."""
    sent = {(topic, p[0]): p[2] for topic, parts in struct.topics for p in parts}  # type: ignore[attr-defined]
    forgotten = {(topic, p) for topic, parts in struct.forgotten_topics_data for p in parts}  # type: ignore[attr-defined]
    return sent, forgotten


def test_a_new_session_sends_everything_then_only_what_moved_and_what_to_drop() -> None:
    session = FetchSession(node_id=1)
    first = SessionFetchRequest(_full({("a", 0): 5, ("b", 0): 7, ("c", 0): 0}), session)
    struct = first.build(FetchRequest_v11)
    assert (struct.session_id, struct.session_epoch) == (0, 0)  # 0/0: create a session
    assert _on_wire(struct) == ({("a", 0): 5, ("b", 0): 7, ("c", 0): 0}, set())
    session.answered(first.wanted, error_code=0, session_id=42)
    assert (session.session_id, session.epoch) == (42, 1)
    # b got records (its offset moved), c is left out (its records still wait in the buffer).
    second = SessionFetchRequest(_full({("a", 0): 5, ("b", 0): 9}), session)
    struct = second.build(FetchRequest_v11)
    assert (struct.session_id, struct.session_epoch) == (42, 1)
    assert _on_wire(struct) == ({("b", 0): 9}, {("c", 0)})
    session.answered(second.wanted, error_code=0, session_id=42)
    assert session.epoch == 2 and set(session.partitions) == {TopicPartition("a", 0), TopicPartition("b", 0)}
    # Nothing moved: an empty incremental request ("what is new in my session?").
    assert _on_wire(SessionFetchRequest(_full({("a", 0): 5, ("b", 0): 9}), session).build(FetchRequest_v11)) == (
        {},
        set(),
    )
    assert (session.full_requests, session.incremental_requests) == (1, 2)


def test_a_lost_session_an_error_or_no_session_offered_go_back_to_full_requests() -> None:
    for error_code, session_id in ((FETCH_SESSION_ID_NOT_FOUND, 0), (INVALID_FETCH_SESSION_EPOCH, 0), (0, 0)):
        session = FetchSession(node_id=1, session_id=42, epoch=3, partitions={TopicPartition("a", 0): (5, MAX_BYTES)})
        session.answered({}, error_code=error_code, session_id=session_id)
        assert (session.session_id, session.epoch, session.partitions) == (0, 0, {})
        struct = SessionFetchRequest(_full({("a", 0): 5}), session).build(FetchRequest_v11)
        assert (struct.session_id, struct.session_epoch) == (0, 0) and _on_wire(struct)[0] == {("a", 0): 5}
    # The epoch wraps to 1, never to 0 (which would ask for a new session) or negative.
    session = FetchSession(node_id=1, session_id=42, epoch=MAX_EPOCH)
    session.answered({}, error_code=0, session_id=42)
    assert session.epoch == 1
    # A broker that only speaks fetch v4 gets aiokafka's own full request.
    session = FetchSession(node_id=1, session_id=42, epoch=3)
    struct = SessionFetchRequest(_full({("a", 0): 5}), session).build(FetchRequest_v4)
    assert struct.topics == [("a", [(0, 5, MAX_BYTES)])] and session.session_id == 0


async def _produce(bootstrap: str, topics: list[str], count: int, rnd: random.Random) -> dict[str, list[bytes]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    sent: dict[str, list[bytes]] = {topic: [] for topic in topics}
    try:
        for index in range(count):
            topic = rnd.choice(topics[: max(1, len(topics) // 5)] if rnd.random() < 0.7 else topics)
            value = f"{topic}:{index}".encode()
            sent[topic].append(value)
            await producer.send(topic, value, partition=0)
            if index % 200 == 199:
                await asyncio.sleep(0.05)  # waves: sessions see idle partitions wake up
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def test_on_the_broker_every_record_arrives_once_in_order_through_sessions_and_a_lost_one(
    kafka_bootstrap: str, namespace: str
) -> None:
    topics = [f"{namespace}.s{index}" for index in range(60)]
    await ensure_topics(kafka_bootstrap, topics, 1)
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=kafka_bootstrap, group_id=None, auto_offset_reset="earliest", fetch_max_wait_ms=20
    )
    await consumer.start()
    sessions = enable(consumer._fetcher)
    assert enable(consumer._fetcher) is sessions  # idempotent
    received: dict[str, list[bytes]] = {topic: [] for topic in topics}
    rnd = random.Random(7)

    async def read_until(total: int) -> None:
        deadline = time.monotonic() + 60
        while sum(map(len, received.values())) < total and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                received[tp.topic] += [record.value or b"" for record in records]

    try:
        reader = asyncio.create_task(read_until(3_000))
        first = await _produce(kafka_bootstrap, topics, 3_000, rnd)
        await reader
        (session,) = sessions.by_node.values()
        assert session.session_id != 0 and session.incremental_requests > 10 * session.full_requests
        # The broker loses the session (as after its restart or cache eviction): the next fetch
        # fails with an epoch error, the one after is full again, and nothing is skipped.
        session.epoch += 1_000
        reader = asyncio.create_task(read_until(6_000))
        second = await _produce(kafka_bootstrap, topics, 3_000, rnd)
        await reader
        assert session.resets >= 1 and session.full_requests >= 2 and session.session_id != 0
    finally:
        await consumer.stop()
    assert received == {topic: first[topic] + second[topic] for topic in topics}
