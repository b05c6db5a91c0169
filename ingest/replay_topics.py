"""Replaying from the broker itself: the tick topics are the event log.

Reads every ``ticks.<BASE>`` topic (and ``health``) of a source namespace between two times or
two offsets — each tick partition from the first record at or after ``--from``
(``offsets_for_times``) or at ``--from-offset`` to its end when the read started, or the first
record at ``--to`` / ``--to-offset`` — and merges them in receipt-time order, as
:class:`ingest.replay.Replayer` does for recorded frames. The health topic is read from its
beginning: a venue that went stale before the range must be stale in it, so each connection's
newest report from before the range is replayed first (the topic keeps an hour; older state is
gone). One offset bound applies to every tick partition (one partition per tick topic, decision
0029, so it is a per-symbol position). The records of the range are held in memory (a range of a
few hours of the whole market is hundreds of MB: narrow the range or the symbols for longer ones).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from plumbing.errors import ConfigError
from plumbing.kafka import partition_counts
from schemas.market import Funding, Health, Quote, decode_health, decode_ticks
from schemas.topics import HEALTH, TICKS_PREFIX, topic_name

Event = Quote | Funding | Health


@dataclass
class TopicRange:
    """What a topics replay read: per partition, the offsets it covered."""

    records: int = 0
    ticks: int = 0
    health: int = 0
    undecodable: int = 0
    partitions: dict[str, tuple[int, int]] = field(default_factory=dict)
    """``topic[partition]`` -> (first offset, end offset)."""


def tick_topic_pattern(namespace: str) -> re.Pattern[str]:
    prefix = re.escape(topic_name(TICKS_PREFIX.rstrip("."), namespace) + ".")
    return re.compile(f"^{prefix}[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class OffsetRange:
    """``--from-offset``/``--to-offset``: [start, end) in every tick partition (None: its beginning/end)."""

    start: int | None = None
    end: int | None = None

    def __post_init__(self) -> None:
        if (self.start is not None and self.start < 0) or (self.end is not None and self.end < 0):
            raise ConfigError(f"offsets are >= 0: from {self.start}, to {self.end}")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ConfigError(f"--to-offset {self.end} is before --from-offset {self.start}")


WHOLE_TOPICS = OffsetRange()
"""No offset bound: every partition from its beginning to its end (or the time bounds)."""


async def read_range(
    bootstrap: str,
    namespace: str,
    start_ns: int | None,
    end_ns: int | None,
    bases: Sequence[str] = (),
    counts: TopicRange | None = None,
    offsets: OffsetRange = WHOLE_TOPICS,
) -> list[Event]:
    """Every tick of ``namespace`` with a record time in [start, end) (or an offset in ``offsets``),
    merged in receipt-time order (ties keep each partition's order) with the health of the range,
    preceded by each connection's newest health report from before the range."""
    if (start_ns is not None and offsets.start is not None) or (end_ns is not None and offsets.end is not None):
        raise ConfigError("bound each end of the range by a time or an offset, not both")
    counts = counts if counts is not None else TopicRange()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        topics = await _source_topics(consumer, namespace, bases)
        counted = await partition_counts(bootstrap, topics) if topics else {}
        partitions = [TopicPartition(t, p) for t, n in sorted(counted.items()) for p in range(n)]
        if not partitions:
            raise ConfigError(f"no tick topics in namespace {namespace!r} on {bootstrap}")
        starts, ends = await _bounds(consumer, partitions, start_ns, end_ns, offsets, topic_name(HEALTH, namespace))
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
            counts.partitions[f"{tp.topic}[{tp.partition}]"] = (starts[tp], ends[tp])
        streams = await _read_until(consumer, partitions, ends, counts)
    finally:
        await consumer.stop()
    merged = list(heapq.merge(*streams, key=lambda e: e.receipt_ts_ns))
    if start_ns is None and offsets == WHOLE_TOPICS:
        return merged
    return _carry_in_health(merged, start_ns)


def _carry_in_health(events: list[Event], start_ns: int | None) -> list[Event]:
    """The range's events, after each connection's newest health report from before it.

    The range starts at ``start_ns``, or (offset bounds) at its first tick; with offset bounds the
    health after the last tick is dropped too, as the health topic was read to its end.
    """
    ticks = [e.receipt_ts_ns for e in events if not isinstance(e, Health)]
    if not ticks:
        return []
    first = start_ns if start_ns is not None else ticks[0]
    last = None if start_ns is not None else ticks[-1]
    before: dict[tuple[str, str], Health] = {}
    for event in events:
        if isinstance(event, Health) and event.receipt_ts_ns < first:
            before[(event.venue, event.connection)] = event
    inside = [
        e
        for e in events
        if e.receipt_ts_ns >= first and (last is None or e.receipt_ts_ns <= last or not isinstance(e, Health))
    ]
    return [*sorted(before.values(), key=lambda h: h.receipt_ts_ns), *inside]


async def _source_topics(consumer: AIOKafkaConsumer, namespace: str, bases: Sequence[str]) -> list[str]:
    pattern = tick_topic_pattern(namespace)
    wanted = {topic_name(f"{TICKS_PREFIX}{b.upper()}", namespace) for b in bases}
    names = sorted(t for t in await consumer.topics() if pattern.match(t) and (not wanted or t in wanted))
    health = topic_name(HEALTH, namespace)
    return [*names, health] if health in await consumer.topics() else names


async def _bounds(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    start_ns: int | None,
    end_ns: int | None,
    offsets: OffsetRange,
    health_topic: str,
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    first = await consumer.beginning_offsets(partitions)
    last = await consumer.end_offsets(partitions)

    async def at(ns: int | None, offset: int | None, default: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        if offset is not None:
            return {tp: min(max(offset, first[tp]), last[tp]) for tp in partitions}
        if ns is None:
            return dict(default)
        found = await consumer.offsets_for_times({tp: ns // 1_000_000 for tp in partitions})
        return {tp: (found[tp].offset if found.get(tp) is not None else last[tp]) for tp in partitions}

    starts, ends = await at(start_ns, offsets.start, first), await at(end_ns, offsets.end, last)
    health_ends = await at(end_ns, None, last) if offsets.end is None else last
    for tp in partitions:
        if tp.topic == health_topic:
            # From the beginning (the state before the range); up to --to, or to its end when the
            # range is in offsets (tick offsets say nothing of the health topic's).
            starts[tp], ends[tp] = first[tp], health_ends[tp]
    return starts, ends


async def _read_until(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], ends: dict[TopicPartition, int], counts: TopicRange
) -> list[list[Event]]:
    streams: dict[TopicPartition, list[Event]] = {tp: [] for tp in partitions}
    pending = {tp for tp in partitions if ends[tp] > await consumer.position(tp)}
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=1000)
        for tp, records in batch.items():
            for record in records:
                if record.offset >= ends[tp]:
                    pending.discard(tp)
                    break
                counts.records += 1
                streams[tp] += _decode(tp.topic, record.value, counts)
            if tp in pending and await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
    return list(streams.values())


def _decode(topic: str, value: bytes | None, counts: TopicRange) -> list[Event]:
    try:
        if topic.endswith(f"{HEALTH}"):
            counts.health += 1
            return [decode_health(value or b"")]
        ticks = decode_ticks(value or b"")
    except ValueError:  # msgspec.DecodeError is a ValueError
        counts.undecodable += 1
        return []
    counts.ticks += len(ticks)
    return list(ticks)
