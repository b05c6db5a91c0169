"""The real broker: produce/consume through aiokafka, lifecycle of `arbstream broker`, a Faust worker."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from plumbing.broker import INDEX_INTERVAL_BYTES, LocalKafka, free_port
from plumbing.kafka import ensure_topics
from plumbing.settings import BrokerSettings
from processors.app import CHANGELOG_CONFIG
from schemas.market import Quote, decode_prices, encode
from schemas.topics import PRICES, ticks_topic, topic_name
from tests.helpers import REPO_ROOT, consume_until, running, service_env

pytestmark = pytest.mark.integration


async def test_keyed_produce_consume_roundtrip(kafka_bootstrap: str, namespace: str) -> None:
    topic = topic_name("roundtrip", namespace)
    await ensure_topics(kafka_bootstrap, [topic], partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=f"k{i % 4}".encode(), value=f"v{i}".encode()) for i in range(200)]
        await producer.flush()
        partitions = {(await f).partition for f in futures}
    finally:
        await producer.stop()
    records = await consume_until(kafka_bootstrap, [topic], lambda rs: len(rs) >= 200, timeout_s=30)
    assert len(records) == 200
    assert len(partitions) > 1  # keys spread over partitions
    for key in (b"k0", b"k1", b"k2", b"k3"):
        values = [int(r.value[1:]) for r in records if r.key == key]
        assert values == sorted(values) and len(values) == 50  # per-key order kept


def _read_until(proc: subprocess.Popen[str], pattern: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    seen = ""
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        if re.search(pattern, seen):
            return seen
    raise AssertionError(f"{pattern!r} not seen in {timeout_s}s; output:\n{seen}")


def _jvm_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")


def test_broker_command_lifecycle_and_port_conflict(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ARBSTREAM_KAFKA_PORT": str(free_port()),
        "ARBSTREAM_KAFKA_CONTROLLER_PORT": str(free_port()),
        "ARBSTREAM_KAFKA_DATA_DIR": str(tmp_path / "data"),
    }
    cmd = [sys.executable, "-m", "arbstream.cli", "broker"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
    try:
        out = _read_until(first, r"ready at .* pid (\d+)", 120)
        jvm_pid = int(re.search(r"pid (\d+)", out).group(1))  # type: ignore[union-attr]
        assert _jvm_alive(jvm_pid)
        started = time.monotonic()
        second = subprocess.run(
            cmd,
            env={**env, "ARBSTREAM_KAFKA_DATA_DIR": str(tmp_path / "other")},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO_ROOT,
        )
        assert time.monotonic() - started < 30
        assert second.returncode == 2
        assert "already in use" in second.stderr
        first.send_signal(15)
        assert first.wait(60) == 0
        assert not _jvm_alive(jvm_pid)
    finally:
        if first.poll() is None:
            first.kill()


async def test_worker_publishes_the_latest_quote_per_instrument(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    topic = ticks_topic("BTC", namespace)
    await ensure_topics(kafka_bootstrap, [topic], partitions=3)  # the worker below is told 3
    quotes = [
        Quote(
            instrument_id="BTC-USDT-PERP@binance",
            venue="binance",
            native_symbol="BTCUSDT",
            base="BTC",
            bid=Decimal(bid),
            bid_size=Decimal("1.5"),
            ask=Decimal(bid) + Decimal("0.1"),
            ask_size=Decimal("2"),
            exchange_ts_ns=1_700_000_000_000_000_000 + i,
            receipt_ts_ns=1_700_000_000_001_000_000 + i,
        )
        for i, bid in enumerate(["64000.1", "64000.2", "64000.3"])
    ]
    env = service_env(kafka_bootstrap, namespace, ARBSTREAM_TOPIC_PARTITIONS="3")
    instrument = quotes[-1].instrument_id.encode()
    with running(["worker"], env, tmp_path / "worker.log") as worker:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for quote in quotes:
                await producer.send_and_wait(topic, key=quote.instrument_id.encode(), value=encode(quote))
        finally:
            await producer.stop()
        prices = topic_name(PRICES, namespace)
        changelog = topic_name("arbstream-symbols-changelog", namespace)
        await wait_for_topic(kafka_bootstrap, prices)  # created by the worker, never auto-created by us

        def latest_is_last(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
            return any(decode_prices(r.value) == [quotes[-1]] for r in records)

        records = await consume_until(kafka_bootstrap, [prices], latest_is_last, 90)
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
    # One record per symbol, keyed by it, holding its one instrument's latest quote (decision 0041).
    mine = [decode_prices(r.value) for r in records]
    assert mine[-1] == [quotes[-1]], (tmp_path / "worker.log").read_text()[-3000:]
    assert {r.key for r in records} == {quotes[-1].base.encode()}
    assert all(len(q) == 1 and q[0].instrument_id == instrument.decode() for q in mine)
    for compacted in (prices, changelog):
        configs = await topic_configs(kafka_bootstrap, compacted)
        assert configs["cleanup.policy"] == "compact", compacted
        assert {k: configs[k] for k in CHANGELOG_CONFIG} == CHANGELOG_CONFIG, compacted


async def wait_for_topic(bootstrap: str, topic: str, timeout_s: float = 60) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while topic not in await admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} not created in {timeout_s}s"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    (resource,) = response.resources
    return {entry[0]: entry[1] for entry in resource[4]}


async def test_restart_on_same_data_dir_keeps_data(tmp_path: Path) -> None:
    settings = BrokerSettings(kafka_data_dir=tmp_path / "data")
    broker = LocalKafka(settings, port=free_port(), controller_port=free_port())
    await asyncio.to_thread(broker.start)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        await producer.send_and_wait("kept", b"survives a restart", key=b"k")
        await producer.stop()
        # The local broker indexes every 64 KiB of a partition's log (its CPU on the whole market).
        assert (await topic_configs(broker.bootstrap, "kept"))["index.interval.bytes"] == str(INDEX_INTERVAL_BYTES)
    finally:
        await asyncio.to_thread(broker.stop)
    again = LocalKafka(settings, port=free_port(), controller_port=free_port())
    await asyncio.to_thread(again.start)
    try:
        records = await consume_until(again.bootstrap, ["kept"], lambda rs: len(rs) >= 1, 30)
        assert [r.value for r in records] == [b"survives a restart"]
    finally:
        await asyncio.to_thread(again.stop)
