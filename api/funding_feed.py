"""The API's funding side: settlements detected from the read model, kept and shared on Kafka.

Every second the feed looks at the funding state the read model holds (the worker's changelog
carries each instrument's latest ``Funding``), hands new updates to the
:class:`~api.funding_state.SettlementTracker` and writes what settled to the retained
``funding-settlements`` topic (decision 0018). It reads that topic back from the beginning into
a :class:`~api.funding_state.FundingHistory`, so the history survives restarts of the API and
the worker and every replica holds the same one; it also keeps the worker's recent funding
alerts (``funding-opportunities``). Without a broker (in-process tests) settlements go straight
into the history.

Run under a :class:`api.supervise.Supervisor`: a restart re-reads the topic (upserts are
idempotent) and keeps what is in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeAlias, TypeVar

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from api.funding_state import FundingHistory, SettlementTracker
from api.readmodel import ReadModel
from plumbing.kafka import ensure_topics
from schemas.arbitrage import FundingEpisodeClosed, FundingOpportunity, decode_funding_event
from schemas.funding import FundingSettlement, decode_settlement, encode
from schemas.topics import FUNDING_OPPORTUNITIES, FUNDING_SETTLEMENTS, SETTLEMENTS_CONFIG, topic_name

log = logging.getLogger(__name__)

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
SCAN_INTERVAL_S = 1.0
PRUNE_INTERVAL_S = 3_600.0
ALERTS_KEEP = 1_000
E = TypeVar("E", FundingOpportunity, FundingEpisodeClosed)


class FundingFeed:
    def __init__(self, model: ReadModel, namespace: str = "", partitions: int = 3, bootstrap: str | None = None):
        self.model = model
        self.bootstrap = bootstrap
        self.settlements_topic = topic_name(FUNDING_SETTLEMENTS, namespace)
        self.alerts_topic = topic_name(FUNDING_OPPORTUNITIES, namespace)
        self.partitions = partitions
        self.history = FundingHistory()
        self.tracker = SettlementTracker()
        self.alerts: OrderedDict[str, FundingOpportunity] = OrderedDict()
        self.closed: OrderedDict[str, FundingEpisodeClosed] = OrderedDict()
        """The worker's closed funding episodes (same topic as the alerts), newest last."""
        self.history_loaded = bootstrap is None
        """The settlements topic has been read up to where it ended at start (always, without Kafka)."""
        self.written = 0
        self.undecodable = 0
        self.version = 0
        """Bumped when the history or the alerts change (lets pushes skip an unchanged state)."""
        self.listeners: list[Callable[[list[FundingOpportunity | FundingEpisodeClosed]], None]] = []
        """Called with new funding alerts and closed episodes once loaded (the WebSocket channel)."""
        self._seen: dict[str, int] = {}
        self._targets: dict[TopicPartition, int] | None = None
        self._positions: dict[TopicPartition, int] = {}

    # -- pure steps (tests call them) -----------------------------------------
    def scan(self, now_ns: int) -> list[FundingSettlement]:
        """Feed every funding update not seen yet to the tracker; returns (and keeps) what settled."""
        settled: list[FundingSettlement] = []
        for state in list(self.model.symbols.values()):
            for instrument_id, funding in state.funding.items():
                if self._seen.get(instrument_id) == funding.receipt_ts_ns:
                    continue
                self._seen[instrument_id] = funding.receipt_ts_ns
                settled += self.tracker.observe(funding)
        settled += self.tracker.due(now_ns)
        for settlement in settled:
            self.add_settlement(settlement)
        return settled

    def add_settlement(self, settlement: FundingSettlement) -> None:
        if self.history.add(settlement):
            self.version += 1
        self.tracker.settled_up_to(settlement.instrument_id, settlement.settled_ts_ns)

    def add_alert(self, event: FundingOpportunity | FundingEpisodeClosed) -> bool:
        """Keep an alert or a closed episode (by event id: at-least-once delivery); True when new."""
        if isinstance(event, FundingOpportunity):
            fresh = _keep(self.alerts, event.event_id, event)
        else:
            fresh = _keep(self.closed, event.event_id, event)
        self.version += fresh
        return fresh

    # -- the task --------------------------------------------------------------
    async def run(self) -> None:
        if self.bootstrap is None:
            while True:
                self.scan(time.time_ns())
                await asyncio.sleep(SCAN_INTERVAL_S)
        await ensure_topics(self.bootstrap, [self.settlements_topic], self.partitions, SETTLEMENTS_CONFIG)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await producer.start()
        await consumer.start()
        await admin.start()
        try:
            await self._loop(producer, consumer, admin)
        finally:
            for stop in (producer.stop, consumer.stop, admin.close):
                with contextlib.suppress(Exception):
                    await stop()

    async def _loop(self, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient) -> None:
        self._targets, self._positions = None, {}  # a new consumer: re-read (upserts are idempotent)
        await self._assign(consumer, admin)
        next_scan = next_assign = next_prune = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            self._apply(batch)
            await self._check_loaded(consumer)
            now = time.monotonic()
            if self.history_loaded and now >= next_scan:
                await self._write(producer, self.scan(time.time_ns()))
                next_scan = now + SCAN_INTERVAL_S
            if now >= next_assign:
                await self._assign(consumer, admin)
                next_assign = now + 5.0
            if now >= next_prune:
                self.history.prune(time.time_ns())
                next_prune = now + PRUNE_INTERVAL_S

    async def _write(self, producer: AIOKafkaProducer, settled: list[FundingSettlement]) -> None:
        """All at once: at the top of the hour every hourly venue settles together."""
        sends = [await producer.send(self.settlements_topic, encode(s), key=s.key.encode()) for s in settled]
        for delivery in sends:
            await delivery
        self.written += len(sends)

    async def _assign(self, consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient) -> None:
        """Assign the partitions of both topics that exist (listing all topics never creates one)."""
        existing = set(await admin.list_topics())  # metadata of all topics: never creates one
        wanted = sorted({self.settlements_topic, self.alerts_topic} & existing)
        described = await admin.describe_topics(wanted) if wanted else []
        found = {
            TopicPartition(t["topic"], p["partition"])
            for t in described
            if t["topic"] in wanted and t["error_code"] == 0
            for p in t["partitions"]
        }
        current = set(consumer.assignment())
        if found == current:
            return
        consumer.assign(sorted(found))
        for tp in found & self._positions.keys():  # assign() forgets positions: resume where we were
            consumer.seek(tp, self._positions[tp])
        fresh_alerts = sorted(tp for tp in found - self._positions.keys() if tp.topic == self.alerts_topic)
        if fresh_alerts:  # recent alerts only: the topic keeps a week of them
            ends = await consumer.end_offsets(fresh_alerts)
            for tp in fresh_alerts:
                consumer.seek(tp, max(0, ends[tp] - ALERTS_KEEP))
        if self._targets is None:
            settlements = sorted(tp for tp in found if tp.topic == self.settlements_topic)
            ends = await consumer.end_offsets(settlements) if settlements else {}
            self._targets = {tp: end for tp, end in ends.items() if end > 0}

    async def _check_loaded(self, consumer: AIOKafkaConsumer) -> None:
        if self.history_loaded or self._targets is None:
            return
        for tp, end in self._targets.items():
            if await consumer.position(tp) < end:
                return
        self.history_loaded = True
        log.info(
            "funding history loaded: %d settlements of %d instruments", len(self.history), len(self.history.instruments)
        )

    def _apply(self, batch: dict[TopicPartition, list[Record]]) -> None:
        fresh: list[FundingOpportunity | FundingEpisodeClosed] = []
        for tp, records in batch.items():
            if records:
                self._positions[tp] = records[-1].offset + 1
            for record in records:
                if record.value is None:
                    continue
                try:
                    if tp.topic == self.settlements_topic:
                        self.add_settlement(decode_settlement(record.value))
                    elif self.add_alert(alert := decode_funding_event(record.value)):
                        fresh.append(alert)
                except msgspec.DecodeError as exc:
                    self.undecodable += 1
                    log.error("skipping undecodable record on %s (key %r): %s", tp.topic, record.key, exc)
        if fresh and self.history_loaded:
            for listener in self.listeners:
                listener(fresh)


def _keep(kept: OrderedDict[str, E], event_id: str, event: E) -> bool:
    """Add unless already there; the oldest go beyond :data:`ALERTS_KEEP`."""
    if event_id in kept:
        return False
    kept[event_id] = event
    while len(kept) > ALERTS_KEEP:
        kept.popitem(last=False)
    return True
