"""Live vs replay: a backtest of a recorded live run finds the live run's opportunities, by event id."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from arbstream.backtest import FileSource, TopicSource, backtest
from ingest.replay_topics import OffsetRange, TopicRange, read_range
from plumbing.broker import free_port
from plumbing.errors import ConfigError
from plumbing.kafka import ensure_topics, symbol_partition
from schemas.arbitrage import Opportunity, decode_event
from schemas.market import Health, HealthState, Quote, encode, encode_ticks
from schemas.topics import HEALTH, HEALTH_CONFIG, OPPORTUNITIES, ticks_topic, topic_name
from tests.helpers import TopicWatcher, running, service_env, wait_http
from tests.test_backtest import MS, T0, S, market

pytestmark = pytest.mark.integration

PLANTS = (("BTC", "okx", 80), ("ETH", "bybit", -80), ("BTC", "binance", 90))
SETTINGS = {"min_ticks": "2", "cooldown_s": "5"}


async def test_backtest_of_a_recorded_live_run_reproduces_its_alerts(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    port = free_port()
    recording = tmp_path / "rec"
    env = service_env(
        kafka_bootstrap,
        namespace,
        ARBSTREAM_SIMULATOR_PORT=str(port),
        ARBSTREAM_SIMULATOR_URL=f"http://127.0.0.1:{port}",
        ARBSTREAM_SIMULATOR_AUTO_DISLOCATIONS="false",
        ARBSTREAM_SIMULATOR_RATE="2000",
        ARBSTREAM_VENUES="binance,okx,bybit",
        ARBSTREAM_SYMBOLS="BTC,ETH",
        ARBSTREAM_INSTRUMENTS_CACHE_DIR=str(tmp_path / "cache"),
        ARBSTREAM_WORKER_DATA_DIR=str(tmp_path / "worker"),
        # A worker that falls behind conflates (newest quote wins, counted): on a loaded test machine
        # that would make live differ from the exact replay, which is what conflation is for.
        ARBSTREAM_WORKER_CONFLATE_AFTER_MS="0",
        ARBSTREAM_WORKER_SKIP_BEHIND_MS="0",  # an exact replay (tests.helpers sets it too)
        **{f"ARBSTREAM_{k.upper()}": v for k, v in SETTINGS.items()},
    )
    opportunities = topic_name(OPPORTUNITIES, namespace)
    with (
        running(["simulate"], env, tmp_path / "sim.log"),
        running(["worker"], env, tmp_path / "worker.log"),
    ):
        await wait_http(f"http://127.0.0.1:{port}/control/status")
        with running(["record", "--publish", "--out", str(recording)], env, tmp_path / "record.log"):
            async with TopicWatcher(kafka_bootstrap, [opportunities]) as watcher, aiohttp.ClientSession() as http:
                await asyncio.sleep(4)
                for base, venue, bps in PLANTS:
                    url = f"http://127.0.0.1:{port}/control/dislocate?base={base}&venue={venue}&bps={bps}&seconds=2"
                    async with http.post(url) as response:
                        assert response.status == 200
                    await asyncio.sleep(7)  # longer than the cooldown: every plant alerts
                await watcher.wait_for(lambda rs: len(rs) >= len(PLANTS), 30, "an alert per planted dislocation")
                await asyncio.sleep(2)
    live = [decode_event(r.value) for r in watcher.records]
    live_ids = sorted(e.event_id for e in live if isinstance(e, Opportunity))
    assert len(live_ids) == len(PLANTS), live_ids

    written = backtest(FileSource([recording]), [("base", SETTINGS)], tmp_path / "report")
    replayed = json.loads(written[0].read_bytes())["runs"]["base"]["alerts"]
    assert sorted(a["event_id"] for a in replayed) == live_ids


async def test_backtest_reads_the_tick_topics_between_two_times(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    quotes = market([(5, 8), (40, 43)])
    topic = ticks_topic("BTC", namespace)
    await ensure_topics(kafka_bootstrap, [topic], 3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for q in quotes:  # record time = receipt time, as ingest publishes
            partition = symbol_partition(b"BTC", 3)
            await producer.send(topic, encode_ticks([q]), b"BTC", partition, q.receipt_ts_ns // MS)
        await producer.flush()
    finally:
        await producer.stop()
    counts = TopicRange()
    everything = await read_range(kafka_bootstrap, namespace, None, None, counts=counts)
    assert [e.receipt_ts_ns for e in everything] == [q.receipt_ts_ns for q in quotes]
    assert (counts.records, counts.ticks, counts.undecodable) == (1200, 1200, 0)
    window = await read_range(kafka_bootstrap, namespace, T0 + 30 * S, T0 + 50 * S)
    assert len(window) == 400 and window[0].receipt_ts_ns == T0 + 30 * S

    source = TopicSource(kafka_bootstrap, namespace, str(T0 + 30 * S), None, ["BTC"])
    written = await asyncio.to_thread(backtest, source, [("base", SETTINGS)], tmp_path / "report")
    result = json.loads(written[0].read_bytes())
    assert [a["event_id"] for a in result["runs"]["base"]["alerts"]] == [f"BTC:binance->okx:{T0 + 40 * S + MS}"]
    assert result["recording"]["sources"] == [f"topics:{namespace}"] and result["recording"]["ticks"] == 600
    # `arbstream replay --topics` copies the range into another namespace, times kept.
    target = f"{namespace}-copy"
    env = service_env(kafka_bootstrap, target)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "arbstream.cli", "replay", "--topics", namespace, "--from", str(T0 + 30 * S)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    copied = await read_range(kafka_bootstrap, target, None, None)
    assert [(e.instrument_id, e.receipt_ts_ns) for e in copied if isinstance(e, Quote)] == [
        (q.instrument_id, q.receipt_ts_ns) for q in quotes[600:]
    ]


async def test_a_topics_range_in_offsets_carries_in_the_health_of_before_it(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """okx goes stale at 2 s and recovers at 30 s; a range starting at offset 100 (5 s, inside the
    stale spell) must still see okx stale: only the 40 s dislocation alerts, as in a full read."""
    quotes = market([(5, 8), (40, 43)])
    topic, health_topic = ticks_topic("BTC", namespace), topic_name(HEALTH, namespace)
    await ensure_topics(kafka_bootstrap, [topic], 1)
    await ensure_topics(kafka_bootstrap, [health_topic], 1, HEALTH_CONFIG)
    stale, back = (
        Health(venue="okx", connection="okx-0", state=state, exchange_ts_ns=T0 + s * S, receipt_ts_ns=T0 + s * S)
        for s, state in ((2, HealthState.STALE), (30, HealthState.STREAMING))
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for h in (stale, back):
            await producer.send(health_topic, encode(h), b"okx", 0, h.receipt_ts_ns // MS)
        for q in quotes:
            await producer.send(topic, encode_ticks([q]), b"BTC", 0, q.receipt_ts_ns // MS)
        await producer.flush()
    finally:
        await producer.stop()

    counts = TopicRange()
    window = await read_range(kafka_bootstrap, namespace, None, None, counts=counts, offsets=OffsetRange(100, 500))
    # The stale report from before the range first; the recovery (after the range's last tick) left out.
    assert window == [stale, *quotes[100:500]]
    assert counts.partitions == {f"{topic}[0]": (100, 500), f"{health_topic}[0]": (0, 2)}
    by_time = await read_range(kafka_bootstrap, namespace, T0 + 3 * S, T0 + 50 * S)
    assert by_time[:2] == [stale, quotes[60]] and back in by_time and len(by_time) == 2 + 940
    with pytest.raises(ConfigError, match="not both"):
        await read_range(kafka_bootstrap, namespace, T0, None, offsets=OffsetRange(start=1))

    source = TopicSource(kafka_bootstrap, namespace, None, None, ["BTC"], OffsetRange(start=100))
    written = await asyncio.to_thread(backtest, source, [("base", SETTINGS)], tmp_path / "report")
    result = json.loads(written[0].read_bytes())["runs"]["base"]
    assert [a["event_id"] for a in result["alerts"]] == [f"BTC:binance->okx:{T0 + 40 * S + MS}"]
    assert result["counts"]["health_events"] == 2

    # `arbstream replay --topics NS --from-offset/--to-offset` copies the same range.
    target = f"{namespace}-copy"
    command = ["replay", "--topics", namespace, "--from-offset", "100", "--to-offset", "500"]
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "arbstream.cli", *command],
        env=service_env(kafka_bootstrap, target),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    copied = await read_range(kafka_bootstrap, target, None, None)
    assert [(type(e).__name__, e.receipt_ts_ns) for e in copied] == [("Health", stale.receipt_ts_ns)] + [
        ("Quote", q.receipt_ts_ns) for q in quotes[100:500]
    ]
