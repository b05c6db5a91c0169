"""``arbstream ingest`` / ``arbstream record``: run every venue's connections until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import defaultdict
from collections.abc import Awaitable, Callable

import aiohttp
from prometheus_client import REGISTRY, start_http_server

from arbstream.errors import ConfigError
from arbstream.kafka import ensure_topics, resolve_bootstrap
from ingest.instruments import load_all, select
from ingest.metrics import IngestCollector
from ingest.publisher import Publisher
from ingest.recorder import Recorder
from ingest.runner import ConnectionRunner, RunnerConfig
from ingest.settings import IngestSettings
from ingest.venues import implemented_venues, venue_class
from schemas.market import Funding, Health, HealthState, Instrument, Quote
from schemas.topics import HEALTH, HEALTH_CONFIG, ticks_topic, topic_name

log = logging.getLogger(__name__)


def tracked_instruments(settings: IngestSettings) -> dict[str, list[Instrument]]:
    """Instruments to track, per venue, from the listings and the symbol settings."""
    venues = settings.venues or implemented_venues()
    chosen = select(load_all(venues, settings.instruments_cache_dir), settings.symbols, settings.symbols_file)
    by_venue: dict[str, list[Instrument]] = defaultdict(list)
    for instrument in chosen:
        by_venue[instrument.venue].append(instrument)
    if not by_venue:
        raise ConfigError(f"nothing to track: no instrument of {settings.symbols} on {venues}")
    return dict(by_venue)


def venue_bases(settings: IngestSettings, venue: str) -> tuple[str, str]:
    """(ws_base, rest_base) for a venue: live, or the simulator when one is configured."""
    cls = venue_class(venue)
    if settings.simulator_url:
        http_base = settings.simulator_url.rstrip("/")
        return http_base.replace("http", "ws", 1) + f"/{venue}", f"{http_base}/{venue}"
    return cls.ws_base, cls.rest_base


def build_runners(
    settings: IngestSettings,
    by_venue: dict[str, list[Instrument]],
    on_events: Callable[[list[Quote | Funding]], Awaitable[None]],
    on_health: Callable[[Health], Awaitable[None]],
    http: aiohttp.ClientSession,
) -> list[ConnectionRunner]:
    runners = []
    for venue, instruments in by_venue.items():
        cls = venue_class(venue)
        ws_base, rest_base = venue_bases(settings, venue)
        config = RunnerConfig(
            ws_base,
            rest_base,
            settings.backoff_initial_s,
            settings.backoff_max_s,
            settings.stale_after_s,
            settings.health_every_s,
        )
        recorder = (
            Recorder(settings.record_dir, venue, settings.record_rotate_mb * 2**20) if settings.record_dir else None
        )
        for plan in cls(instruments).connections(ws_base):
            runners.append(ConnectionRunner(cls, instruments, plan, config, on_events, on_health, http, recorder))
    return runners


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def ingest(settings: IngestSettings, publish: bool = True) -> None:
    by_venue = tracked_instruments(settings)
    publisher: Publisher | None = None
    if publish:
        bootstrap = resolve_bootstrap(settings.kafka_bootstrap)
        bases = sorted({i.base for instruments in by_venue.values() for i in instruments})
        await ensure_topics(
            bootstrap, [ticks_topic(base, settings.namespace) for base in bases], settings.topic_partitions
        )
        await ensure_topics(
            bootstrap, [topic_name(HEALTH, settings.namespace)], settings.topic_partitions, HEALTH_CONFIG
        )
        publisher = Publisher(
            bootstrap, settings.namespace, settings.queue_size, settings.linger_ms, settings.delivery_retries
        )
        await publisher.start()

    async def on_events(events: list[Quote | Funding]) -> None:
        if publisher is not None:
            await publisher.publish(events)

    async def on_health(health: Health) -> None:
        level = logging.DEBUG if health.state is HealthState.STREAMING and not health.reason else logging.INFO
        log.log(level, "health %s %s %s %s", health.venue, health.connection, health.state.value, health.reason)
        if publisher is not None:
            await publisher.publish_health(health)

    async with aiohttp.ClientSession() as http:
        runners = build_runners(settings, by_venue, on_events, on_health, http)
        if settings.metrics_port is not None:
            REGISTRY.register(IngestCollector(runners, publisher))
            start_http_server(settings.metrics_port, addr="127.0.0.1")
        log.info("ingest: %d connections to %s", len(runners), ", ".join(by_venue))
        tasks = [asyncio.create_task(r.run_forever(), name=r.plan.label) for r in runners]
        try:
            await _until_signalled()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for runner in runners:
                if runner.recorder is not None:
                    runner.recorder.close()
            if publisher is not None:
                await publisher.stop()


def run_ingest(settings: IngestSettings, publish: bool = True) -> int:
    asyncio.run(ingest(settings, publish))
    return 0
