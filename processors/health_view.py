"""Every worker's view of venue health, read from the ``health`` topic.

Health is small and global (any symbol's legs need any venue's state), so each
worker follows the whole topic with its own group-less consumer instead of a
Faust GlobalTable. A venue counts as unhealthy while ANY of its connections
last reported disconnected, stale, error or gap: conservative on purpose, a
leg is only usable while its venue is known to be fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from aiokafka import AIOKafkaConsumer

from processors.arbitrage import UNHEALTHY
from schemas.market import Health, decode_health

log = logging.getLogger(__name__)


class HealthView:
    def __init__(self) -> None:
        self.by_connection: dict[str, Health] = {}
        self.by_venue: dict[str, Health] = {}
        self._task: asyncio.Task[None] | None = None

    def apply(self, health: Health) -> None:
        self.by_connection[f"{health.venue}|{health.connection}"] = health
        mine = [h for k, h in self.by_connection.items() if k.startswith(f"{health.venue}|")]
        worst = next((h for h in mine if h.state in UNHEALTHY), health)
        self.by_venue[health.venue] = worst

    async def follow(self, bootstrap: str, topic: str) -> None:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            async for record in consumer:
                try:
                    self.apply(decode_health(record.value))
                except msgspec.DecodeError as exc:
                    log.error("undecodable health record at %s/%s: %s", record.partition, record.offset, exc)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
