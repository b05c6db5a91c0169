"""The Faust application: topics, the symbol table and the agents, built from settings.

Data flow: ``ticks.<BASE>`` (keyed by instrument id) -> ``repartition`` agent ->
``ticks-by-symbol`` (keyed by base) -> ``detect`` agent, which owns the
``symbols`` table (one row per base: latest quotes, funding, episodes, cooldown)
and emits ``opportunities`` and ``opportunity-episodes``. The table is
co-partitioned with ``ticks-by-symbol`` (same key, same partition count).
Agents stay thin; the logic lives in :mod:`processors.arbitrage`.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
import msgspec

from arbstream.kafka import ensure_topics, resolve_bootstrap
from processors.arbitrage import process_quote
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
BY_SYMBOL = "ticks-by-symbol"


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


def symbol_of(instrument_id: bytes) -> bytes:
    """``BTC-USDT-PERP@binance`` -> ``BTC`` (canonical ids start with the canonical base)."""
    return instrument_id.split(b"-", 1)[0]


def changelog_topic(settings: WorkerSettings) -> str:
    return f"{topic_name(settings.app_name, settings.namespace)}-{SYMBOLS_TABLE}-changelog"


def create_app(settings: WorkerSettings) -> faust.App:
    bootstrap = resolve_bootstrap(settings.kafka_bootstrap)
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
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_s / 3),
    )
    ns = settings.namespace
    ticks = app.topic(*(ticks_topic(s, ns) for s in settings.symbols), key_type=bytes, value_type=bytes)
    by_symbol = app.topic(
        topic_name(BY_SYMBOL, ns), key_type=bytes, value_type=bytes, partitions=partitions, internal=True
    )
    opportunities = app.topic(topic_name(OPPORTUNITIES, ns), key_type=bytes, value_type=bytes, partitions=partitions)
    episodes = app.topic(topic_name(OPPORTUNITY_EPISODES, ns), key_type=bytes, value_type=bytes, partitions=partitions)
    funding_topic = app.topic(
        topic_name(FUNDING_OPPORTUNITIES, ns), key_type=bytes, value_type=bytes, partitions=partitions
    )
    symbols = app.Table(SYMBOLS_TABLE, default=None, key_type=bytes, value_type=bytes, partitions=partitions)
    cache = StateCache()
    health = HealthView()

    async def follow_health() -> None:
        await health.follow(bootstrap, topic_name(HEALTH, ns))

    app.task(follow_health)

    @app.agent(ticks, concurrency=1)
    async def repartition(stream: faust.StreamT[bytes]) -> None:
        async for key, payload in stream.items():
            await by_symbol.send(key=symbol_of(key), value=payload)

    @app.agent(by_symbol, concurrency=1)
    async def detect(stream: faust.StreamT[bytes]) -> None:
        async for key, payload in stream.items():
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
    # ticks-by-symbol too: Faust's own creation of it can lose the race with the first
    # partition assignment, after which the topic is ignored until the next rebalance.
    logical = (BY_SYMBOL, OPPORTUNITIES, OPPORTUNITY_EPISODES, FUNDING_OPPORTUNITIES)
    return names + [topic_name(t, ns) for t in logical]


def run_worker(settings: WorkerSettings) -> int:
    bootstrap = resolve_bootstrap(settings.kafka_bootstrap)
    # Subscribing to a topic that does not exist yet leaves its partitions unassigned
    # until the next rebalance; create everything up front instead.
    asyncio.run(ensure_topics(bootstrap, external_topics(settings), settings.topic_partitions))
    health = topic_name(HEALTH, settings.namespace)
    asyncio.run(ensure_topics(bootstrap, [health], settings.topic_partitions, HEALTH_CONFIG))
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower())
    worker.execute_from_commandline()
    return 0
