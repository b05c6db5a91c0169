"""Ingest's side of ``funding-settlements``: what backfills already wrote, and the writer.

The backfill (:mod:`ingest.funding_backfill`) publishes with the API's key and encoding
(decision 0018), and resumes from the newest point a backfill wrote per instrument: a point whose
``observed_ts_ns`` equals its settlement time is the venue's own record (decision 0023).
"""

from __future__ import annotations

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from plumbing.kafka import ensure_topics, partition_counts
from schemas.funding import FundingSettlement, decode_settlement, encode
from schemas.topics import FUNDING_SETTLEMENTS, SETTLEMENTS_CONFIG, topic_name


async def read_backfilled(bootstrap: str, topic: str) -> dict[str, int]:
    """Per instrument, the newest settlement the venue's own record (a backfill) put on the topic."""
    count = (await partition_counts(bootstrap, [topic])).get(topic, 0)
    partitions = [TopicPartition(topic, p) for p in range(count)]
    newest: dict[str, int] = {}
    if not partitions:
        return newest
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for records in (await consumer.getmany(timeout_ms=500, max_records=20_000)).values():
                for record in records:
                    _note_backfilled(newest, record.value)
    finally:
        await consumer.stop()
    return newest


def _note_backfilled(newest: dict[str, int], value: bytes | None) -> None:
    if value is None:
        return
    try:
        s = decode_settlement(value)
    except msgspec.DecodeError:
        return  # the API counts and reports undecodable settlements; nothing to resume from here
    if s.observed_ts_ns == s.settled_ts_ns and s.settled_ts_ns > newest.get(s.instrument_id, -1):
        newest[s.instrument_id] = s.settled_ts_ns


class SettlementWriter:
    """Publishes settlements to ``funding-settlements`` with the API's key and encoding."""

    def __init__(self, bootstrap: str, namespace: str, partitions: int) -> None:
        self.bootstrap = bootstrap
        self.topic = topic_name(FUNDING_SETTLEMENTS, namespace)
        self.partitions = partitions
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> dict[str, int]:
        """Create the topic if needed, start the producer; returns what the topic already holds."""
        await ensure_topics(self.bootstrap, [self.topic], self.partitions, SETTLEMENTS_CONFIG)
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=20)
        await self._producer.start()
        return await read_backfilled(self.bootstrap, self.topic)

    async def publish(self, settlements: list[FundingSettlement]) -> None:
        assert self._producer is not None, "start() first"
        sends = [await self._producer.send(self.topic, encode(s), key=s.key.encode()) for s in settlements]
        for delivery in sends:
            await delivery

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
