"""plumbing.fetch_walk: the same fetch decisions as aiokafka's own walk, on randomised fetcher
states covering every rule (buffered records in and out of backoff, in-flight nodes, unknown and
leaderless partitions, offsets awaiting a reset, paused partitions, preferred read replicas), and
on a real consumer that it still reads everything."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.cluster import ClusterMetadata
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.subscription_state import Assignment
from aiokafka.structs import PartitionMetadata, TopicPartition

from plumbing import fetch_walk
from plumbing.fetch_sessions import enable as enable_sessions
from plumbing.kafka import ensure_topics

NODES = (0, 1, 2)


class Buffered:
    """A fetched-but-unconsumed entry of ``Fetcher._records`` with a fixed remaining backoff."""

    def __init__(self, backoff: float) -> None:
        self.backoff = backoff

    def calculate_backoff(self) -> float:
        return self.backoff


class Client:
    def __init__(self, cluster: ClusterMetadata) -> None:
        self.cluster = cluster


def _fetcher(rng: random.Random, tps: list[TopicPartition], assignment: Assignment) -> Fetcher:
    cluster = ClusterMetadata()
    for tp in tps:
        roll = rng.random()
        if roll < 0.05:
            continue  # a topic or partition the metadata does not know yet
        leader = -1 if roll < 0.1 else rng.choice(NODES)
        cluster._partitions.setdefault(tp.topic, {})[tp.partition] = PartitionMetadata(
            tp.topic, tp.partition, leader, [leader], [leader], None
        )
    fetcher: Any = Fetcher.__new__(Fetcher)
    fetcher._client = Client(cluster)
    fetcher._records = {tp: Buffered(rng.choice((0, 0.03, 0.05, 0.08))) for tp in tps if rng.random() < 0.1}
    fetcher._in_flight = {node for node in NODES if rng.random() < 0.3}
    fetcher._preferred_read_replica = {}
    if rng.random() < 0.3:
        expires = time.monotonic() + 60
        cluster._brokers = {node: object() for node in NODES}  # a cached replica is used while known
        for tp in rng.sample(tps, 3):
            fetcher._preferred_read_replica[tp] = (rng.choice(NODES), expires)
    fetcher._fetcher_timeout = 0.2
    fetcher._max_partition_fetch_bytes = rng.choice((1024, 1 << 20))
    fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes, fetcher._fetch_max_bytes = 20, 1, 50 << 20
    fetcher._isolation_level = rng.choice((0, 1))
    fetcher._client_rack = rng.choice((None, "rack-a"))
    for tp in tps:
        state = assignment.state_value(tp)
        if rng.random() < 0.85:
            state.reset_to(rng.randrange(10_000))
        if rng.random() < 0.1:
            state.pause()
    return fetcher


def _state(seed: int) -> tuple[Fetcher, Assignment]:
    """A randomised fetcher holding 1-59 topics of 1 or 3 partitions, and its assignment."""
    rng = random.Random(seed)
    tps = [TopicPartition(f"ticks.S{t}", p) for t in range(rng.randrange(1, 60)) for p in range(rng.choice((1, 3)))]
    assignment = Assignment(tps)
    return _fetcher(rng, tps, assignment), assignment


def _comparable(actions: Any) -> Any:
    requests, awaiting_reset, backoff, invalid_metadata, resume_futures = actions
    wire = [
        (node, r._max_wait_ms, r._min_bytes, r._max_bytes, r._isolation_level, r._rack_id, r.topics)
        for node, r in requests
    ]
    return wire, dict(awaiting_reset), backoff, invalid_metadata, [id(f) for f in resume_futures]


@pytest.mark.parametrize("seed", range(40))
async def test_the_walk_decides_exactly_what_aiokafka_decides(seed: int) -> None:
    fetcher, assignment = _state(seed)
    random.seed(seed)  # both shuffle each node's partitions: the same draws give the same order
    theirs = _comparable(Fetcher._get_actions_per_node(fetcher, assignment))
    random.seed(seed)
    ours = _comparable(fetch_walk.actions_per_node(fetcher, assignment))
    assert ours == theirs


async def test_the_states_cover_every_rule() -> None:
    """The randomised states above reach each outcome (else the comparison proves little)."""
    seen: set[str] = set()
    for seed in range(40):
        fetcher, assignment = _state(seed)
        requests, awaiting_reset, backoff, invalid, resume = fetch_walk.actions_per_node(fetcher, assignment)
        seen |= {"preferred"} if fetcher._preferred_read_replica else set()
        seen |= {"fetch"} if requests else set()
        seen |= {"reset"} if awaiting_reset else set()
        seen |= {"backoff"} if 0 < backoff < 0.2 else {"idle"} if backoff == 0.2 else set()
        seen |= {"invalid"} if invalid else set()
        seen |= {"paused"} if resume else set()
    assert seen == {"fetch", "reset", "backoff", "idle", "invalid", "paused", "preferred"}


async def test_with_debug_logging_on_the_walk_is_aiokafkas_own(caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(7)
    tps = [TopicPartition(f"ticks.S{t}", 0) for t in range(20)]
    assignment = Assignment(tps)
    fetcher = _fetcher(rng, tps, assignment)
    with caplog.at_level(logging.DEBUG, logger="aiokafka.consumer.fetcher"):
        fetch_walk.actions_per_node(fetcher, assignment)
    assert any("Adding fetch request for partition" in r.getMessage() for r in caplog.records)


async def test_a_consumer_walking_this_way_reads_every_record_in_order(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    walks = []
    walk = fetch_walk.actions_per_node

    def counted(fetcher: Fetcher, assignment: Assignment) -> fetch_walk.Actions:
        walks.append(assignment)
        return walk(fetcher, assignment)

    monkeypatch.setattr(fetch_walk, "actions_per_node", counted)
    topics = [f"walk-{random.randrange(1 << 30)}-{i}" for i in range(30)]
    await ensure_topics(kafka_bootstrap, topics, 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=2)
    await producer.start()
    try:
        for n in range(3_000):
            await producer.send(topics[n % len(topics)], str(n).encode())
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        fetch_walk.install(consumer._fetcher)
        enable_sessions(consumer._fetcher)  # as in the worker: the session wraps the walk
        got: dict[str, list[int]] = {topic: [] for topic in topics}
        deadline = time.monotonic() + 30
        while sum(map(len, got.values())) < 3_000 and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                got[tp.topic] += [int(r.value) for r in records]
    finally:
        await consumer.stop()
    assert got == {topic: list(range(i, 3_000, len(topics))) for i, topic in enumerate(topics)}
    assert walks
