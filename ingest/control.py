"""Ingest's side of ``POST /api/reload-config``: follow the ``control`` topic from its end.

A group-less consumer assigned to the topic's single partition and placed at its end
at start: only requests sent while this process runs are acted on (an old request
must not re-apply a configuration on every restart). A request that cannot be
decoded is logged and counted, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from plumbing.kafka import ensure_topics
from schemas.control import CONTROL, CONTROL_CONFIG, ControlRequest, decode_request
from schemas.topics import topic_name

log = logging.getLogger(__name__)

OnRequest = Callable[[ControlRequest], Awaitable[None]]


class ControlFollower:
    def __init__(self, bootstrap: str, namespace: str, on_request: OnRequest) -> None:
        self.topic = topic_name(CONTROL, namespace)
        self.bootstrap = bootstrap
        self.on_request = on_request
        self.handled = 0
        self.rejected = 0

    async def run(self, retry_s: float = 5.0) -> None:
        """Follow forever; a broker failure is logged and retried (requests sent meanwhile are lost,
        and the API's answer already said whether the broker took them)."""
        while True:
            try:
                await self._follow()
            except (KafkaError, OSError) as exc:
                log.error("control: following %s failed, retrying in %gs: %r", self.topic, retry_s, exc)
                await asyncio.sleep(retry_s)

    async def _follow(self) -> None:
        await ensure_topics(self.bootstrap, [self.topic], 1, CONTROL_CONFIG)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_end(partition)
            async for record in consumer:
                await self._handle(record.value)
        finally:
            await consumer.stop()

    async def _handle(self, raw: bytes | None) -> None:
        try:
            request = decode_request(raw or b"")
        except msgspec.DecodeError as exc:
            self.rejected += 1
            log.error("control: ignored an undecodable request (%d so far): %s", self.rejected, exc)
            return
        log.info("control: %s (request %s)", request.op, request.request_id)
        await self.on_request(request)
        self.handled += 1
