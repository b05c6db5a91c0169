"""Taking over a symbol after a rebalance or a crash: the quotes of its last seconds.

Faust's table recovery restores each symbol's row (episodes, cooldowns, funding,
``applied_offset``) from the compacted changelog; the row has no quotes. Quotes older than the
longest max quote age are useless, so a new owner re-reads only the last seconds of a newly
assigned tick partition before the first record it is delivered (Faust resumes at the group's
committed offset): those ticks were processed by the previous owner and only refill the
in-memory quotes (decision 0019).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from schemas.market import Funding, Quote, decode_ticks

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0

Ticks = dict[TopicPartition, list[Quote | Funding]]


class RebuildReader:
    def __init__(self, bootstrap: str, window_ms: int) -> None:
        self.bootstrap = bootstrap
        self.window_ms = window_ms

    async def read(self, firsts: dict[tuple[str, int], int]) -> dict[tuple[str, int], list[Quote | Funding]]:
        """Per (topic, partition): its ticks written in the last ``window_ms`` before offset ``firsts[tp]``
        (the first one the new owner was delivered)."""
        ends = {TopicPartition(topic, partition): first for (topic, partition), first in firsts.items() if first > 0}
        if not ends:
            return {}
        try:
            read = await self._ticks_before(ends)
        except (KafkaError, TimeoutError) as exc:
            # Not fatal: the quotes refill from new ticks within the max quote age.
            log.error("recent ticks of %d partitions not read back (%r): their quotes start empty", len(ends), exc)
            return {}
        return {(tp.topic, tp.partition): ticks for tp, ticks in read.items()}

    async def _ticks_before(self, ends: dict[TopicPartition, int]) -> Ticks:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(list(ends))  # the client fetches metadata for assigned topics only
            since = int(time.time() * 1000) - self.window_ms
            starts = await consumer.offsets_for_times({tp: since for tp in ends})
            todo = {tp: hit.offset for tp, hit in starts.items() if hit is not None and hit.offset < ends[tp]}
            if not todo:
                return {}
            consumer.assign(list(todo))
            for tp, offset in todo.items():
                consumer.seek(tp, offset)
            return await _read_until(consumer, {tp: ends[tp] for tp in todo})
        finally:
            await consumer.stop()


async def _read_until(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> Ticks:
    read: Ticks = {tp: [] for tp in ends}
    open_tps = set(ends)
    deadline = time.monotonic() + READ_TIMEOUT_S
    while open_tps:
        if time.monotonic() > deadline:
            unread = sorted(str(tp) for tp in open_tps)
            raise TimeoutError(f"recent ticks of {unread} not read in {READ_TIMEOUT_S:.0f}s")
        batch = await consumer.getmany(*open_tps, timeout_ms=200, max_records=50_000)
        for tp, records in batch.items():
            for record in records:
                if record.offset >= ends[tp]:
                    break
                read[tp].extend(_ticks(record.value))
            if records and records[-1].offset + 1 >= ends[tp]:
                open_tps.discard(tp)
        open_tps -= {tp for tp in open_tps if await consumer.position(tp) >= ends[tp]}
    return read


def _ticks(value: bytes | None) -> Iterable[Quote | Funding]:
    try:
        return decode_ticks(value or b"")
    except msgspec.DecodeError:
        return []  # rejected (and counted) when it was first processed
