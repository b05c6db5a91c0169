"""The tracked universe and the listing statuses on their compacted topics.

``instruments`` (keyed by instrument id) holds one ``Instrument`` per tracked contract and a
tombstone for each one no longer tracked (delisted, or dropped from the universe); ``listings``
(keyed by venue) holds each venue's ``ListingStatus``. Both are compacted, so a consumer that
reads them from the beginning gets the current state. At start ingest reads what an earlier run
left on ``instruments`` and tombstones this process's venues' instruments it no longer tracks
(venues served by another ingest process, ``ARBSTREAM_VENUES``, are left alone).

Deliberately not :mod:`ingest.publisher`: these are a few records per refresh, each awaited
(acks=all), not a stream of ticks.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from plumbing.kafka import ensure_topics, partition_counts
from schemas.market import Instrument, ListingStatus, encode
from schemas.topics import INSTRUMENTS, LISTINGS, topic_name

log = logging.getLogger(__name__)

COMPACTED = {"cleanup.policy": "compact"}
Record = tuple[bytes, bytes | None]


class _Venue(msgspec.Struct):
    """The one field of an encoded ``Instrument`` the catalog needs (the others are ignored)."""

    venue: str


_venue_decoder = msgspec.json.Decoder(_Venue)


def venue_of(encoded: bytes) -> str | None:
    """The venue of an ``instruments`` record, from the typed record (``Instrument.venue``), not
    its key; None when the value is not an instrument (left alone: not known to be ours)."""
    try:
        return _venue_decoder.decode(encoded).venue
    except msgspec.DecodeError:
        return None


def universe_records(
    previous: dict[str, bytes], tracked: Iterable[Instrument], venues: Collection[str]
) -> list[Record]:
    """Records that turn ``previous`` (id -> encoded instrument on the topic) into ``tracked``:
    changed or new instruments, then tombstones for this process's venues' untracked ids."""
    current = {i.instrument_id: encode(i) for i in tracked}
    records: list[Record] = [(key.encode(), value) for key, value in current.items() if previous.get(key) != value]
    gone = sorted(key for key, value in previous.items() if key not in current and venue_of(value) in venues)
    return records + [(key.encode(), None) for key in gone]


class Catalog:
    """Publishes the universe and listing statuses; remembers what the topic holds."""

    def __init__(self, bootstrap: str, namespace: str, venues: Collection[str]) -> None:
        self.bootstrap = bootstrap
        self.venues = set(venues)
        self.instruments_topic = topic_name(INSTRUMENTS, namespace)
        self.listings_topic = topic_name(LISTINGS, namespace)
        self.on_topic: dict[str, bytes] = {}
        """Instrument id -> encoded value, as the ``instruments`` topic holds it now."""
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)

    async def start(self) -> None:
        await ensure_topics(self.bootstrap, [self.instruments_topic, self.listings_topic], 1, COMPACTED)
        self.on_topic = await read_compacted(self.bootstrap, self.instruments_topic)
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish_universe(self, tracked: Iterable[Instrument]) -> tuple[int, int]:
        """(instruments written, tombstones written)."""
        records = universe_records(self.on_topic, tracked, self.venues)
        await self._send_all(self.instruments_topic, records)
        for key, value in records:
            if value is None:
                self.on_topic.pop(key.decode(), None)
            else:
                self.on_topic[key.decode()] = value
        tombstones = sum(1 for _, value in records if value is None)
        return len(records) - tombstones, tombstones

    async def publish_statuses(self, statuses: Iterable[ListingStatus]) -> None:
        await self._send_all(self.listings_topic, [(s.venue.encode(), encode(s)) for s in statuses])

    async def _send_all(self, topic: str, records: list[Record]) -> None:
        futures = [await self._producer.send(topic, value, key=key) for key, value in records]
        for future in futures:
            await future  # raises on a failed delivery: the caller logs it and retries next refresh


async def read_compacted(bootstrap: str, topic: str) -> dict[str, bytes]:
    """Latest value per key of a (compacted) topic, read to its current end; tombstones drop keys."""
    count = (await partition_counts(bootstrap, [topic])).get(topic, 0)  # callers created the topic
    partitions = [TopicPartition(topic, p) for p in range(count)]
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        latest: dict[str, bytes] = {}
        while await _behind(consumer, ends):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.key is None:
                        continue
                    key = record.key.decode()
                    if record.value is None:
                        latest.pop(key, None)
                    else:
                        latest[key] = record.value
        return latest
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False
