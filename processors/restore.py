"""Taking over symbols after a rebalance or a crash: rows from the changelog, quotes from the ticks.

The changelog (compacted, keyed by symbol, partitioned like the ticks) holds each symbol's
episodes, cooldowns, funding and ``applied_offset``; it has no quotes. Quotes older than the
longest max quote age are useless, so a new owner re-reads only the last seconds of each tick
partition: ticks the row (or the committed offset) already covers rebuild the quotes, the rest
are processed as usual (decision 0015).
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from arbstream.kafka import symbol_partition
from schemas.arbitrage import SymbolState, decode_state

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0


async def read_rows(bootstrap: str, changelog: str, partitions: set[int], wanted: set[str]) -> dict[str, SymbolState]:
    """The latest row of each ``wanted`` symbol in the given changelog partitions (read to their end)."""
    if not partitions or not wanted:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    rows: dict[str, SymbolState] = {}
    try:
        tps = [TopicPartition(changelog, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while not await _at_end(consumer, ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"changelog {changelog} not read to its end in {READ_TIMEOUT_S:.0f}s")
            batch = await consumer.getmany(timeout_ms=200, max_records=50_000)
            for records in batch.values():
                for record in records:
                    symbol = (record.key or b"").decode(errors="replace")
                    if symbol not in wanted:
                        continue
                    if record.value is None:
                        rows.pop(symbol, None)
                        continue
                    try:
                        rows[symbol] = decode_state(record.value)
                    except msgspec.DecodeError as exc:
                        log.error("undecodable changelog row for %s at %d: %s", symbol, record.offset, exc)
    finally:
        await consumer.stop()
    return rows


async def _at_end(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def changelog_partitions(bases: set[str], partitions: int) -> set[int]:
    return {symbol_partition(base.encode(), partitions) for base in bases}


async def committed_offsets(bootstrap: str, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The group's committed offset per partition (absent: never committed), in one request."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await asyncio.wait_for(admin.list_consumer_group_offsets(group, partitions=tps), READ_TIMEOUT_S)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}


async def rebuild_starts(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], window_ms: int
) -> dict[TopicPartition, int | None]:
    """First offset of each partition written within the last ``window_ms`` (None: nothing that recent)."""
    if not tps:
        return {}
    since = int(time.time() * 1000) - window_ms
    found = await consumer.offsets_for_times({tp: since for tp in tps})
    return {tp: (None if hit is None else hit.offset) for tp, hit in found.items()}
