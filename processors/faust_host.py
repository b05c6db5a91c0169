"""The Faust host of :class:`processors.engine.Engine`: what the ``detect`` agent does with each
batch of records, the ``symbols`` table writes, the periodic outputs and the rebalance hooks.

Per batch (one fetch, :mod:`processors.faust_batches`): records are grouped by tick partition ->
the engine applies each partition's records to its symbol's slot -> alerts, closed episodes and
funding alerts are sent -> symbols with an episode or cooldown transition are written to the
table (its changelog) before the batch is acknowledged. Faust commits acknowledged offsets only after flushing the
producer, so at least once holds: nothing is committed before what it produced is on the broker.
Every ``worker_state_flush_s`` other changed rows are written; every ``prices_interval_ms`` the
latest quotes go to ``prices``; every ``worker_stats_interval_s`` the counters go to
``worker-stats``. Decisions 0019 and 0035 explain the design.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import faust
import msgspec
from aiokafka import ConsumerRecord
from faust.types import TP, Message, TableT

from plumbing.kafka import symbol_partition
from processors.backlog import BacklogSkipper
from processors.engine import Emitted, Engine, Rejected, decode_record, persisted
from processors.event_time import EventClock
from processors.health_view import HealthView
from processors.rebuild import RebuildReader
from processors.recovery_watch import RecoveryWatch
from processors.settings import WorkerSettings
from processors.topics import WorkerTopics
from schemas.arbitrage import RejectedTick, WorkerStats, decode_state
from schemas.arbitrage import encode as encode_arb
from schemas.market import encode_prices
from schemas.topics import base_of_ticks_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickRecord:
    """A Kafka record as :meth:`Engine.apply_batch` reads it (Faust's timestamps are float seconds)."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    """Milliseconds since the epoch."""


def by_partition(messages: Iterable[Message]) -> dict[TP, list[TickRecord]]:
    """A batch's records per partition, each list in offset order (Faust delivers a partition in order)."""
    grouped: dict[TP, list[TickRecord]] = {}
    for message in messages:
        timestamp_ms = int(message.timestamp * 1000) if message.timestamp else 0
        record = TickRecord(message.offset, message.key, message.value, timestamp_ms)
        grouped.setdefault(message.tp, []).append(record)
    return grouped


def tick_count(record: TickRecord) -> int:
    """Ticks in a record (an undecodable one counts as one, as the engine counts its rejection)."""
    ticks = decode_record(record)
    return 1 if isinstance(ticks, str) else len(ticks)


class EngineHost:
    def __init__(self, app: faust.App, settings: WorkerSettings, table: TableT[bytes, bytes], bootstrap: str) -> None:
        self.app = app
        self.settings = settings
        self.table = table
        self.topics = WorkerTopics.of(settings)
        self.worker_id = settings.worker_instance_id or f"{socket.gethostname()}-{os.getpid()}"
        config = settings.arb_config()
        self.engine = Engine(config, settings.funding_config(), settings.worker_conflate_after_ms)
        self.health = HealthView()
        self.clock = EventClock()
        self._delivered: dict[TP, TickRecord] = {}
        """The last record delivered per owned tick partition (is anything waiting behind it? how old?)."""
        self.rebuild = RebuildReader(bootstrap, rebuild_window_ms(settings))
        self.skipper = BacklogSkipper(settings.worker_skip_behind_ms)
        self._jumping: asyncio.Future[None] | None = None
        """The backlog jump in flight, if any (it runs beside the agent)."""
        self.recovery_watch = RecoveryWatch(app, settings.worker_recovery_stall_s)
        self.started_ts_ns = time.time_ns()
        self._owned: dict[TP, str] = {}
        """Tick partitions whose symbol's slot is loaded here (checked on first sight, see _owner)."""
        self._foreign: set[TP] = set()
        """Tick partitions no symbol's ticks belong on: whatever arrives there is forwarded."""
        self._lag_ms = 0
        self._written_at: dict[str, float] = {}
        """When each symbol's row was last written (monotonic)."""

    # --- the agent's per-batch path -----------------------------------------------------

    async def handle(self, messages: Sequence[Message]) -> None:
        now_ms = int(time.time() * 1000)
        newest = 0
        touched: list[str] = []
        behind = False
        grouped = by_partition(messages)
        revoked = await self._take_over(grouped)
        for tp, records in grouped.items():
            base = self._owned.get(tp)
            if tp in revoked:
                continue  # its new owner reads it from the committed offset
            if base is None:
                await self._forward(tp, records)
            else:
                await self._apply(tp, base, records, now_ms)
                self._delivered[tp] = records[-1]
                touched.append(base)
                behind = behind or self.skipper.behind(tp, records[-1].timestamp, now_ms)
            newest = max(newest, records[-1].timestamp)
        if behind:
            self._start_jump(now_ms)
        self._lag_ms = max(0, now_ms - newest) if newest else 0
        self.clock.observe(self.engine.newest_event_ns)
        self.write_rows(touched, urgent_only=True)

    def admit(self, tp: TP, records: Sequence[ConsumerRecord]) -> Sequence[ConsumerRecord]:
        """The batch router's filter of each partition's fetched records while backlog jumps are on
        (:meth:`BacklogSkipper.admit`): what it leaves out is never made a message, and counted."""
        kept, skipped = self.skipper.admit(tp, records, int(time.time() * 1000))
        self.engine.counters.skipped_records += skipped
        return kept

    def _start_jump(self, now_ms: int) -> None:
        """Jump beside the agent (one jump at a time): a partition found behind means the others'
        records wait as long in the consumer's buffer and would each be processed once more before
        their own jump, so every partition last seen longer ago than the threshold jumps, in one
        end-offset request."""
        if self._jumping is not None and not self._jumping.done():
            return
        late = {tp: last for tp, last in self._delivered.items() if self.skipper.behind(tp, last.timestamp, now_ms)}
        lag_ms = {tp: now_ms - last.timestamp for tp, last in late.items()}
        self._jumping = asyncio.ensure_future(self.skipper.jump(self.app.consumer, lag_ms))
        self._jumping.add_done_callback(_log_failure)

    async def _apply(self, tp: TP, base: str, records: list[TickRecord], now_ms: int) -> None:
        """``base``'s records of one partition."""
        funded = len(self.engine.slots[base].state.funding) if base in self.engine.slots else 0
        out = self.engine.apply_batch(base, records, self.health, now_ms)
        await self._emit(base, out)
        await self._dead_letter(tp, base, out.rejected)
        slot = self.engine.slots[base]
        # An instrument's first funding rate is written at once (the API shows it from the row);
        # later changes wait for the flush interval.
        slot.urgent = slot.urgent or len(slot.state.funding) > funded

    async def _take_over(self, grouped: dict[TP, list[TickRecord]]) -> set[TP]:
        """Load the symbols of partitions delivered for the first time since their assignment.

        Done here, before their first records, not in the rebalance callback: Faust resumes the
        partitions as soon as its table recovery ends, which can be before a callback finishes.
        Faust starts a partition at the group's committed offset, so the first record delivered
        tells which ticks the previous owner processed: the ones before it only rebuild quotes
        (those of the last max-quote-age + 1 s, read back by :class:`RebuildReader`).

        Returns the partitions of the batch that are no longer assigned: records Faust fetched
        before a rebalance revoked them (their symbol is not loaded again; the new owner reads them).
        """
        unseen = [tp for tp in grouped if tp not in self._owned and tp not in self._foreign]
        if not unseen:
            return set()
        assigned = self.app.consumer.assignment()
        revoked = {tp for tp in unseen if tp not in assigned}
        if revoked:
            log.info("dropped records of %d partitions revoked meanwhile: %s", len(revoked), sorted(revoked)[:5])
        fresh: dict[TP, tuple[str, int]] = {}
        for tp in unseen:
            if tp in revoked:
                continue
            base = base_of_ticks_topic(tp.topic, self.settings.namespace)
            if tp.partition != self._home(tp.topic, base):
                self._foreign.add(tp)
            else:
                fresh[tp] = (base, grouped[tp][0].offset)
        if not fresh:
            return revoked
        recent = await self.rebuild.read({(tp.topic, tp.partition): first for tp, (_, first) in fresh.items()})
        for tp, (base, first) in fresh.items():
            if base not in self.engine.slots:
                stored = self.table.get(base.encode())
                self.engine.load(base, decode_state(stored) if stored else None, first - 1)
                self.engine.rebuild(base, recent.get((tp.topic, tp.partition), []))
            self._owned[tp] = base
        return revoked

    def _home(self, topic: str, base: str) -> int:
        return symbol_partition(base.encode(), self._partitions_of(topic))

    def _partitions_of(self, topic: str) -> int:
        count = self.app.consumer.topic_partitions(topic)
        return count if count else self.settings.topic_partitions

    async def _emit(self, base: str, out: Emitted) -> None:
        key = base.encode()
        emitted = time.time_ns()
        for alert in out.alerts:
            await self._send(
                self.topics.opportunities, key, encode_arb(msgspec.structs.replace(alert, emitted_ts_ns=emitted))
            )
        for closed in out.closed:
            await self._send(self.topics.episodes, key, encode_arb(closed))
        for funding in out.funding:
            value = encode_arb(msgspec.structs.replace(funding, emitted_ts_ns=emitted))
            await self._send(self.topics.funding, key, value)
        for ended in out.funding_closed:
            await self._send(self.topics.funding, key, encode_arb(ended))

    async def _dead_letter(self, tp: TP, base: str, rejected: list[Rejected]) -> None:
        """Rejected ticks go to ``rejected-ticks`` with where they were and why (counted as rejected)."""
        for r in rejected:
            payload = r.payload.decode("utf-8", "backslashreplace")
            letter = RejectedTick(
                symbol=base,
                topic=tp.topic,
                partition=tp.partition,
                offset=r.offset,
                reason=r.reason,
                payload=payload,
                rejected_ts_ns=time.time_ns(),
            )
            await self._send(self.topics.rejected, base.encode(), encode_arb(letter))

    async def sweep(self) -> int:
        """Close episodes (price and funding) of symbols whose ticks stopped, by the event-time clock (decision 0024).

        Only symbols whose partition has nothing waiting: one with records not yet delivered is
        behind, and its own ticks will close (or keep) its episodes in order."""
        now = self.clock.now()
        if now is None:
            return 0
        horizon = now - self.settings.worker_sweep_grace_ms * 1_000_000
        closed = 0
        swept = []
        for tp, base in list(self._owned.items()):
            slot = self.engine.slots.get(base)
            # Most symbols have no episode: skip them before asking the consumer for a high-water mark.
            if slot is None or not (slot.state.episodes or slot.state.funding_episodes) or not self._caught_up(tp):
                continue
            out = self.engine.sweep(base, horizon, self.health.at(horizon))
            # A sweep may close only funding episodes: those closes are events too (and change the row).
            if out.closed or out.funding_closed:
                closed += len(out.closed) + len(out.funding_closed)
                swept.append(base)
                await self._emit(base, out)
        self.write_rows(swept, urgent_only=True)
        return closed

    def _caught_up(self, tp: TP) -> bool:
        delivered = self._delivered.get(tp)
        try:
            highwater = self.app.consumer.highwater(tp)
        except AssertionError:  # aiokafka asserts the partition is assigned: revoked meanwhile
            return False
        return delivered is not None and highwater is not None and highwater <= delivered.offset + 1

    async def _send(self, topic: str, symbol: bytes, value: bytes, key: bytes | None = None) -> None:
        """Everything the worker writes goes to its symbol's partition, so one symbol's events keep one order.

        Faust's transport producer, not ``Topic.send``: one aiokafka ``send`` per record, flushed
        by Faust before every offset commit."""
        partition = symbol_partition(symbol, self._partitions_of(topic))
        await self.app.producer.send(topic, key or symbol, value, partition, None, None)

    async def _forward(self, tp: TP, records: list[TickRecord]) -> None:
        """Records on a partition other than their symbol's (a producer without the symbol partitioner):
        re-sent to the right one, in order behind its ticks; counted and logged."""
        base = base_of_ticks_topic(tp.topic, self.settings.namespace)
        for record in records:
            await self._send(tp.topic, base.encode(), record.value or b"", key=record.key)
        counters = self.engine.counters
        ticks = sum(tick_count(record) for record in records)
        counters.forwarded += ticks
        if counters.forwarded <= 10 or counters.forwarded % 10_000 < ticks:
            log.warning(
                "ticks on %s[%d] belong on partition %d (producer without plumbing.kafka.symbol_partitioner); "
                "forwarded (%d so far)",
                tp.topic,
                tp.partition,
                self._home(tp.topic, base),
                counters.forwarded,
            )

    # --- the table and the periodic outputs ---------------------------------------------

    def write_rows(self, bases: Iterable[str] | None = None, urgent_only: bool = False) -> int:
        """Rows of ``bases`` (default: all) with a transition (``urgent_only``) or any change, to the table."""
        written = 0
        for base in list(self.engine.slots if bases is None else bases):
            slot = self.engine.slots.get(base)
            if slot is not None and (slot.urgent or (not urgent_only and slot.dirty)):
                self._write_row(base.encode(), encode_arb(persisted(slot.state)))
                slot.urgent = slot.dirty = False
                self._written_at[base] = time.monotonic()
                written += 1
        return written

    def flush_rows(self) -> int:
        """Changed rows not written for ``worker_state_flush_s`` (a row never written: at once), so
        a new symbol's funding reaches the API within a second, and then at most every interval."""
        now, every = time.monotonic(), self.settings.worker_state_flush_s
        due = [
            b for b, slot in self.engine.slots.items() if slot.dirty and now - self._written_at.get(b, -every) >= every
        ]
        return self.write_rows(due)

    def _write_row(self, key: bytes, row: bytes) -> None:
        """What ``table[key] = row`` does, with the partition computed here: the symbol's, the same
        hash that placed its ticks (Faust would take the current event's partition, and a timer has
        none; its producer's partitioner fails on a topic it has no metadata for yet)."""
        self.table.data[key] = row
        self.table.send_changelog(symbol_partition(key, self._partitions_of(self.topics.changelog)), key, row)

    async def publish_prices(self) -> None:
        """One record per symbol whose quotes changed: all its latest quotes (decision 0041).

        Runs beside the agent, which adds slots and quotes while this awaits its sends: it works
        on snapshots, and a quote changed meanwhile goes out next time."""
        for base, slot in list(self.engine.slots.items()):
            if not slot.quotes_changed:
                continue
            slot.quotes_changed = False
            record = encode_prices(base, list(slot.state.quotes.values()))
            await self._send(self.topics.prices, base.encode(), record)

    async def publish_stats(self) -> None:
        c = self.engine.counters
        stats = WorkerStats(
            worker_id=self.worker_id,
            started_ts_ns=self.started_ts_ns,
            ts_ns=time.time_ns(),
            processed=c.processed,
            conflated=c.conflated,
            rebuilt=c.rebuilt,
            forwarded=c.forwarded,
            rejected=c.rejected,
            out_of_order=c.out_of_order,
            skipped_records=c.skipped_records,
            recovery_reseeks=self.recovery_watch.reseeks,
            partitions=len(self._owned),
            lag_ms=self._lag_ms,
        )
        await self.app.producer.send(self.topics.stats, self.worker_id.encode(), encode_arb(stats), None, None, None)

    # --- rebalances ---------------------------------------------------------------------

    async def on_revoked(self, revoked: set[TP]) -> None:
        """After Faust committed what was processed: write every revoked symbol's changed row and its
        prices, flushed before the next owner restores them."""
        if self._jumping is not None:
            self._jumping.cancel()  # a seek now would race Faust's own to the committed offsets
        self.skipper.forget(revoked)
        bases = [self._owned[tp] for tp in revoked if tp in self._owned]
        self.write_rows(bases)
        await self.publish_prices()
        await self.app.producer.flush()

    async def on_assigned(self, assigned: set[TP]) -> None:
        """Drop the symbols that went elsewhere. New ones are loaded at their first records (see
        :meth:`_take_over`); the table's rows are restored by Faust's recovery before that."""
        self.recovery_watch.ensure_running()  # from the first assignment on: recovery starts there
        home = self._home_partitions(assigned)
        for tp in set(self._owned) - set(home):
            self.engine.drop(self._owned.pop(tp))
            self._delivered.pop(tp, None)
        self.skipper.forget(set(self.skipper.pending) - set(home))
        self._foreign &= assigned
        log.info("assigned %d tick partitions; owns symbols [%s]", len(home), ",".join(sorted(home.values())))

    def undelivered(self, topics: set[str]) -> list[TP]:
        """Assigned home partitions of ``topics`` that have delivered nothing here yet."""
        home = self._home_partitions(set(self.app.consumer.assignment()))
        return [tp for tp in home if tp.topic in topics and tp not in self._owned]

    def _home_partitions(self, assigned: set[TP]) -> dict[TP, str]:
        """The assigned tick partitions that carry their symbol's ticks (not the changelog, not foreign ones)."""
        home = {}
        for tp in assigned:
            try:
                base = base_of_ticks_topic(tp.topic, self.settings.namespace)
            except ValueError:
                continue  # the table's changelog
            if tp.partition == self._home(tp.topic, base):
                home[tp] = base
        return home


def _log_failure(done: asyncio.Future[None]) -> None:
    """A backlog jump that failed is logged (the next batch behind tries again)."""
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.error("backlog jump failed: %r", exc, exc_info=exc)


def rebuild_window_ms(settings: WorkerSettings) -> int:
    """How far back a new owner re-reads ticks: the longest max quote age, plus a margin."""
    config = settings.arb_config()
    return max([config.max_age_ms, *config.max_age_ms_by_venue.values()]) + REBUILD_MARGIN_MS


REBUILD_MARGIN_MS = 1_000
