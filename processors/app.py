"""The Faust application: topics, the symbol table and the agent, built from settings.

Data flow: ``ticks.<BASE>`` (keyed by instrument id, partitioned by base — see
:func:`arbstream.kafka.tick_partition`) -> ``detect`` agent, which owns the
``symbols`` table (one row per base: latest quotes, funding, episodes, cooldown)
and emits ``opportunities``, ``opportunity-episodes`` and ``funding-opportunities``.
The table is co-partitioned with the tick topics: same partition count, and a
symbol's row lives in the partition its ticks arrive on. Agents stay thin; the
logic lives in :mod:`processors.arbitrage` and :mod:`processors.funding`.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
import msgspec

from arbstream.errors import ConfigError
from arbstream.kafka import ensure_topics, partition_counts, resolve_bootstrap, symbol_of, tick_partition
from processors.arbitrage import process_quote
from processors.faust_tuning import limit_fetch_wait
from processors.funding import process_funding
from processors.health_view import HealthView
from processors.settings import WorkerSettings
from schemas.arbitrage import SymbolState, decode_state
from schemas.arbitrage import encode as encode_arb
from schemas.market import Funding, decode_tick
from schemas.topics import (
    FUNDING_OPPORTUNITIES,
    HEALTH,
    HEALTH_CONFIG,
    OPPORTUNITIES,
    OPPORTUNITY_EPISODES,
    ticks_topic,
    topic_name,
)

log = logging.getLogger(__name__)

SYMBOLS_TABLE = "symbols"
# Every tick rewrites its symbol's row (~10 KB): with Kafka's defaults (1 GiB segments) the
# uncompacted tail a recovering worker must replay grows to ~100k records. Small segments and
# an eager cleaner keep it to a few segments, so failover time does not grow with uptime.
CHANGELOG_CONFIG = {
    "segment.bytes": str(16 * 2**20),
    "segment.ms": str(60_000),
    "min.cleanable.dirty.ratio": "0.1",
}


class Misrouted:
    """Counts ticks that arrived on a partition other than their symbol's, and says so (rate-limited)."""

    def __init__(self) -> None:
        self.count = 0

    def report(self, topic: str, partition: int, expected: int) -> None:
        self.count += 1
        if self.count <= 10 or self.count % 10_000 == 0:
            log.warning(
                "tick on %s[%d] belongs on partition %d (producer without arbstream.kafka.symbol_partitioner); "
                "forwarded (%d so far)",
                topic,
                partition,
                expected,
                self.count,
            )


class StateCache:
    """Decoded SymbolState per table value.

    The table stores encoded bytes (what goes to the changelog). Decoding them on
    every tick would dominate the hot path, so the last decoded state is kept next
    to the exact bytes object it came from; after a recovery or rebalance the
    table holds a different bytes object and the cache re-decodes.
    """

    def __init__(self) -> None:
        self._entries: dict[bytes, tuple[bytes, SymbolState]] = {}

    def get(self, key: bytes, stored: bytes | None) -> SymbolState:
        if stored is None:
            return SymbolState()
        entry = self._entries.get(key)
        if entry is not None and entry[0] is stored:
            return entry[1]
        return decode_state(stored)

    def put(self, key: bytes, state: SymbolState) -> bytes:
        encoded = encode_arb(state)
        self._entries[key] = (encoded, state)
        return encoded


def changelog_topic(settings: WorkerSettings) -> str:
    return f"{topic_name(settings.app_name, settings.namespace)}-{SYMBOLS_TABLE}-changelog"


def create_app(settings: WorkerSettings) -> faust.App:
    bootstrap = resolve_bootstrap(settings.kafka_bootstrap)
    limit_fetch_wait(settings.worker_fetch_max_wait_ms)
    config = settings.arb_config()
    funding_config = settings.funding_config()
    partitions = settings.topic_partitions
    app = faust.App(
        topic_name(settings.app_name, settings.namespace),
        broker=f"kafka://{bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=partitions,
        topic_replication_factor=1,
        web_enabled=settings.worker_web_enabled,
        web_port=settings.worker_web_port,
        web_bind="127.0.0.1",
        datadir=settings.worker_data_dir,
        store="memory://",
        processing_guarantee="at_least_once",
        # Changelog rows are ~10 KB and Faust's producer defaults (no linger, 16 KiB
        # batches) sent about one request per record: batching doubled the drain rate.
        producer_linger=0.005,
        producer_max_batch_size=1 << 20,
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_s / 3),
    )
    ns = settings.namespace
    tick_names = [ticks_topic(s, ns) for s in settings.symbols]
    ticks = app.topic(*tick_names, key_type=bytes, value_type=bytes)
    # For re-sending a tick that a foreign producer put on the wrong partition.
    tick_topics = {name: app.topic(name, key_type=bytes, value_type=bytes) for name in tick_names}
    misrouted = Misrouted()
    opportunities = app.topic(topic_name(OPPORTUNITIES, ns), key_type=bytes, value_type=bytes, partitions=partitions)
    episodes = app.topic(topic_name(OPPORTUNITY_EPISODES, ns), key_type=bytes, value_type=bytes, partitions=partitions)
    funding_topic = app.topic(
        topic_name(FUNDING_OPPORTUNITIES, ns), key_type=bytes, value_type=bytes, partitions=partitions
    )
    symbols = app.Table(
        SYMBOLS_TABLE,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        extra_topic_configs=CHANGELOG_CONFIG,
    )
    cache = StateCache()
    health = HealthView()

    async def follow_health() -> None:
        await health.follow(bootstrap, topic_name(HEALTH, ns))

    app.task(follow_health)

    @app.agent(ticks, concurrency=1)
    async def detect(stream: faust.StreamT[bytes]) -> None:
        async for event_in in stream.events():
            instrument_id, payload, message = event_in.key, event_in.value, event_in.message
            expected = tick_partition(instrument_id, partitions)
            if message.partition != expected:
                # Not published with the symbol partitioner: forward it where its
                # symbol's state lives, in order behind that partition's ticks.
                misrouted.report(message.topic, message.partition, expected)
                await tick_topics[message.topic].send(key=instrument_id, value=payload, partition=expected)
                continue
            key = symbol_of(instrument_id)
            try:
                event = decode_tick(payload)
            except msgspec.DecodeError as exc:
                log.error("skipping undecodable tick for %r: %s", key, exc)
                continue
            state = cache.get(key, symbols.get(key))
            if isinstance(event, Funding):
                funding_alerts = process_funding(key.decode(), state, event, funding_config)
                symbols[key] = cache.put(key, state)
                for funding_alert in funding_alerts:
                    stamped_funding = msgspec.structs.replace(funding_alert, emitted_ts_ns=time.time_ns())
                    await funding_topic.send(key=key, value=encode_arb(stamped_funding))
                continue
            outcome = process_quote(key.decode(), state, event, health.by_venue, event.receipt_ts_ns, config)
            symbols[key] = cache.put(key, state)
            emitted = time.time_ns()
            for alert in outcome.alerts:
                stamped = msgspec.structs.replace(alert, emitted_ts_ns=emitted)
                await opportunities.send(key=key, value=encode_arb(stamped))
            for closed in outcome.closed:
                await episodes.send(key=key, value=encode_arb(closed))

    return app


def external_topics(settings: WorkerSettings) -> list[str]:
    """Topics the worker reads or writes, created before Faust starts."""
    ns = settings.namespace
    names = [ticks_topic(s, ns) for s in settings.symbols]
    logical = (OPPORTUNITIES, OPPORTUNITY_EPISODES, FUNDING_OPPORTUNITIES)
    return names + [topic_name(t, ns) for t in logical]


async def prepare_topics(bootstrap: str, settings: WorkerSettings) -> None:
    """Create the worker's topics and check that the tick topics can be co-partitioned.

    Subscribing to a topic that does not exist yet leaves its partitions unassigned
    until the next rebalance, so everything is created up front. The symbol table
    lives in the partition a symbol's ticks arrive on, computed with
    ``topic_partitions``: a tick topic with another partition count cannot work.
    """
    await ensure_topics(bootstrap, external_topics(settings), settings.topic_partitions)
    # Faust would create the changelog too, but only when it starts; a reader subscribing
    # earlier (the API, a test) could get it auto-created by the broker as a non-compacted topic.
    await ensure_topics(
        bootstrap,
        [changelog_topic(settings)],
        settings.topic_partitions,
        {"cleanup.policy": "compact", **CHANGELOG_CONFIG},
    )
    await ensure_topics(bootstrap, [topic_name(HEALTH, settings.namespace)], settings.topic_partitions, HEALTH_CONFIG)
    tick_names = [ticks_topic(s, settings.namespace) for s in settings.symbols]
    wrong = {
        name: count
        for name, count in (await partition_counts(bootstrap, tick_names)).items()
        if count != settings.topic_partitions
    }
    if wrong:
        raise ConfigError(
            f"tick topics must have ARBSTREAM_TOPIC_PARTITIONS={settings.topic_partitions} partitions "
            f"(the worker's table is co-partitioned with them), found {wrong}; set ARBSTREAM_TOPIC_PARTITIONS "
            "to match, or recreate the topics"
        )


def run_worker(settings: WorkerSettings) -> int:
    bootstrap = resolve_bootstrap(settings.kafka_bootstrap)
    asyncio.run(prepare_topics(bootstrap, settings))
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower())
    worker.execute_from_commandline()
    return 0
