"""A real 3-node KRaft cluster (replication 3, min ISR 2, acks=all): one broker SIGKILLed under a
running simulator-fed ingest and worker, then restarted. No tick is lost (what ingest parsed is
what the tick topics hold, record for record) and no alert is sent twice (issue 13).
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from plumbing.broker import KafkaCluster, free_port
from plumbing.kafka import symbol_partition
from plumbing.settings import BrokerSettings
from schemas.market import decode_ticks
from schemas.topics import HEALTH, OPPORTUNITIES, WORKER_STATS, ticks_topic, topic_name
from tests.helpers import consume_until, running, service_env

VENUES = "binance,bybit,okx"
SYMBOLS = ("BTC", "ETH", "SOL")
PARTITIONS = 3


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    cluster = KafkaCluster(BrokerSettings(), tmp_path_factory.mktemp("cluster"), size=3)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@dataclass
class Stack:
    namespace: str
    simulator: str
    metrics: str
    logs: Path

    def tails(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in sorted(self.logs.glob("*.log"))
        )


def _post(url: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b""), timeout=10) as response:
        assert response.status == 200


def _metrics(url: str) -> dict[str, float]:
    """Prometheus text -> {name: sum over label sets} for ingest's counters."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("arbstream_ingest_"):
            name, value = line.rsplit(" ", 1)
            family = name.split("{", 1)[0]
            totals[family] = totals.get(family, 0.0) + float(value)
    return totals


async def _leader_of(bootstrap: str, topic: str, partition: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    min_isr = {
        entry["config_names"]: entry["config_value"]
        for response in configs
        for resource in response.to_object()["resources"]
        for entry in resource["config_entries"]
    }.get("min.insync.replicas")
    assert min_isr == "2", min_isr  # with acks=all (the publisher's), a write needs two replicas
    for entry in described[0]["partitions"]:
        if entry["partition"] == partition:
            assert len(entry["replicas"]) == 3, entry  # created at the cluster's replication
            return int(entry["leader"])
    raise AssertionError(f"no partition {partition} in {described}")


def _wait(what: str, timeout_s: float, check: object) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _settled(metrics_url: str) -> dict[str, float]:
    """Ingest's counters once nothing is in flight (delivered stops moving), simulator stopped."""
    last: dict[str, float] = {}
    for _ in range(60):
        now = _metrics(metrics_url)
        if now and now == last:
            return now
        last = now
        time.sleep(1.0)
    raise AssertionError(f"ingest's delivery counters kept moving: {last}")


def _plant_dislocations(simulator: str, rounds: int) -> None:
    for i in range(rounds):
        base = SYMBOLS[i % 2]
        _post(f"{simulator}/control/dislocate?base={base}&venue=okx&bps=80&seconds=2")
        time.sleep(2.5)


def test_broker_killed_mid_stream_loses_no_tick_and_duplicates_no_alert(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    bootstrap = kafka_cluster.bootstrap
    sim_port, metrics_port = free_port(), free_port()
    stack = Stack(
        f"t{uuid.uuid4().hex[:10]}", f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{metrics_port}", tmp_path
    )
    env = service_env(
        bootstrap,
        stack.namespace,
        ARBSTREAM_VENUES=VENUES,
        ARBSTREAM_SYMBOLS=",".join(SYMBOLS),
        ARBSTREAM_INSTRUMENTS_CACHE_DIR=str(tmp_path / "cache"),
        ARBSTREAM_SIMULATOR_PORT=str(sim_port),
        ARBSTREAM_SIMULATOR_URL=stack.simulator,
        ARBSTREAM_SIMULATOR_AUTO_DISLOCATIONS="false",
        ARBSTREAM_METRICS_PORT=str(metrics_port),
        ARBSTREAM_WORKER_DATA_DIR=str(tmp_path / "worker"),
        ARBSTREAM_COOLDOWN_S="0",  # every episode alerts: many alerts to find a duplicate among
        ARBSTREAM_TOPIC_PARTITIONS=str(PARTITIONS),  # leaders spread over the brokers
    )
    with ExitStack() as processes:
        sim = processes.enter_context(running(["simulate"], env, tmp_path / "simulate.log"))
        _wait("the simulator", 30, lambda: _metrics_ok(f"{stack.simulator}/control/status"))
        processes.enter_context(running(["ingest"], env, tmp_path / "ingest.log"))
        worker = processes.enter_context(running(["worker"], env, tmp_path / "worker.log"))
        try:
            _wait(
                "ticks delivered", 60, lambda: _metrics(stack.metrics).get("arbstream_ingest_delivered_total", 0) > 200
            )
            victim_id = _btc_leader(bootstrap, stack.namespace)
            victim = kafka_cluster.nodes[victim_id - 1]
            _plant_dislocations(stack.simulator, 2)
            victim.kill()  # SIGKILL: a crash, not a controlled shutdown
            survivors = ",".join(node.bootstrap for node in kafka_cluster.nodes if node is not victim)
            _wait("BTC led by another node", 30, lambda: _led_by_other(survivors, stack.namespace, victim_id))
            before = _metrics(stack.metrics)["arbstream_ingest_delivered_total"]
            _plant_dislocations(stack.simulator, 3)
            during = _metrics(stack.metrics)["arbstream_ingest_delivered_total"] - before
            assert during > 100, f"only {during} events delivered with one broker down"
            kafka_cluster.restart(victim)
            _plant_dislocations(stack.simulator, 2)
            sim.kill()  # the flow stops (its open sockets would hold a graceful stop): all parsed is published
            sim.wait(20)
            counters = _settled(stack.metrics)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{stack.tails()}") from exc
        assert worker.poll() is None, stack.tails()
    _check_topics(bootstrap, stack, counters)


def _metrics_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def _led_by_other(bootstrap: str, namespace: str, node_id: int) -> bool:
    try:
        return _btc_leader(bootstrap, namespace) != node_id
    except KafkaError:  # the admin client asked the dead node: ask again
        return False


def _btc_leader(bootstrap: str, namespace: str) -> int:
    """The node leading BTC's tick partition: killing it forces a leader change under the producer."""
    return asyncio.run(_leader_of(bootstrap, ticks_topic("BTC", namespace), symbol_partition(b"BTC", PARTITIONS)))


def _check_topics(bootstrap: str, stack: Stack, counters: dict[str, float]) -> None:
    parsed = int(counters["arbstream_ingest_events_total"])
    delivered = int(counters["arbstream_ingest_delivered_total"])
    assert counters["arbstream_ingest_lost_total"] == 0, counters
    assert parsed > 500, counters
    tick_topics = [ticks_topic(s, stack.namespace) for s in SYMBOLS]
    health = topic_name(HEALTH, stack.namespace)
    opportunities = topic_name(OPPORTUNITIES, stack.namespace)
    worker_stats = topic_name(WORKER_STATS, stack.namespace)

    def on_topics(records: list[object]) -> int:
        # A record re-sent after a lost acknowledgement is the same bytes: count each once.
        values = {r.value for r in records if r.topic in tick_topics}  # type: ignore[attr-defined]
        return sum(len(decode_ticks(v)) for v in values)

    topics = [*tick_topics, health, opportunities, worker_stats]
    records = asyncio.run(consume_until(bootstrap, topics, lambda rs: on_topics(rs) >= parsed, 60))
    assert on_topics(records) == parsed, (on_topics(records), counters)
    # Ingest keeps reporting its (now failing) venue connections after the counters were read.
    health_records = len({r.value for r in records if r.topic == health})
    assert health_records >= delivered - parsed > 0, (health_records, counters)
    _check_sequences(records, tick_topics)
    alerts = [msgspec.json.decode(r.value)["event_id"] for r in records if r.topic == opportunities]
    # Whether a worker without alerts stopped reading or never got its alerts out: its own counters.
    stats = [r.value.decode() for r in records if r.topic == worker_stats][-3:]
    assert alerts, "no alert; the worker's last worker-stats records:\n" + "\n".join(stats) + "\n" + stack.tails()
    duplicated = [event_id for event_id, n in Counter(alerts).items() if n > 1]
    assert not duplicated, duplicated


def _check_sequences(records: list[object], tick_topics: list[str]) -> None:
    """Where the venue numbers its updates, no (instrument, sequence) appears in two records."""
    seen: Counter[tuple[str, int]] = Counter()
    for value in {r.value for r in records if r.topic in tick_topics}:  # type: ignore[attr-defined]
        for tick in decode_ticks(value):
            sequence = getattr(tick, "sequence", None)
            if sequence is not None:
                seen[(tick.instrument_id, sequence)] += 1
    assert seen, "no venue sent sequence numbers"
    assert max(seen.values()) == 1, [key for key, n in seen.items() if n > 1][:5]
