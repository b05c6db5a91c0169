"""Tick -> opportunity latency at a fixed offered load, with planted dislocations.

Ticks are stamped with the wall clock as their receipt time right before they
are handed to the producer, as ingest stamps them when a frame arrives. A
consumer on ``opportunities`` notes the wall clock when each alert arrives;
tick -> topic latency is that minus the alert's ``receipt_ts_ns`` (the
dislocated tick's). The worker's own ``emitted_ts_ns`` gives the share spent
before the worker handed the alert to its producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from arbstream.bench.common import Result, latency_summary
from arbstream.bench.kafka_io import OffsetProbe, make_producer, prime_producer
from arbstream.bench.procs import Service
from arbstream.bench.ticks import Planter, TickSource, stamped
from arbstream.bench.worker import processed, wait_processed
from ingest.publisher import tick_records
from schemas.arbitrage import Opportunity, decode_event
from schemas.topics import OPPORTUNITIES, topic_name

SLOT_S = 0.005
"""Pacing granularity: ticks for each 5 ms slot are sent together, like a busy venue's frames."""
DISLOCATIONS_PER_S = 20
"""Dislocations planted per second, whatever the load, so each run has enough alerts to rank."""
BACKLOG_TOLERANCE_S = 1.0
"""A run is saturated when the worker needs longer than this after the last tick to catch up."""


class AlertCollector:
    """Consumes ``opportunities`` from its end; keeps (arrival ns, payload) for decoding later."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.arrivals: list[tuple[int, bytes]] = []
        self._tps = [TopicPartition(topic, p) for p in range(partitions)]
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AlertCollector:
        await self._consumer.start()
        self._consumer.assign(self._tps)
        await self._consumer.seek_to_end(*self._tps)
        for tp in self._tps:
            await self._consumer.position(tp)  # resolve "end" now, not at the first fetch
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            now = time.time_ns()
            self.arrivals.extend((now, r.value) for records in batch.values() for r in records if r.value)


async def offer(
    bootstrap: str,
    source: TickSource,
    namespace: str,
    rate: int,
    duration_s: float,
    dislocations_per_s: int,
    sticky: bool = False,
) -> tuple[int, int]:
    """Send ``rate`` ticks/s for ``duration_s`` with about ``dislocations_per_s``; returns (ticks, records) sent.

    Each slot's ticks go out as ingest's publisher sends a window's: one record per symbol.
    ``sticky``: each dislocation holds for ``ticks.STICKY_S`` instead of one tick (see there).
    """
    planter = Planter(source, dislocations_per_s, sticky)
    producer = make_producer(bootstrap)
    await producer.start()
    await prime_producer(producer, source.topics(namespace))
    sent, records = 0, 0
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < duration_s:
            due = int(rate * elapsed) - sent
            now_ns = time.time_ns()
            slot = [stamped(event, now_ns) for event in planter.slot(sent, due, rate, time.monotonic())]
            for topic, key, value, _ in tick_records(slot, namespace):
                await producer.send(topic, value, key=key)
                records += 1
            sent += max(0, due)
            await asyncio.sleep(SLOT_S)
        await producer.flush()
    finally:
        await producer.stop()
    return sent, records


def opportunity_latencies(arrivals: list[tuple[int, bytes]], since_ns: int) -> tuple[list[float], list[float]]:
    """(tick→topic, tick→emitted) ms of each alert whose tick arrived after ``since_ns``."""
    to_topic, in_worker = [], []
    for arrived_ns, payload in arrivals:
        event = decode_event(payload)
        if not isinstance(event, Opportunity) or event.receipt_ts_ns < since_ns:
            continue
        to_topic.append((arrived_ns - event.receipt_ts_ns) / 1e6)
        if event.emitted_ts_ns is not None:
            in_worker.append((event.emitted_ts_ns - event.receipt_ts_ns) / 1e6)
    return to_topic, in_worker


async def latency_run(
    bootstrap: str,
    probe: OffsetProbe,
    source: TickSource,
    worker: Service,
    namespace: str,
    rate: int,
    duration_s: float,
    partitions: int,
    sticky: bool = False,
) -> Result:
    """One run at one offered load: latency percentiles, achieved rate, and whether the worker kept up."""
    topic = topic_name(OPPORTUNITIES, namespace)
    async with AlertCollector(bootstrap, topic, partitions) as alerts:
        before = await processed(probe, namespace)
        since_ns, cpu0 = time.time_ns(), worker.cpu_seconds()
        started = time.monotonic()
        sent, records = await offer(bootstrap, source, namespace, rate, duration_s, DISLOCATIONS_PER_S, sticky)
        sent_at = time.monotonic()
        done = await wait_processed(probe, namespace, before + records, max(5.0, 3 * duration_s))
        end = done if done is not None else time.monotonic()
        # Committed offsets count records; ticks handled in proportion.
        handled = sent * min(records, await processed(probe, namespace) - before) // max(1, records)
        cpu = worker.cpu_seconds() - cpu0
        await asyncio.sleep(0.3)  # the last alerts are in flight to the collector
    catch_up_s = None if done is None else done - sent_at
    to_topic, in_worker = opportunity_latencies(alerts.arrivals, since_ns)
    return {
        "offered_ticks_per_s": rate,
        "sent_ticks_per_s": sent / (sent_at - started),
        "processed_ticks_per_s": handled / (end - started),
        "catch_up_s": catch_up_s,
        "worker_cpu": cpu / (end - started),
        "saturated": catch_up_s is None or catch_up_s > BACKLOG_TOLERANCE_S,
        "tick_to_topic": latency_summary(to_topic),
        "in_worker": latency_summary(in_worker),
    }
