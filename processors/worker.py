"""``arbstream worker``: one consumer-group member reading every ``ticks.<BASE>`` topic by pattern.

Loop: fetch -> per partition, :class:`processors.engine.Engine` applies the records to the
symbol's slot -> alerts, closed episodes and funding alerts are sent -> rows with a
transition go to the changelog -> every ``worker_commit_interval_ms`` the producer is flushed,
then offsets are committed (at least once: nothing is committed before what it produced is
on the broker). Every few hundred ms the latest quotes go to ``prices``; every second the
counters go to ``worker-stats``. Decision 0015 explains why this is not a Faust app any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterable

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from arbstream.kafka import symbol_partition
from processors.engine import Emitted, Engine, Slot, persisted
from processors.health_view import HealthView
from processors.restore import changelog_partitions, committed_offsets, read_rows, rebuild_starts
from processors.settings import WorkerSettings
from processors.topics import WorkerTopics
from schemas.arbitrage import WorkerStats
from schemas.arbitrage import encode as encode_arb
from schemas.market import encode as encode_market
from schemas.topics import base_of_ticks_topic

log = logging.getLogger(__name__)

REBUILD_MARGIN_MS = 1_000


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.worker.release(set(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.worker.acquire(set(assigned))


class Worker:
    def __init__(self, settings: WorkerSettings, bootstrap: str) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.topics = WorkerTopics.of(settings)
        self.worker_id = settings.worker_instance_id or f"{socket.gethostname()}-{os.getpid()}"
        config = settings.arb_config()
        self.engine = Engine(config, settings.funding_config(), settings.worker_conflate_after_ms)
        self.health = HealthView()
        self.started_ts_ns = time.time_ns()
        max_age_ms = max([config.max_age_ms, *config.max_age_ms_by_venue.values()])
        self.rebuild_window_ms = max(max_age_ms, int(settings.worker_state_flush_s * 1000)) + REBUILD_MARGIN_MS
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=self.topics.group,
            group_instance_id=settings.worker_instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=settings.worker_discover_interval_ms,
            fetch_max_wait_ms=settings.worker_fetch_max_wait_ms,
            session_timeout_ms=int(settings.worker_session_timeout_s * 1000),
            heartbeat_interval_ms=int(min(3.0, settings.worker_session_timeout_s / 3) * 1000),
        )
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=1 << 20, acks="all")
        self._owned: dict[TopicPartition, str] = {}
        """Tick partitions this worker processes, and their symbol (misrouted partitions excluded)."""
        self._foreign: set[TopicPartition] = set()
        """Assigned tick partitions that no symbol's ticks belong on: whatever arrives there is forwarded."""
        self._positions: dict[TopicPartition, int] = {}
        self._lag_ms = 0
        self.send_failures = 0
        self._partition_counts: dict[str, int] = {}

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        health_task = asyncio.create_task(self.health.follow(self.bootstrap, self.topics.health))
        try:
            self.consumer.subscribe(pattern=self.topics.ticks_pattern, listener=_Rebalance(self))
            log.info("worker %s reads %s (group %s)", self.worker_id, self.topics.ticks_pattern, self.topics.group)
            await self._loop()
        finally:
            health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await health_task
            await self._shutdown()

    async def _loop(self) -> None:
        now = time.monotonic()
        due = {"commit": now, "prices": now, "flush": now, "stats": now}
        s = self.settings
        every = {
            "commit": s.worker_commit_interval_ms / 1000,
            "prices": s.prices_interval_ms / 1000,
            "flush": s.worker_state_flush_s,
            "stats": s.worker_stats_interval_s,
        }
        while True:
            try:
                await self._step(due, every)
            except KafkaError as exc:
                # The clients reconnect by themselves; the worker stays up and says so.
                # Follow-up (issue 13 §4): a batch whose sends failed is applied but not re-sent.
                log.error("broker error in the processing loop (%r); retrying in 1 s", exc)
                await asyncio.sleep(1.0)

    async def _step(self, due: dict[str, float], every: dict[str, float]) -> None:
        batch = await self.consumer.getmany(timeout_ms=100, max_records=20_000)
        await self._handle_batch(batch)
        await self._write_rows(urgent_only=True)
        now = time.monotonic()
        if now >= due["prices"]:
            await self._publish_prices()
        if now >= due["flush"]:
            await self._write_rows(urgent_only=False)
        if now >= due["commit"]:
            await self._commit()
        if now >= due["stats"]:
            await self._publish_stats()
        for name, when in due.items():
            if now >= when:
                due[name] = now + every[name]

    async def _handle_batch(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        now_ms = int(time.time() * 1000)
        newest = 0
        for tp, records in batch.items():
            if not records:
                continue
            base = self._owned.get(tp)
            if base is not None:
                await self._emit(base, self.engine.apply_batch(base, records, self.health.by_venue, now_ms))
            elif tp in self._foreign:
                await self._forward(tp, records)
            else:
                # Fetched while its assignment is still being restored: read it again afterwards.
                if tp in self.consumer.assignment():
                    self.consumer.seek(tp, records[0].offset)
                continue
            self._positions[tp] = records[-1].offset + 1
            newest = max(newest, records[-1].timestamp)
        self._lag_ms = max(0, now_ms - newest) if newest else 0

    async def _emit(self, base: str, out: Emitted) -> None:
        key = base.encode()
        emitted = time.time_ns()
        for alert in out.alerts:
            value = encode_arb(msgspec.structs.replace(alert, emitted_ts_ns=emitted))
            await self._send(self.topics.opportunities, key, value)
        for closed in out.closed:
            await self._send(self.topics.episodes, key, encode_arb(closed))
        for funding in out.funding:
            value = encode_arb(msgspec.structs.replace(funding, emitted_ts_ns=emitted))
            await self._send(self.topics.funding, key, value)

    async def _send(self, topic: str, symbol: bytes, value: bytes, key: bytes | None = None) -> None:
        """Everything the worker writes goes to its symbol's partition, so one symbol's events keep one order."""
        partition = symbol_partition(symbol, self._partitions_of(topic))
        delivery = await self.producer.send(topic, value, key=key or symbol, partition=partition)
        delivery.add_done_callback(self._on_delivery)

    def _on_delivery(self, delivery: asyncio.Future[object]) -> None:
        """A record the producer gave up on (after its own retries) is counted and logged, never silent."""
        if delivery.cancelled() or delivery.exception() is not None:
            self.send_failures += 1
            if self.send_failures <= 10 or self.send_failures % 1_000 == 0:
                reason = "cancelled" if delivery.cancelled() else repr(delivery.exception())
                log.error("a worker output record was not delivered: %s (%d so far)", reason, self.send_failures)

    def _partitions_of(self, topic: str) -> int:
        """Partition count of a topic: tick topics from the consumer's metadata, ours as created."""
        count = self._partition_counts.get(topic)
        if count is None:
            known = self.consumer.partitions_for_topic(topic)
            count = len(known) if known else self.settings.topic_partitions
            self._partition_counts[topic] = count
        return count

    def _home(self, topic: str, base: str) -> int:
        """The partition of ``topic`` that ``base``'s records belong on."""
        return symbol_partition(base.encode(), self._partitions_of(topic))

    async def _forward(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Ticks on a partition other than their symbol's (a producer without the symbol partitioner):
        re-sent to the right one, in order behind its ticks; counted and logged."""
        base = base_of_ticks_topic(tp.topic, self.settings.namespace)
        for record in records:
            await self._send(tp.topic, base.encode(), record.value or b"", key=record.key)
        counters = self.engine.counters
        counters.forwarded += len(records)
        if counters.forwarded <= 10 or counters.forwarded % 10_000 < len(records):
            log.warning(
                "ticks on %s[%d] belong on partition %d (producer without arbstream.kafka.symbol_partitioner); "
                "forwarded (%d so far)",
                tp.topic,
                tp.partition,
                symbol_partition(base.encode(), self._partitions_of(tp.topic)),
                counters.forwarded,
            )

    # --- outputs that are not per tick ----------------------------------------------------

    async def _write_rows(self, urgent_only: bool, bases: Iterable[str] | None = None) -> None:
        for base in list(bases if bases is not None else self.engine.slots):
            slot = self.engine.slots.get(base)
            if slot is not None and (slot.urgent or (not urgent_only and slot.dirty)):
                await self._write_row(base, slot)

    async def _write_row(self, base: str, slot: Slot) -> None:
        await self._send(self.topics.changelog, base.encode(), encode_arb(persisted(slot.state)))
        slot.urgent = slot.dirty = False

    async def _publish_prices(self) -> None:
        for base, slot in self.engine.slots.items():
            if slot.changed_quotes:
                for instrument_id, quote in slot.changed_quotes.items():
                    key = instrument_id.encode()
                    await self._send(self.topics.prices, base.encode(), encode_market(quote), key=key)
                slot.changed_quotes = {}

    async def _publish_stats(self) -> None:
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
            partitions=len(self.consumer.assignment()),
            lag_ms=self._lag_ms,
            send_failures=self.send_failures,
        )
        await self.producer.send(self.topics.stats, encode_arb(stats), key=self.worker_id.encode())

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        """Offsets are committed only after everything they produced is on the broker (at least once)."""
        if not self._committable(only):
            return
        await self.producer.flush()
        offsets = self._committable(only)  # the flush awaited: a rebalance may have started meanwhile
        try:
            if offsets:
                await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # A rebalance is under way: the revoke callback writes the rows and commits what it can;
            # anything not committed is re-read by the next owner and recognised as applied.
            log.info("commit skipped (rebalance or broker error), retried at the next interval: %r", exc)

    def _committable(self, only: set[TopicPartition] | None) -> dict[TopicPartition, int]:
        assigned = self.consumer.assignment()
        return {tp: o for tp, o in self._positions.items() if tp in assigned and (only is None or tp in only)}

    # --- rebalances -----------------------------------------------------------------------

    async def release(self, revoked: set[TopicPartition]) -> None:
        """Before a rebalance: write every revoked symbol's row and commit, so the next owner starts exact.

        The slots stay in memory: partitions assigned back right away (any rebalance, e.g. a new
        tick topic appearing, revokes everything first) continue without a restore.
        """
        await self._write_rows(urgent_only=False, bases=[self._owned[tp] for tp in revoked if tp in self._owned])
        await self._publish_prices()
        await self._commit(revoked)

    async def acquire(self, assigned: set[TopicPartition]) -> None:
        """After a rebalance: drop what went elsewhere, restore what is new (rows, then recent quotes)."""
        for tp in set(self._owned) - assigned:
            self.engine.drop(self._owned.pop(tp))
        for tp in set(self._positions) - assigned:
            del self._positions[tp]
        new = {tp: base_of_ticks_topic(tp.topic, self.settings.namespace) for tp in assigned - set(self._owned)}
        mine = {tp: base for tp, base in new.items() if tp.partition == self._home(tp.topic, base)}
        if mine:
            started = time.monotonic()
            await self._restore(mine)
            took = time.monotonic() - started
            log.info("restored %d symbols in %.2fs (rows, last %d ms)", len(mine), took, self.rebuild_window_ms)
        self._owned.update(mine)
        self._foreign = {tp for tp in assigned if tp not in self._owned}
        owned = ",".join(sorted(self._owned.values()))
        log.info("assigned %d tick partitions; owns symbols [%s]", len(assigned), owned)

    async def _restore(self, mine: dict[TopicPartition, str]) -> None:
        bases = set(mine.values())
        changelog_count = self._partitions_of(self.topics.changelog)
        wanted = changelog_partitions(bases, changelog_count)
        rows = await read_rows(self.bootstrap, self.topics.changelog, wanted, bases)
        committed = await committed_offsets(self.bootstrap, self.topics.group, list(mine))
        starts = await rebuild_starts(self.consumer, list(mine), self.rebuild_window_ms)
        for tp, base in mine.items():
            done = committed.get(tp)
            self.engine.load(base, rows.get(base), -1 if done is None else done - 1)
            recent = starts.get(tp)
            if done is not None and recent is not None and recent < done:
                self.consumer.seek(tp, recent)  # re-read the last seconds: quotes only, up to `done`

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self.release(set(self.consumer.assignment()))
        with contextlib.suppress(Exception):
            await self.consumer.stop()
        with contextlib.suppress(Exception):
            await self.producer.stop()
