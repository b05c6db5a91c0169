"""Stage 2: what one Python aiokafka client can push through this broker — the ceiling for every other stage.

The messages are the serialised tick messages ingest publishes (schemas.market
Quote/Funding JSON), keyed by instrument id, produced with ingest's producer
settings (batched, linger 5 ms, acks=all) and read back with a plain consumer.
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from arbstream.bench.common import Result, median
from arbstream.bench.kafka_io import Record, make_producer, send_all
from arbstream.bench.ticks import TickSource
from plumbing.kafka import ensure_topics
from schemas.topics import topic_name

WARMUP_MESSAGES = 5_000
"""A first batch untimed: the JVM's JIT and the page cache warm up on it."""


def _records(source: TickSource, topic: str, count: int) -> list[Record]:
    # Same keys and values as real ticks, redirected to the limit topic.
    return [(topic, key, value) for _, key, value in source.records("", count, time.time_ns(), 100_000)]


async def _prime(producer: AIOKafkaProducer, topic: str, partitions: int) -> None:
    """One acknowledged record per partition before timing: a new topic's leaders may not be elected yet."""
    for partition in range(partitions):
        await producer.send_and_wait(topic, b"prime", partition=partition)


async def _produce(bootstrap: str, records: list[Record], partitions: int) -> float:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await _prime(producer, records[0][0], partitions)
        started = time.perf_counter()
        await send_all(producer, records)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, partitions: int, count: int, timeout_s: float = 120.0) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        started = time.perf_counter()
        while seen < count and time.perf_counter() - started < timeout_s:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(records) for records in batch.values())
        if seen < count:
            raise TimeoutError(f"read {seen} of {count} messages back from {topic} in {timeout_s:.0f}s")
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def _one_run(bootstrap: str, topic: str, partitions: int, records: list[Record]) -> Result:
    await ensure_topics(bootstrap, [topic], partitions)
    produce_s = await _produce(bootstrap, records, partitions)
    # The consumer reads the priming records too; they are a handful among tens of thousands.
    consume_s = await _consume(bootstrap, topic, partitions, len(records) + partitions)
    size = sum(len(k) + len(v) for _, k, v in records)
    return {
        "produce_msgs_per_s": len(records) / produce_s,
        "consume_msgs_per_s": len(records) / consume_s,
        "produce_mb_per_s": size / produce_s / 1e6,
        "consume_mb_per_s": size / consume_s / 1e6,
    }


async def run_broker_limit(
    bootstrap: str, namespace: str, source: TickSource, messages: int, runs: int, partitions: int
) -> Result:
    warmup = topic_name("bench-limit-warmup", namespace)
    await ensure_topics(bootstrap, [warmup], partitions)
    await _produce(bootstrap, _records(source, warmup, WARMUP_MESSAGES), partitions)
    results = []
    for run in range(runs):
        topic = topic_name(f"bench-limit-{run}", namespace)  # a fresh topic: consume reads exactly this run
        results.append(await _one_run(bootstrap, topic, partitions, _records(source, topic, messages)))
    keys = ("produce_msgs_per_s", "consume_msgs_per_s", "produce_mb_per_s", "consume_mb_per_s")
    summary = {key: median([r[key] for r in results]) for key in keys}
    sample = _records(source, warmup, 1)[0]
    return {
        **summary,
        "limit_msgs_per_s": min(summary["produce_msgs_per_s"], summary["consume_msgs_per_s"]),
        "messages_per_run": messages,
        "runs": runs,
        "message_bytes": len(sample[1]) + len(sample[2]),
        "partitions": partitions,
        "per_run": results,
    }
