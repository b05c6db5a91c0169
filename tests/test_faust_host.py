"""The Faust host's per-batch routing (records of partitions revoked meanwhile), its member id, and
how its consumer finds its committed offsets after an assignment (real broker)."""

from __future__ import annotations

import asyncio
import socket
import time
from types import SimpleNamespace
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from plumbing.kafka import ensure_topics
from processors.faust_app import create_app
from processors.faust_tuning import seek_to_committed_in_one_request
from processors.settings import WorkerSettings
from schemas.market import encode_ticks
from tests.test_engine import quote

SETTINGS = WorkerSettings(kafka_bootstrap="127.0.0.1:1", namespace="t1")


def _message(tp: TP, offset: int) -> Any:
    value = encode_ticks([quote("binance", "100", "100.1", 1)])
    return SimpleNamespace(tp=tp, offset=offset, key=b"BTC", value=value, timestamp=1.0)


async def test_records_of_a_partition_revoked_before_they_were_handled_are_dropped_not_loaded() -> None:
    """Faust can hand over records it fetched before a rebalance took their partition away: the
    host must neither load the symbol (a slot nobody would drop) nor forward them."""
    app, host = create_app(SETTINGS, "127.0.0.1:1", ["t1.ticks.BTC"])
    gone, kept = TP("t1.ticks.BTC", 0), TP("t1.ticks.ETH", 0)
    cast(Any, app.consumer).assignment = lambda: {kept}
    sent: list[tuple[str, bytes]] = []

    async def send(topic: str, symbol: bytes, value: bytes, key: bytes | None = None) -> None:
        sent.append((topic, symbol))

    cast(Any, host)._send = send
    host._foreign.add(kept)  # so the kept partition needs no rebuild read (no broker here)
    await host.handle([_message(gone, 5), _message(gone, 6)])
    assert (host.engine.slots, host._owned, sent) == ({}, {}, [])
    assert host.engine.counters.processed == 0


class _Subscription:
    def __init__(self, assigned: set[TP]) -> None:
        self.assigned = assigned

    def is_assigned(self, tp: TP) -> bool:
        return tp in self.assigned


class _AiokafkaConsumer:
    """aiokafka's consumer as Faust's ``highwater`` reads it: it asserts the partition is assigned."""

    def __init__(self, assigned: set[TP]) -> None:
        self._subscription = _Subscription(assigned)

    def highwater(self, tp: TP) -> int:
        assert self._subscription.is_assigned(tp), "Partition is not assigned"
        return 42


def test_the_high_water_mark_of_a_partition_revoked_meanwhile_is_none_not_a_crash() -> None:
    create_app(SETTINGS, "127.0.0.1:1", ["t1.ticks.BTC"])
    held = TP("t1.ticks.BTC", 0)
    consumer = _AiokafkaConsumer({held})
    thread = SimpleNamespace(consumer=SimpleNamespace(in_transaction=False), _ensure_consumer=lambda: consumer)
    highwater = faust_aiokafka.AIOKafkaConsumerThread.highwater
    assert highwater(cast(Any, thread), held) == 42
    assert highwater(cast(Any, thread), TP("t1.ticks.ETH", 0)) is None


def test_the_static_member_id_takes_the_host_name_and_unset_means_dynamic() -> None:
    # A scaled compose service gives every replica one environment: '{hostname}' keeps the ids unique.
    templated = WorkerSettings(kafka_bootstrap="127.0.0.1:1", worker_instance_id="{hostname}-worker")
    assert templated.worker_instance_id == f"{socket.gethostname()}-worker"
    assert WorkerSettings(kafka_bootstrap="127.0.0.1:1", worker_instance_id="w-7").worker_instance_id == "w-7"
    assert WorkerSettings(kafka_bootstrap="127.0.0.1:1", worker_instance_id="").worker_instance_id is None


async def test_seek_to_committed_reads_every_partition_s_offset_in_one_request(
    kafka_bootstrap: str, namespace: str
) -> None:
    """aiokafka asks one partition per round trip (2.3 s of each worker restart on the whole
    market); the patched consumer asks once and lands on the same offsets."""
    topics = [f"{namespace}.s{index}" for index in range(40)]
    await ensure_topics(kafka_bootstrap, topics, 1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, b"x") for topic in topics for _ in range(3)])
    finally:
        await producer.stop()
    tps = [TopicPartition(topic, 0) for topic in topics]
    committed = {tp: OffsetAndMetadata(index % 4, "") for index, tp in enumerate(tps) if index % 4}
    group = f"{namespace}-g"
    seen: list[dict[TopicPartition, int | None]] = []
    for patched in (False, True):
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(tps)
            if not patched:
                await consumer.commit(committed)
            asked: list[int] = []
            fetch = consumer._coordinator.fetch_committed_offsets

            async def counted(partitions: list[TopicPartition], fetch: Any = fetch, asked: list[int] = asked) -> Any:
                asked.append(len(partitions))
                return await fetch(partitions)

            consumer._coordinator.fetch_committed_offsets = counted
            if patched:
                seek_to_committed_in_one_request(consumer)
            seen.append(await consumer.seek_to_committed())
            positions = {tp: await consumer.position(tp) for tp in tps}
            assert asked == ([40] if patched else [1] * 40)
        finally:
            await consumer.stop()
        # Committed partitions resume there; the others (no commit) from the reset policy's end.
        assert positions == {tp: committed[tp].offset if tp in committed else 3 for tp in tps}
    assert seen[0] == seen[1] == {tp: committed[tp].offset if tp in committed else None for tp in tps}


def _behind_host() -> tuple[Any, list[TP]]:
    """A host with backlog jumps at 200 ms owning BTC, ETH and SOL, its per-batch work stubbed."""
    settings = WorkerSettings(kafka_bootstrap="127.0.0.1:1", namespace="t1", worker_skip_behind_ms=200)
    _app, host = create_app(settings, "127.0.0.1:1", ["t1.ticks.BTC", "t1.ticks.ETH", "t1.ticks.SOL"])
    tps = [TP(f"t1.ticks.{base}", 0) for base in ("BTC", "ETH", "SOL")]
    for tp in tps:
        host._owned[tp] = tp.topic.rsplit(".", 1)[1]

    async def nothing_new(grouped: Any) -> set[TP]:
        return set()

    cast(Any, host)._take_over = nothing_new
    cast(Any, host)._apply = lambda *args: asyncio.sleep(0)
    cast(Any, host).write_rows = lambda *args, **kwargs: 0
    return host, tps


def _at(tp: TP, offset: int, age_s: float) -> Any:
    return SimpleNamespace(tp=tp, offset=offset, key=None, value=b"", timestamp=time.time() - age_s)


async def test_a_worker_behind_jumps_at_once_every_partition_it_last_saw_that_long_ago() -> None:
    """One partition found behind means the others' records wait as long in the consumer's buffer:
    those last seen longer ago than the threshold jump in the same request, the fresh ones do not."""
    host, (btc, eth, sol) = _behind_host()
    jumps: list[set[TP]] = []

    async def jump(consumer: Any, lag_ms: dict[TP, int]) -> None:
        jumps.append(set(lag_ms))

    cast(Any, host.skipper).jump = jump
    await host.handle([_at(btc, 3, 0.05), _at(eth, 7, 0.05), _at(sol, 9, 5.0)])  # SOL behind, last seen 5 s ago
    await host._jumping
    await host.handle([_at(btc, 4, 0.0), _at(eth, 8, 1.0)])  # ETH behind now; SOL still last seen 5 s ago
    await host._jumping
    assert jumps == [{sol}, {eth, sol}]  # BTC is fresh: never jumped


async def test_the_agent_does_not_wait_for_a_jump_and_starts_one_at_a_time() -> None:
    """The end-offset request and the seek took most of a throttled worker's time per batch."""
    host, (btc, _, _) = _behind_host()
    release = asyncio.Event()
    started: list[set[TP]] = []

    async def jump(consumer: Any, lag_ms: dict[TP, int]) -> None:
        started.append(set(lag_ms))
        await release.wait()

    cast(Any, host.skipper).jump = jump
    await asyncio.wait_for(host.handle([_at(btc, 3, 5.0)]), 1.0)  # returns with the jump still on
    await asyncio.sleep(0)
    await asyncio.wait_for(host.handle([_at(btc, 4, 5.0)]), 1.0)
    assert started == [{btc}] and not host._jumping.done()
    release.set()
    await host._jumping
    await host.handle([_at(btc, 5, 5.0)])
    await host._jumping
    assert started == [{btc}, {btc}]
