"""``arbstream ingest`` / ``arbstream record``: run every venue's connections until stopped.

Start-up fetches every enabled venue's listing in parallel (:mod:`ingest.listings`: live ->
cache -> bundled, each venue under its own deadline), chooses the universe, and starts one
:class:`~ingest.supervisor.VenueSupervisor` per venue. Every ``ARBSTREAM_LISTING_REFRESH_S`` the
listings are fetched again and the supervisors follow the new universe without a restart
(decision 0011). The universe and the listing statuses go to the compacted ``instruments`` and
``listings`` topics (:mod:`ingest.catalog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY, start_http_server

from ingest import listings as listing_io
from ingest.catalog import Catalog
from ingest.control import ControlFollower
from ingest.funding_backfill import BackfillCollector, FundingBackfill, run_backfill, with_backfill
from ingest.instruments import load_all
from ingest.listings import FetchPolicy, VenueListing, choose_universe, known_instruments
from ingest.metrics import IngestCollector
from ingest.publisher import Publisher
from ingest.recorder import Recorder, write_instruments
from ingest.runner import ConnectionRunner, EventSink, RunnerConfig
from ingest.settings import IngestSettings
from ingest.settlements_io import SettlementWriter
from ingest.supervisor import RunnerMaker, VenueSupervisor
from ingest.venues import implemented_venues, venue_class
from ingest.venues.base import Connection
from plumbing import gc_tuning
from plumbing.errors import ArbstreamError, ConfigError
from plumbing.kafka import ensure_topics, resolve_bootstrap
from schemas.market import Funding, Health, HealthState, Instrument, Quote
from schemas.topics import HEALTH, HEALTH_CONFIG, ticks_topic, topic_name

log = logging.getLogger(__name__)

HealthSink = Callable[[Health], Awaitable[None]]


def by_venue(instruments: Sequence[Instrument]) -> dict[str, list[Instrument]]:
    grouped: dict[str, list[Instrument]] = defaultdict(list)
    for instrument in instruments:
        grouped[instrument.venue].append(instrument)
    return dict(grouped)


def tracked_instruments(settings: IngestSettings) -> dict[str, list[Instrument]]:
    """Instruments to track, per venue, from the listings on disk (cache, else bundled)."""
    venues = settings.venues or implemented_venues()
    grouped = by_venue(choose_universe(load_all(venues, settings.instruments_cache_dir), settings))
    if not grouped:
        raise ConfigError(f"nothing to track: no instrument of {settings.symbols} on {venues}")
    return grouped


def venue_bases(settings: IngestSettings, venue: str) -> tuple[str, str]:
    """(ws_base, rest_base) for a venue: live, or the simulator when one is configured."""
    cls = venue_class(venue)
    if settings.simulator_url:
        http_base = settings.simulator_url.rstrip("/")
        return http_base.replace("http", "ws", 1) + f"/{venue}", f"{http_base}/{venue}"
    return cls.ws_base, cls.rest_base


def fetch_policy(settings: IngestSettings) -> FetchPolicy:
    return FetchPolicy(settings.listing_timeout_s, settings.listing_attempts, settings.listing_deadline_s)


def runner_maker(
    settings: IngestSettings,
    venue: str,
    on_events: EventSink,
    on_health: HealthSink,
    http: aiohttp.ClientSession,
    recorder: Recorder | None,
) -> RunnerMaker:
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

    def make(plan: Connection, instruments: Sequence[Instrument]) -> ConnectionRunner:
        return ConnectionRunner(cls, instruments, plan, config, on_events, on_health, http, recorder)

    return make


class IngestService:
    """The running service: listings, universe, one supervisor per venue, refresh loop."""

    def __init__(
        self,
        settings: IngestSettings,
        http: aiohttp.ClientSession,
        on_events: EventSink,
        on_health: HealthSink,
        bootstrap: str | None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.bootstrap = bootstrap
        self.venues = settings.venues or implemented_venues()
        self.catalog = Catalog(bootstrap, settings.namespace, self.venues) if bootstrap else None
        self.recorders = {
            v: Recorder(settings.record_dir, v, settings.record_rotate_mb * 2**20) if settings.record_dir else None
            for v in self.venues
        }
        self.supervisors = {
            v: VenueSupervisor(
                v, venue_bases(settings, v)[0], runner_maker(settings, v, on_events, on_health, http, self.recorders[v])
            )
            for v in self.venues
        }
        self.listings: dict[str, VenueListing] = {}
        self.tracked: list[Instrument] = []
        self.runners: list[ConnectionRunner] = []
        """Every live runner (the metrics collector reads this list; updated in place)."""
        self._tick_bases: set[str] = set()
        self._lock = asyncio.Lock()
        """One re-plan at a time: late start-up listings and periodic refreshes both re-plan."""
        self._late: asyncio.Task[None] | None = None
        self.backfill: FundingBackfill | None = None
        """Funding-history backfill whose per-venue progress rides on the listing statuses."""

    def rest_base(self, venue: str) -> str:
        return venue_bases(self.settings, venue)[1]

    async def start(self) -> None:
        """Subscribe with every listing fetched within ``listing_start_wait_s``; a venue still
        fetching starts on its cached/bundled listing, and its live one is adopted when it comes."""
        if self.catalog is not None:
            await self.catalog.start()
        policy, cache = fetch_policy(self.settings), self.settings.instruments_cache_dir
        fetches = {
            v: asyncio.create_task(
                listing_io.load_venue(v, self.http, self.rest_base(v), cache, policy), name=f"listing-{v}"
            )
            for v in self.venues
        }
        await asyncio.wait(fetches.values(), timeout=self.settings.listing_start_wait_s)
        late: list[asyncio.Task[VenueListing]] = []
        for venue, task in fetches.items():
            if task.done():
                self.listings[venue] = task.result()
                continue
            try:
                waited = f"still fetching after {self.settings.listing_start_wait_s:g}s"
                self.listings[venue] = listing_io.from_disk(venue, cache, waited)
                late.append(task)
            except ConfigError:  # nothing on disk to start with: this venue must be waited for
                self.listings[venue] = await task
        async with self._lock:
            await self.apply(choose_universe(known_instruments(self.listings), self.settings))
        if late:
            log.info("starting before the listings of %s: adopted when they arrive", [t.get_name() for t in late])
            self._late = asyncio.create_task(self._adopt_late(late), name="late-listings")

    async def _adopt_late(self, fetches: list[asyncio.Task[VenueListing]]) -> None:
        for next_done in asyncio.as_completed(fetches):
            try:
                listing = await next_done
                async with self._lock:
                    self.listings[listing.venue] = listing
                    log.info("%s listing arrived after start: %s", listing.venue, listing.source.value)
                    await self._follow_listings()
            except (ArbstreamError, KafkaError, OSError, aiohttp.ClientError) as exc:  # the periodic refresh retries
                log.error("a listing that arrived after start could not be applied: %r", exc)

    async def refresh(self) -> None:
        """Fetch every listing again and follow the changes; a bad refresh keeps what runs."""
        policy, cache = fetch_policy(self.settings), self.settings.instruments_cache_dir
        fresh = await listing_io.refresh_all(self.listings, self.http, self.rest_base, cache, policy)
        async with self._lock:
            self.listings = fresh
            await self._follow_listings()

    async def _follow_listings(self) -> None:
        try:
            tracked = choose_universe(known_instruments(self.listings), self.settings)
        except ConfigError as exc:
            log.error("listing refresh: universe unchanged, the new listings fail the symbol settings: %s", exc)
            await self._publish_statuses()
            return
        await self.apply(tracked)

    async def reload_config(self) -> None:
        """``POST /api/reload-config``: re-read the symbol settings (the symbols file is read on every
        choice) against the listings held, and follow them; a bad file keeps what runs."""
        async with self._lock:
            await self._follow_listings()

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.listing_refresh_s)
            try:
                await self.refresh()
            except (ArbstreamError, KafkaError, OSError, aiohttp.ClientError) as exc:  # the next refresh may work
                log.error("listing refresh failed: %r", exc)
            except Exception:  # a venue module's bug on a new listing must not end the refresh loop
                log.exception("listing refresh failed unexpectedly; the next one retries")

    async def apply(self, tracked: list[Instrument]) -> None:
        if not tracked:
            raise ConfigError(f"nothing to track: no instrument of {self.settings.symbols} on {self.venues}")
        await self._ensure_tick_topics({i.base for i in tracked})
        grouped = by_venue(tracked)
        for venue, supervisor in self.supervisors.items():
            try:
                change = await supervisor.apply(grouped.get(venue, []))
            except ArbstreamError as exc:  # the venue module refuses the listing: keep its connections
                log.error("%s: keeping the current connections, cannot plan the new listing: %s", venue, exc)
                continue
            log.info("%s: %d instruments, connections: %s", venue, len(grouped.get(venue, [])), change)
        # What the sockets use: a venue that refused its new listing keeps its previous instruments.
        tracked = [i for supervisor in self.supervisors.values() for i in supervisor.instruments]
        if self.settings.record_dir is not None and tracked != self.tracked:
            write_instruments(self.settings.record_dir, tracked)  # replays parse with the listing live used
        self.tracked = tracked
        if self.backfill is not None and self.backfill.started:
            self.backfill.track(tracked)  # instruments new to the universe (the others are left out)
        self.runners[:] = [r for s in self.supervisors.values() for r in s.runners.values()]
        if self.catalog is not None:
            written, tombstones = await self.catalog.publish_universe(tracked)
            log.info("instruments topic: %d written, %d tombstones", written, tombstones)
        await self._publish_statuses()

    async def _publish_statuses(self) -> None:
        if self.catalog is not None:
            statuses = listing_io.statuses(self.listings, self.tracked)
            backfill = self.backfill.statuses() if self.backfill is not None else {}
            await self.catalog.publish_statuses(with_backfill(statuses, backfill))

    async def _ensure_tick_topics(self, bases: set[str]) -> None:
        new = sorted(bases - self._tick_bases)
        if self.bootstrap is not None and new:
            names = [ticks_topic(base, self.settings.namespace) for base in new]
            await ensure_topics(self.bootstrap, names, self.settings.topic_partitions)
        self._tick_bases |= set(new)

    async def stop(self) -> None:
        if self._late is not None:
            self._late.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._late
        for supervisor in self.supervisors.values():
            await supervisor.stop()
        for recorder in self.recorders.values():
            if recorder is not None:
                recorder.close()
        if self.catalog is not None:
            await self.catalog.stop()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def ingest(settings: IngestSettings, publish: bool = True, freeze_startup: bool = False) -> None:
    """``freeze_startup``: once connected, exempt what is alive from garbage collection
    (:mod:`plumbing.gc_tuning`; the command does, an in-process caller such as a test need not)."""
    publisher: Publisher | None = None
    bootstrap: str | None = None
    if publish:
        bootstrap = resolve_bootstrap(settings.kafka_bootstrap)
        await ensure_topics(
            bootstrap, [topic_name(HEALTH, settings.namespace)], settings.topic_partitions, HEALTH_CONFIG
        )
        publisher = Publisher(
            bootstrap,
            settings.namespace,
            settings.queue_size,
            settings.linger_ms,
            settings.delivery_retries,
            conflate_after_ms=settings.conflate_after_ms,
        )
        await publisher.start()

    async def discard(events: list[Quote | Funding]) -> None:
        return None

    # The publisher's own method, not a wrapper around it: a coroutine less per frame.
    on_events: EventSink = publisher.publish if publisher is not None else discard

    async def on_health(health: Health) -> None:
        level = logging.DEBUG if health.state is HealthState.STREAMING and not health.reason else logging.INFO
        log.log(level, "health %s %s %s %s", health.venue, health.connection, health.state.value, health.reason)
        if publisher is not None:
            await publisher.publish_health(health)

    async with aiohttp.ClientSession() as http:
        service = IngestService(settings, http, on_events, on_health, bootstrap)
        refresher: asyncio.Task[None] | None = None
        control: asyncio.Task[None] | None = None
        backfill: asyncio.Task[None] | None = None
        try:
            await service.start()
            if bootstrap is not None and settings.funding_backfill_days > 0:
                writer = SettlementWriter(bootstrap, settings.namespace, settings.topic_partitions)
                service.backfill = FundingBackfill(
                    http,
                    service.rest_base,
                    settings.funding_backfill_days,
                    writer.publish,
                    service._publish_statuses,
                    pacing=0.0 if settings.simulator_url else 1.0,  # the simulator has no rate limit
                )
                backfill = asyncio.create_task(
                    run_backfill(service.backfill, writer, service.tracked, keep_open=True), name="backfill"
                )
            if settings.metrics_port is not None:
                REGISTRY.register(IngestCollector(service.runners, publisher))
                if service.backfill is not None:
                    REGISTRY.register(BackfillCollector(service.backfill))
                start_http_server(settings.metrics_port, addr="127.0.0.1")
            log.info("ingest: %d connections to %s", len(service.runners), ", ".join(service.venues))
            if freeze_startup:
                gc_tuning.freeze_startup_objects()
            refresher = asyncio.create_task(service.refresh_forever(), name="listing-refresh")
            if bootstrap is not None:
                follower = ControlFollower(bootstrap, settings.namespace, lambda _: service.reload_config())
                control = asyncio.create_task(follower.run(), name="control")
            await _until_signalled()
        finally:
            for task in (refresher, control, backfill):
                if task is not None:
                    task.cancel()
            await service.stop()
            if publisher is not None:
                await publisher.stop()


def run_ingest(settings: IngestSettings, publish: bool = True) -> int:
    gc_tuning.tune()
    asyncio.run(ingest(settings, publish, freeze_startup=True))
    return 0
