"""The worker's Faust host: its adjustments checked against the Faust it runs on, the discovery of
new tick topics, and the batch grouping the agent hands to the engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.transport import consumer as faust_consumer
from faust.transport.conductor import Conductor
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.utils import terminal as faust_terminal

from ingest.publisher import tick_records
from plumbing import fetch_walk
from plumbing.fetch_sessions import FetchSessions
from plumbing.kafka import ensure_topics, symbol_partitioner
from processors.discovery import matching, split_by_partitions
from processors.faust_app import create_app
from processors.faust_host import TickRecord, by_partition
from processors.faust_tuning import _ORIGINAL, MAX_POLL_RECORDS, PARTITION_FETCH_BYTES
from processors.settings import WorkerSettings
from schemas.arbitrage import Opportunity, decode_event
from schemas.topics import OPPORTUNITIES, ticks_pattern, ticks_topic, topic_name
from tests.helpers import TopicWatcher, running
from tests.test_processors_pipeline import dislocation, worker_env

SETTINGS = WorkerSettings(
    kafka_bootstrap="127.0.0.1:1",
    worker_fetch_max_wait_ms=20,
    worker_fetch_min_bytes=4096,
    worker_resubscribe_delay_s=0.5,
    namespace="t1",
)


async def test_fetch_wait_patch_reaches_the_consumer_faust_builds() -> None:
    app, _ = create_app(SETTINGS, "127.0.0.1:1", ["t1.ticks.BTC"])
    consumer, transport = cast(Any, app.consumer), cast(Any, app.transport)
    thread = faust_aiokafka.AIOKafkaConsumerThread(consumer)
    patched = thread._create_worker_consumer(transport)
    original = getattr(faust_aiokafka.AIOKafkaConsumerThread, _ORIGINAL)(thread, transport)
    # Faust still hard-codes 1.5 s (if this fails, a Faust setting may now replace the patch).
    assert (original._fetch_max_wait_ms, patched._fetch_max_wait_ms) == (1500, 20)
    assert (original._fetch_min_bytes, patched._fetch_min_bytes) == (1, 4096)


async def test_the_consumer_faust_builds_fetches_in_sessions_once_started(kafka_bootstrap: str, namespace: str) -> None:
    """The fetcher exists only after start(): the patches must reach the started consumer's. It
    walks its partitions with plumbing.fetch_walk either way (under the session when there is one)."""
    for sessions_on in (True, False):
        settings = SETTINGS.model_copy(update={"worker_fetch_sessions": sessions_on})
        app, _ = create_app(settings, kafka_bootstrap, [f"{namespace}.ticks.BTC"])
        consumer, transport = cast(Any, app.consumer), cast(Any, app.transport)
        built = faust_aiokafka.AIOKafkaConsumerThread(consumer)._create_worker_consumer(transport)
        await built.start()
        try:
            assert isinstance(getattr(built._fetcher, "_arbstream_sessions", None), FetchSessions) is sessions_on
            walked: list[object] = []
            with pytest.MonkeyPatch.context() as patch:
                stand_in = lambda fetcher, assignment, seen=walked: seen.append(assignment)  # noqa: E731
                patch.setattr(fetch_walk, "actions_per_node", stand_in)
                with contextlib.suppress(TypeError):  # the stand-in returns nothing to unpack
                    built._fetcher._get_actions_per_node("assignment")
            assert walked == ["assignment"]
        finally:
            await built.stop()


async def test_the_consumer_faust_builds_holds_at_most_128_kib_per_partition_and_polls_2000_records() -> None:
    """aiokafka holds a fetched chunk per partition until the agent takes it: at Faust's 1 MiB
    default, a worker behind on the whole market (1,440 partitions) could hold 1.4 GiB, and Faust
    took all of it into Python objects in one ``getmany`` (no poll limit by default; issue 13)."""
    app, _ = create_app(SETTINGS, "127.0.0.1:1", ["t1.ticks.BTC"])
    consumer, transport = cast(Any, app.consumer), cast(Any, app.transport)
    built = faust_aiokafka.AIOKafkaConsumerThread(consumer)._create_worker_consumer(transport)
    assert built._max_partition_fetch_bytes == PARTITION_FETCH_BYTES == 128 * 1024
    assert 1_440 * built._max_partition_fetch_bytes <= 180 * 2**20
    assert built._max_poll_records == MAX_POLL_RECORDS == 2_000


async def test_a_record_batch_larger_than_the_partition_fetch_limit_still_arrives_whole(
    kafka_bootstrap: str, namespace: str
) -> None:
    """The limit only paces a partition: a batch bigger than it (here ~300 KiB, one linger) comes
    whole, never skipped, though other partitions of the same fetch have data too."""
    topic = f"{namespace}.big-batches"
    await ensure_topics(kafka_bootstrap, [topic], 4)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=500, max_batch_size=1 << 20)
    await producer.start()
    try:
        sent = [await producer.send(topic, b"x" * 1024, partition=0) for _ in range(300)]
        sent += [await producer.send(topic, b"small", partition=p) for p in (1, 2, 3) for _ in range(50)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
    )
    await consumer.start()
    offsets: dict[int, list[int]] = {p: [] for p in range(4)}
    chunks: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while sum(map(len, offsets.values())) < 450 and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                offsets[tp.partition] += [r.offset for r in records]
                chunks += [len(records)] if tp.partition == 0 else []
    finally:
        await consumer.stop()
    assert offsets == {0: list(range(300)), 1: list(range(50)), 2: list(range(50)), 3: list(range(50))}
    # One fetch brought more than the limit's worth of 1 KiB records: the batch came whole.
    assert max(chunks) * 1024 > PARTITION_FETCH_BYTES


class FakeConsumerThread:
    """What Faust's consumer thread's ``_commit`` and livelock scan touch, recorded."""

    def __init__(self, assigned: set[TP]) -> None:
        self.assigned = assigned
        self.assignment_calls = 0
        self.committed: dict[Any, Any] = {}
        self.checked: list[TP] = []
        self.tp_last_committed_at: dict[TP, float] = {}
        self.should_stop = False
        self.log = logging.getLogger("fake")

    def assignment(self) -> set[TP]:
        self.assignment_calls += 1
        return set(self.assigned)

    def _ensure_consumer(self) -> FakeConsumerThread:
        return self

    async def commit(self, offsets: dict[Any, Any]) -> None:
        self.committed = offsets

    async def sleep(self, _: float) -> None:
        await asyncio.sleep(0)

    def verify_event_path(self, now: float, tp: TP) -> None:
        self.checked.append(tp)


async def test_commit_reads_the_assignment_once_and_commits_only_assigned_partitions() -> None:
    create_app(SETTINGS, "127.0.0.1:1", ["t1.ticks.BTC"])
    assigned = {TP(f"t1.ticks.S{i}", 0) for i in range(300)}
    thread = FakeConsumerThread(assigned)
    offsets = {**{tp: 7 for tp in assigned}, TP("t1.ticks.GONE", 0): 9}
    assert await faust_aiokafka.AIOKafkaConsumerThread._commit(cast(Any, thread), offsets) is True
    # Faust's own code ran (it builds aiokafka offsets); it called assignment() once per partition.
    assert {(tp.topic, tp.partition, m.offset) for tp, m in thread.committed.items()} == {
        (tp.topic, tp.partition, 7) for tp in assigned
    }
    assert thread.assignment_calls == 1
    assert set(thread.tp_last_committed_at) == assigned


async def test_livelock_scan_runs_at_most_every_interval_over_every_partition() -> None:
    create_app(SETTINGS.model_copy(update={"worker_livelock_check_s": 60.0}), "127.0.0.1:1", ["t1.ticks.BTC"])
    thread = FakeConsumerThread({TP(f"t1.ticks.S{i}", p) for i in range(500) for p in range(3)})
    scan = faust_aiokafka.Consumer.verify_all_partitions_active
    await scan(cast(Any, thread))
    assert sorted(thread.checked) == sorted(thread.assigned)
    await scan(cast(Any, thread))  # within the interval: nothing
    assert len(thread.checked) == 1_500


class FakeCommitter:
    """What Faust's ``Consumer._commit_offsets`` touches of its consumer, with a log that records."""

    in_transaction = False

    def __init__(self, assigned: set[TP]) -> None:
        self.assigned = assigned
        self.committed: dict[TP, int] = {}
        self._committed_offset: dict[TP, int] = {}
        self.logged: list[tuple[str, tuple[Any, ...]]] = []
        self.log = self
        self.app = self
        self.producer = self
        self.tables = self
        self.monitor = self

    def dev(self, message: str, *args: Any) -> None:
        self.logged.append((message, args))

    def info(self, message: str, *args: Any) -> None:
        self.logged.append((message, args))

    def assignment(self) -> set[TP]:
        return self.assigned

    async def flush(self) -> None:
        return None

    async def _commit(self, offsets: dict[TP, int]) -> bool:
        self.committed.update(offsets)
        return True

    def on_commit(self, offsets: dict[TP, int]) -> None:
        return None

    def on_tp_commit(self, offsets: dict[TP, int]) -> None:
        return None


async def test_commits_render_their_offset_table_only_when_the_log_line_is_formatted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_app(SETTINGS, "127.0.0.1:1", ["t1.ticks.BTC"])
    rendered: list[int] = []
    real = faust_terminal.logtable

    def counting_logtable(data: Any, **kwargs: Any) -> str:
        rendered.append(len(data))
        return str(real(data, **kwargs))

    monkeypatch.setattr(faust_terminal, "logtable", counting_logtable)
    assigned = {TP(f"t1.ticks.S{i}", 0) for i in range(3)}
    committer = FakeCommitter(assigned)
    assert await faust_consumer.Consumer._commit_offsets(cast(Any, committer), {tp: 5 for tp in assigned})
    assert committer.committed == {tp: 5 for tp in assigned}  # Faust's own code ran
    assert rendered == []  # the "dev" log line was never formatted: no table built
    message, args = committer.logged[0]
    assert message.startswith("COMMITTING OFFSETS")
    text = message % args
    assert rendered == [3] and all(f"t1.ticks.S{i}" in text for i in range(3)) and "Commit Offsets" in text


async def test_new_topics_are_subscribed_after_the_configured_delay_not_faust_s_45_s() -> None:
    app, _ = create_app(SETTINGS, "127.0.0.1:1", ["t1.ticks.BTC"])
    assert Conductor._resubscribe_sleep_lock_seconds == 45.0  # the attribute the setting overrides
    assert app.topics._resubscribe_sleep_lock_seconds == 0.5  # type: ignore[attr-defined]


def test_discovery_matches_only_the_namespace_s_tick_topics_and_their_partition_count() -> None:
    names = ["t1.ticks.BTC", "t1.ticks.1000PEPE", "t2.ticks.BTC", "ticks.ETH", "t1.ticks-x", "t1.opportunities"]
    assert matching(names, ticks_pattern("t1")) == ["t1.ticks.1000PEPE", "t1.ticks.BTC"]
    good, wrong = split_by_partitions({"t1.ticks.BTC": 3, "t1.ticks.SOL": 2}, 3)
    assert (good, wrong) == (["t1.ticks.BTC"], {"t1.ticks.SOL": 2})


async def test_the_worker_never_turns_the_root_logger_to_debug() -> None:
    app, _ = create_app(SETTINGS, "127.0.0.1:1", ["t1.ticks.BTC"])
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    worker = faust.Worker(app, loglevel="warning")
    worker.spinner = None  # as run_worker does
    try:
        worker._setup_logging()
        assert root.level == logging.WARNING
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@dataclass
class _Message:
    tp: TP
    offset: int
    key: bytes
    value: bytes
    timestamp: float


def test_a_batch_is_grouped_by_partition_in_offset_order_with_millisecond_timestamps() -> None:
    btc, eth = TP("t1.ticks.BTC", 1), TP("t1.ticks.ETH", 0)
    messages = [
        _Message(btc, 7, b"BTC", b"a", 1.5),
        _Message(eth, 3, b"ETH", b"b", 2.0),
        _Message(btc, 8, b"BTC", b"c", 2.25),
    ]
    assert by_partition(messages) == {  # type: ignore[arg-type]
        btc: [TickRecord(7, b"BTC", b"a", 1500), TickRecord(8, b"BTC", b"c", 2250)],
        eth: [TickRecord(3, b"ETH", b"b", 2000)],
    }


@pytest.mark.integration
async def test_a_symbol_whose_topic_appears_while_the_worker_runs_is_read_without_a_restart(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """The worker finds ``ticks.NEWCOIN`` by listing the cluster's topics (every 2 s here; 5 s by
    default) and resubscribes after 1 s: an alert within seconds, no restart."""
    env = {**worker_env(kafka_bootstrap, namespace, tmp_path, "BTC"), "ARBSTREAM_WORKER_DISCOVER_INTERVAL_MS": "2000"}
    topic = topic_name(OPPORTUNITIES, namespace)
    await ensure_topics(kafka_bootstrap, [topic], 3)
    with running(["worker"], env, tmp_path / "w.log"):
        await asyncio.sleep(8)  # joined, subscribed to the named topics only
        async with TopicWatcher(kafka_bootstrap, [topic]) as watcher:
            created = time.monotonic()
            await ensure_topics(kafka_bootstrap, [ticks_topic("NEWCOIN", namespace)], 3)
            ticks = dislocation("NEWCOIN", time.time_ns(), 100)
            for record in tick_records(ticks[:1], namespace) + tick_records(ticks[1:], namespace):
                await send_records(kafka_bootstrap, [record])
            await watcher.wait_for(lambda rs: len(rs) >= 1, 60, "an alert on the new symbol")
            delay_s = time.monotonic() - created
    (record,) = watcher.records
    alert = decode_event(record.value)
    assert isinstance(alert, Opportunity) and alert.symbol == "NEWCOIN"
    # Discovery + resubscription + one rebalance: 1.5-4 s; when Faust leaves the new partition
    # unfetched, the watch resubscribes after 10 s (seen: 12-25 s).
    assert delay_s < 45, delay_s
    assert "new tick topics" in (tmp_path / "w.log").read_text()


async def send_records(bootstrap: str, records: list[tuple[str, bytes, bytes, int]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, partitioner=symbol_partitioner)
    await producer.start()
    try:
        for topic, key, value, _ in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


@pytest.mark.integration
async def test_a_replacement_worker_rebuilds_quotes_from_the_last_seconds_of_ticks(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """Quotes are not in the changelog: after a SIGKILL the new owner re-reads the ticks before the
    committed offset, so a quote sent only to the dead worker still makes the next pair."""
    env = {
        **worker_env(kafka_bootstrap, namespace, tmp_path, "BTC"),
        "ARBSTREAM_WORKER_COMMIT_INTERVAL_MS": "100",
        # The re-read window is the longest quote age + 1 s: wide enough for a worker's start-up here.
        "ARBSTREAM_MAX_QUOTE_AGE_MS": "30000",
    }
    topic = topic_name(OPPORTUNITIES, namespace)
    await ensure_topics(kafka_bootstrap, [topic], 3)
    t0 = time.time_ns()
    binance, okx_high, okx_again = dislocation("BTC", t0, 100)[:3]
    with running(["worker"], {**env, "ARBSTREAM_WORKER_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log") as first:
        await asyncio.sleep(6)
        await send_records(kafka_bootstrap, tick_records([binance], namespace))
        await asyncio.sleep(3)  # processed and committed
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    async with TopicWatcher(kafka_bootstrap, [topic]) as watcher:
        with running(["worker"], {**env, "ARBSTREAM_WORKER_DATA_DIR": str(tmp_path / "b")}, tmp_path / "b.log"):
            await asyncio.sleep(4)
            for tick in (okx_high, okx_again):  # okx's two evaluations against binance's rebuilt quote
                await send_records(kafka_bootstrap, tick_records([tick], namespace))
            await watcher.wait_for(lambda rs: len(rs) >= 1, 60, "an alert using the rebuilt binance quote")
    alert = decode_event(watcher.records[0].value)
    assert isinstance(alert, Opportunity)
    assert (alert.buy.venue, alert.buy.price, alert.sell.venue) == ("binance", binance.ask, "okx")
