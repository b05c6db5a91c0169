"""Feeds the read model from Kafka (decision 0005).

One group-less consumer reads the worker's compacted ``symbols`` changelog and
the ``health``, ``opportunities`` and ``opportunity-episodes`` topics from the
beginning. No consumer group means no offsets to share: every replica builds
its own full copy, and a restart rebuilds it from the topics.

The consumer is *assigned* the partitions of topics that exist, found by
listing all topics, instead of *subscribing* by name: a metadata request naming
a missing topic makes a broker with ``auto.create.topics.enable`` create it
with default settings, and a changelog created that way would not be compacted
(the worker's Faust only configures topics it creates itself).

Loading: the end offsets seen at startup are the target; until every partition
has been read up to its target the model is incomplete (data endpoints answer
503, /health says "starting").

Supervision (issue 13): :meth:`Follower.run` reconnects after broker errors
itself; any other exception propagates to its :class:`api.supervise.Supervisor`,
which restarts it with backoff. A restarted follower resumes after the last
batch it applied completely and is not *live* again until it has caught up with
the end offsets seen at its restart (data endpoints answer 503 meanwhile).

Bounded start-up: the event topics (alerts, closed episodes) are read from the
later of "``events_lookback_s`` ago" (offsets-for-times) and "the last N records"
of each partition, N being what the model keeps anyway, so start-up does not
grow with their 7-day retention.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from api.metrics import ApiMetrics
from api.readmodel import Changes, ReadModel
from api.settings import ApiSettings
from api.universe import Universe
from plumbing.aio import cancel_requested
from schemas.arbitrage import EpisodeClosed, Opportunity, decode_event, decode_state, decode_worker_stats
from schemas.market import Quote, decode_health, decode_prices
from schemas.topics import (
    HEALTH,
    INSTRUMENTS,
    LISTINGS,
    OPPORTUNITIES,
    OPPORTUNITY_EPISODES,
    PRICES,
    WORKER_STATS,
    symbols_changelog,
    topic_name,
)

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 10.0
"""A client that does not stop in this time is abandoned (its sockets die with the old connection)."""

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


@dataclass(frozen=True)
class Topics:
    changelog: str
    health: str
    opportunities: str
    episodes: str
    prices: str = ""
    """The worker's latest quote per instrument (compacted): the read model's quotes (decision 0015)."""
    worker_stats: str = ""
    instruments: str = ""
    """Ingest's tracked universe (compacted), applied to the API's Universe (api/universe.py)."""
    listings: str = ""

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> Topics:
        ns = settings.namespace
        return cls(
            changelog=symbols_changelog(settings.app_name, ns),
            health=topic_name(HEALTH, ns),
            opportunities=topic_name(OPPORTUNITIES, ns),
            episodes=topic_name(OPPORTUNITY_EPISODES, ns),
            prices=topic_name(PRICES, ns),
            worker_stats=topic_name(WORKER_STATS, ns),
            instruments=topic_name(INSTRUMENTS, ns),
            listings=topic_name(LISTINGS, ns),
        )

    def all(self) -> list[str]:
        return [*self._core(), *(t for t in (self.prices, self.worker_stats) if t)]

    def _core(self) -> list[str]:
        catalog = [t for t in (self.instruments, self.listings) if t]
        return [self.changelog, self.health, self.opportunities, self.episodes, *catalog]


class Follower:
    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        model: ReadModel,
        on_changes: Callable[[Changes], None],
        metrics: ApiMetrics,
        discover_interval_s: float = 5.0,
        events_lookback_s: float = 86_400.0,
        events_keep: dict[str, int] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.model = model
        self.metrics = metrics
        self.universe: Universe | None = None
        """Receives the ``instruments`` and ``listings`` records (build_context sets it)."""
        self.records_applied = 0
        self.load_seconds: float | None = None
        self.connected = False
        self.live = False
        """Caught up since the latest (re)start: the model moves with the topics."""
        self._on_changes = on_changes
        self._events_lookback_s = events_lookback_s
        self._events_keep = events_keep or {}
        self._discover_every = discover_interval_s
        self._targets: dict[TopicPartition, int] | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._started = time.monotonic()
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    async def run(self) -> None:
        """Follow the topics until cancelled (run it under a Supervisor: other errors propagate)."""
        self.live = False
        self._targets = None  # live again only once caught up with the end offsets seen now
        try:
            await self._main()
        finally:
            self.live = False
            await self._close()

    async def _close(self) -> None:
        consumer, admin = self._consumer, self._admin
        self._consumer = self._admin = None
        self.connected = False
        for name, closing in (
            ("consumer", consumer.stop() if consumer else None),
            ("admin", admin.close() if admin else None),
        ):
            if closing is None:
                continue
            try:
                await asyncio.wait_for(closing, CLOSE_TIMEOUT_S)
            except asyncio.CancelledError:
                if cancel_requested():
                    raise
                # aiokafka's consumer.stop() can raise CancelledError after a broker outage (its fetch
                # task's cancellation leaks out): the client is closed either way, carry on.
                log.warning("read model %s raised CancelledError while closing; continuing", name)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("read model %s did not close cleanly (%r); continuing", name, exc)

    async def _main(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._connect()
                await self._follow()
            except (KafkaError, OSError, TimeoutError, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and cancel_requested():
                    raise
                # A CancelledError nobody requested leaks out of aiokafka's fetcher after a broker
                # outage: the consumer is unusable, so it is a broker error like the others.
                log.warning("read model consumer failed (%r); reconnecting in %.1fs", exc, backoff)
                await self._close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _connect(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 2**20,
            # One fetch in flight per broker: a long poll on quiet partitions would hold back
            # fresh records of busy ones (the worker caps its own the same way).
            fetch_max_wait_ms=50,
        )
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5_000)
        await self._consumer.start()
        await self._admin.start()
        self.connected = True
        await self._discover()

    async def _existing_partitions(self) -> set[TopicPartition]:
        assert self._admin is not None
        wanted = set(self.topics.all())
        described = await self._admin.describe_topics(None)  # all topics: never auto-creates one
        return {
            TopicPartition(t["topic"], p["partition"])
            for t in described
            if t["topic"] in wanted and t["error_code"] == 0
            for p in t["partitions"]
        }

    async def _discover(self) -> None:
        """Assign every existing partition; resume each where this process left it."""
        consumer = self._consumer
        assert consumer is not None
        found = await self._existing_partitions()
        if found != set(consumer.assignment()):
            consumer.assign(sorted(found))
            # Positions are ours, not the consumer's: after a reconnect (new consumer) re-reading
            # from the beginning would re-publish old alerts to WebSocket clients as new ones.
            for tp in found & self._positions.keys():
                consumer.seek(tp, self._positions[tp])
            await self._seek_recent_events(sorted(found - self._positions.keys()))
        if self._targets is None:
            ends: dict[TopicPartition, int] = await consumer.end_offsets(sorted(found)) if found else {}
            self._targets = {tp: end for tp, end in ends.items() if end > 0}
            log.info("loading read model: %d records to read from %s", sum(self._targets.values()), self.topics.all())
        await self._check_loaded()

    async def _seek_recent_events(self, fresh: list[TopicPartition]) -> None:
        """Start each new event-topic partition at its recent records, not at offset 0."""
        consumer = self._consumer
        events = [tp for tp in fresh if tp.topic in self._events_keep]
        if consumer is None or not events:
            return
        since_ms = int(time.time() * 1000 - self._events_lookback_s * 1000)
        by_time = await consumer.offsets_for_times({tp: since_ms for tp in events})
        ends: dict[TopicPartition, int] = await consumer.end_offsets(events)
        for tp in events:
            found = by_time.get(tp)
            start = max(found.offset if found is not None else ends[tp], ends[tp] - self._events_keep[tp.topic])
            # Below the log start (retention deleted it) is fine: auto_offset_reset=earliest.
            consumer.seek(tp, max(start, 0))

    async def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        next_discovery = time.monotonic() + self._discover_every
        while True:
            if time.monotonic() >= next_discovery:
                await self._discover()
                await self.lag()  # refreshes the lag gauge
                next_discovery = time.monotonic() + self._discover_every
            if not consumer.assignment():
                await asyncio.sleep(min(self._discover_every, 1.0))
                continue
            batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
            changes = self._apply(batch)
            if not self.live:
                await self._check_loaded()
            if self.model.complete and changes:
                self._on_changes(changes)

    async def _check_loaded(self) -> None:
        if self.live or self._targets is None or self._consumer is None:
            return
        for tp, end in self._targets.items():
            if await self._consumer.position(tp) < end:
                return
        self.live = True
        if self.model.complete:
            log.info("read model live again after a restart (%d records applied in all)", self.records_applied)
            return
        self.load_seconds = time.monotonic() - self._started
        log.info("read model loaded: %d records in %.2fs", self.records_applied, self.load_seconds)
        self.model.mark_complete()

    def _apply(self, batch: dict[TopicPartition, list[Record]]) -> Changes:
        changes = Changes()
        for tp, records in batch.items():
            if not records:
                continue
            if tp.topic == self.topics.prices:
                self._apply_prices(records, changes)
            elif tp.topic == self.topics.worker_stats:
                self._apply_worker_stats(records)
            elif tp.topic == self.topics.changelog:
                self._apply_changelog(records, changes)
            else:
                for record in records:
                    self._apply_event(tp.topic, record, changes)
            # Only after the whole batch applied: a restart after a failure re-reads it (every
            # apply_* is idempotent: whole states, health snapshots, events de-duplicated by id).
            self._positions[tp] = records[-1].offset + 1
            self.records_applied += len(records)
            self.metrics.records.labels(tp.topic).inc(len(records))
        return changes

    def _apply_prices(self, records: list[Record], changes: Changes) -> None:
        # Compacted, keyed by symbol (by instrument id before decision 0041): only the last record
        # per key in a batch matters.
        latest: dict[bytes, bytes] = {r.key: r.value for r in records if r.key is not None and r.value is not None}
        by_symbol: dict[str, list[Quote]] = {}
        for key, value in latest.items():
            try:
                quotes = decode_prices(value)
            except msgspec.DecodeError as exc:
                self._undecodable(self.topics.prices, key, exc)
                continue
            for quote in quotes:
                by_symbol.setdefault(quote.base, []).append(quote)
        for symbol, quotes in by_symbol.items():
            self.model.apply_quotes(symbol, quotes, changes)

    def _apply_worker_stats(self, records: list[Record]) -> None:
        for record in records:
            try:
                stats = decode_worker_stats(record.value or b"")
            except msgspec.DecodeError as exc:
                self._undecodable(self.topics.worker_stats, record.key, exc)
                continue
            self.model.apply_worker_stats(stats)
            for outcome in (
                "processed",
                "conflated",
                "rebuilt",
                "forwarded",
                "rejected",
                "out_of_order",
                "skipped_records",
            ):
                self.metrics.worker_ticks.labels(stats.worker_id, outcome).set(getattr(stats, outcome))

    def _apply_changelog(self, records: list[Record], changes: Changes) -> None:
        # Each record is a symbol's full state, so only the last one per key in a batch matters
        # (what compaction would keep): decode that one and skip the rest.
        latest: dict[bytes, bytes | None] = {}
        for record in records:
            if record.key is not None:
                latest[record.key] = record.value
        for key, value in latest.items():
            try:
                state = decode_state(value) if value is not None else None
            except msgspec.DecodeError as exc:
                self._undecodable(self.topics.changelog, key, exc)
                continue
            self.model.apply_state(key.decode(errors="replace"), state, changes)

    def _apply_event(self, topic: str, record: Record, changes: Changes) -> None:
        if topic in (self.topics.instruments, self.topics.listings):
            if self.universe is not None:  # tombstones matter here: a delisted instrument
                apply = (
                    self.universe.apply_instrument if topic == self.topics.instruments else self.universe.apply_listing
                )
                apply(record.key, record.value)
            return
        if record.value is None:
            return
        try:
            if topic == self.topics.health:
                self.model.apply_health(decode_health(record.value), changes)
                return
            event = decode_event(record.value)
        except msgspec.DecodeError as exc:
            self._undecodable(topic, record.key, exc)
            return
        if isinstance(event, Opportunity):
            self.model.apply_alert(event, changes)
        elif isinstance(event, EpisodeClosed):
            self.model.apply_closed(event, changes)

    def _undecodable(self, topic: str, key: bytes | None, exc: Exception) -> None:
        self.metrics.undecodable.labels(topic).inc()
        log.error("skipping undecodable record on %s (key %r): %s", topic, key, exc)

    async def lag(self, timeout_s: float = 2.0) -> dict[str, int] | None:
        """Records not yet applied per topic (end offsets - positions); None when the broker does not answer."""
        consumer = self._consumer
        if consumer is None or not self.connected:
            return None
        assigned = sorted(consumer.assignment())
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(assigned), timeout_s) if assigned else {}
            by_topic = {t: 0 for t in self.topics.all()}
            for tp in assigned:
                by_topic[tp.topic] += max(0, ends[tp] - await consumer.position(tp))
        except (KafkaError, OSError, TimeoutError, KeyError):
            return None
        for topic, lag in by_topic.items():
            self.metrics.lag.labels(topic).set(lag)
        return by_topic

    async def broker_reachable(self, timeout_s: float = 2.0) -> bool:
        if self._admin is None:
            return False
        try:
            await asyncio.wait_for(self._admin.describe_cluster(), timeout_s)
            return True
        except (KafkaError, OSError, TimeoutError):
            return False
