"""``arbstream worker``: the Faust app hosting :class:`processors.engine.Engine` (decision 0019).

Data flow: every ``ticks.<BASE>`` topic (records are per-symbol ``TickBatch``es, keyed and
partitioned by the symbol — :func:`plumbing.kafka.symbol_partition`) -> the ``detect`` agent
(one symbol's state per slot, in memory) -> ``opportunities``, ``opportunity-episodes``,
``funding-opportunities``, ``prices`` (latest quote per instrument, rate-limited),
``worker-stats``, and the ``symbols`` table whose compacted changelog
``<app>-symbols-changelog`` holds episodes, cooldowns and funding, co-partitioned with the
tick topics. The per-batch logic is :mod:`processors.faust_host` and :mod:`processors.engine`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import faust
from faust.types import Message
from mode import BaseSignalT

from plumbing import gc_tuning
from plumbing.kafka import partition_counts, resolve_bootstrap
from processors.app import CHANGELOG_CONFIG, prepare_topics
from processors.discovery import TopicDiscovery, matching
from processors.faust_batches import deliver_in_batches
from processors.faust_host import EngineHost
from processors.faust_tuning import (
    PARTITION_FETCH_BYTES,
    commit_against_one_assignment,
    lazy_commit_log_table,
    throttle_livelock_scan,
    tolerate_revoked_highwater,
    tune_worker_consumer,
)
from processors.settings import WorkerSettings
from processors.topics import WorkerTopics
from schemas.topics import ticks_topic

log = logging.getLogger(__name__)

SYMBOLS_TABLE = "symbols"


def create_app(settings: WorkerSettings, bootstrap: str, tick_names: list[str]) -> tuple[faust.App, EngineHost]:
    """The Faust app reading ``tick_names`` (a list that :class:`TopicDiscovery` extends in place)."""
    tune_worker_consumer(
        settings.worker_fetch_max_wait_ms, settings.worker_fetch_min_bytes, settings.worker_fetch_sessions
    )
    throttle_livelock_scan(settings.worker_livelock_check_s)
    lazy_commit_log_table()
    commit_against_one_assignment()
    tolerate_revoked_highwater()
    topics = WorkerTopics.of(settings)
    app = faust.App(
        topics.group,
        broker=f"kafka://{bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        web_enabled=False,
        datadir=settings.worker_data_dir,
        store="memory://",
        processing_guarantee="at_least_once",
        producer_linger=0.005,
        producer_max_batch_size=1 << 20,
        # Bound what the consumer holds while behind (see processors.faust_tuning).
        consumer_max_fetch_size=PARTITION_FETCH_BYTES,
        broker_max_poll_records=settings.worker_poll_records,
        broker_commit_interval=settings.worker_commit_interval_ms / 1000,
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_s / 3),
        consumer_group_instance_id=settings.worker_instance_id,
    )
    # Faust coalesces subscription changes for 45 s (a private class attribute, no setting): a new
    # symbol's topic would wait that long. Checked in tests/test_processors_faust.py.
    app.topics._resubscribe_sleep_lock_seconds = settings.worker_resubscribe_delay_s  # type: ignore[attr-defined]
    table = app.Table(
        SYMBOLS_TABLE,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
        extra_topic_configs=CHANGELOG_CONFIG,
    )
    host = EngineHost(app, settings, table, bootstrap)
    ticks = faust.Topic(app, topics=tick_names, key_type=bytes, value_type=bytes)
    app.topics.add(ticks)  # subscribed through the conductor, read by the agent below a fetch at a time
    batches = app.channel(maxsize=settings.worker_batch_queue)
    router = deliver_in_batches(app, batches, tick_names, host.admit if host.skipper.enabled else None)
    discovery = TopicDiscovery(app, host, tick_names, topics.ticks_pattern, bootstrap, settings.topic_partitions)

    @app.agent(batches, concurrency=1)
    async def detect(stream: faust.StreamT[list[Message]]) -> None:
        # One fetch per batch (processors.faust_batches): conflation sees everything it holds.
        async for fetched in stream:
            messages = router.current(fetched)
            await host.handle(messages)
            router.ack(messages)

    async def follow_health() -> None:
        await host.health.follow(bootstrap, topics.health)

    async def flush_rows() -> None:
        host.flush_rows()

    async def discover() -> None:
        await discovery.poll()

    async def on_revoked(sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        await host.on_revoked(args[0])

    async def on_assigned(sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        await host.on_assigned(args[0])

    app.task(follow_health)
    app.timer(min(1.0, settings.worker_state_flush_s))(flush_rows)
    app.timer(settings.prices_interval_ms / 1000)(host.publish_prices)
    app.timer(settings.worker_stats_interval_s)(host.publish_stats)
    app.timer(settings.worker_discover_interval_ms / 1000)(discover)
    app.timer(settings.worker_sweep_interval_ms / 1000)(host.sweep)
    app.on_partitions_revoked.connect(on_revoked)
    app.on_partitions_assigned.connect(on_assigned)
    return app, host


async def tick_topics(bootstrap: str, settings: WorkerSettings) -> list[str]:
    """Every tick topic of the namespace with the right partition count, named ones included."""
    await prepare_topics(bootstrap, settings)
    named = [ticks_topic(s, settings.namespace) for s in settings.symbols]
    existing = matching(await _list_topics(bootstrap), WorkerTopics.of(settings).ticks_pattern)
    counts = await partition_counts(bootstrap, existing)
    good = [name for name in existing if counts.get(name) == settings.topic_partitions]
    return sorted(set(named) | set(good))


async def _list_topics(bootstrap: str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


class Worker(faust.Worker):
    """Faust's worker, freezing its startup objects once ready. Named as Faust's: its log lines carry
    the class name ("[^Worker]: Ready"), which operators and tests look for."""

    async def on_startup_finished(self) -> None:
        """Faust's "ready" (recovery done): what is alive now lives as long as the worker."""
        await super().on_startup_finished()
        gc_tuning.freeze_startup_objects()


def run_worker(settings: WorkerSettings) -> int:
    logging.getLogger().setLevel(settings.log_level.upper())
    bootstrap = resolve_bootstrap(settings.kafka_bootstrap)
    names = asyncio.run(tick_topics(bootstrap, settings))
    Path(settings.worker_data_dir).mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    # Faust's consumer runs in its own thread: every fetch crosses to the agent's thread through
    # the GIL, which a busy thread holds for up to the switch interval (5 ms by default).
    sys.setswitchinterval(settings.worker_switch_interval_ms / 1000)
    gc_tuning.tune()
    app, _ = create_app(settings, bootstrap, names)
    worker = Worker(app, loglevel=settings.log_level.lower())
    # Faust's terminal spinner sets the root logger to DEBUG (to spin on every record) whenever
    # the level is WARNING or above: every aiokafka send then builds a debug record. No spinner.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0
