"""The Faust application: topics, tables and agents, built from settings.

Agents stay thin; the logic they call lives in plain functions.
"""

from __future__ import annotations

import logging

import faust

from processors.settings import WorkerSettings
from schemas.market import Quote, decode_tick
from schemas.topics import ticks_topic, topic_name

log = logging.getLogger(__name__)


def create_app(settings: WorkerSettings) -> faust.App:
    if settings.kafka_bootstrap is None:
        raise RuntimeError("worker needs ARBSTREAM_KAFKA_BOOTSTRAP (arbstream up sets it)")
    app = faust.App(
        topic_name(settings.app_name, settings.namespace),
        broker=f"kafka://{settings.kafka_bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        web_enabled=settings.worker_web_enabled,
        web_port=settings.worker_web_port,
        web_bind="127.0.0.1",
        datadir=settings.worker_data_dir,
        store="memory://",
    )
    ticks = app.topic(
        *(ticks_topic(symbol, settings.namespace) for symbol in settings.symbols),
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
    )
    latest_quotes = app.Table(
        "latest_quotes", default=None, key_type=bytes, value_type=bytes, partitions=settings.topic_partitions
    )

    @app.agent(ticks, concurrency=1)
    async def track_latest(stream: faust.StreamT[bytes]) -> None:
        async for key, payload in stream.items():
            event = decode_tick(payload)
            if isinstance(event, Quote):
                latest_quotes[key] = payload

    return app


def run_worker(settings: WorkerSettings) -> int:
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower())
    worker.execute_from_commandline()
    return 0
