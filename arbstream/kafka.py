"""Small helpers over aiokafka shared by every service: readiness probe, topic creation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from arbstream.errors import BrokerNotReadyError, ConfigError

PROBE_TOPIC = "__arbstream_probe"


async def roundtrip(bootstrap: str, topic: str = PROBE_TOPIC, timeout_s: float = 10.0) -> None:
    """Produce one record and read it back; raises on any failure.

    A listening port is not enough: a KRaft node accepts connections before it
    has elected itself controller and can serve produce/fetch.
    """
    marker = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await producer.start()
        meta = await asyncio.wait_for(producer.send_and_wait(topic, marker), timeout_s)
        await consumer.start()
        tp = TopicPartition(topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = await asyncio.wait_for(consumer.getone(), timeout_s)
        if record.value != marker:
            raise BrokerNotReadyError(f"probe read back {record.value!r}, expected {marker!r}")
    finally:
        await consumer.stop()
        await producer.stop()


async def wait_until_ready(bootstrap: str, timeout_s: float, is_alive: Callable[[], bool] | None = None) -> float:
    """Retry :func:`roundtrip` until it succeeds; returns the seconds waited.

    ``is_alive`` is an optional zero-argument callable; when it returns False the
    wait stops at once (the broker process died, waiting longer cannot help).
    """
    started = time.monotonic()
    # aiokafka logs every refused connection at ERROR; while we are deliberately
    # polling a starting broker those lines are noise, so mute them for the wait.
    client_log = logging.getLogger("aiokafka")
    previous_level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        return await _poll(bootstrap, timeout_s, is_alive, started)
    finally:
        client_log.setLevel(previous_level)


async def _poll(bootstrap: str, timeout_s: float, is_alive: Callable[[], bool] | None, started: float) -> float:
    last_error: BaseException | None = None
    while time.monotonic() - started < timeout_s:
        if is_alive is not None and not is_alive():
            raise BrokerNotReadyError("broker process exited while waiting for readiness")
        try:
            await roundtrip(bootstrap, timeout_s=5.0)
            return time.monotonic() - started
        except (KafkaError, OSError, TimeoutError, BrokerNotReadyError) as exc:
            last_error = exc
            await asyncio.sleep(0.25)
    raise BrokerNotReadyError(
        f"broker at {bootstrap} did not accept produce/consume within {timeout_s:.0f}s: {last_error!r}"
    )


async def ensure_topics(
    bootstrap: str, names: list[str], partitions: int, configs: dict[str, str] | None = None
) -> None:
    """Create topics that do not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=configs or {})
            for name in names
            if name not in existing
        ]
        if wanted:
            # Another process may create the same topic between list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def resolve_bootstrap(configured: str | None, host: str = "127.0.0.1", port: int = 9092) -> str:
    """The cluster a single service should use.

    ``KAFKA_BOOTSTRAP``/``ARBSTREAM_KAFKA_BOOTSTRAP`` when set; otherwise the local
    broker on its default address if one is listening (``arbstream broker`` or
    ``arbstream up`` started it). A service never starts a broker of its own:
    several services would race for the same port and data directory.
    """
    if configured:
        return configured
    from arbstream.broker import port_in_use

    if port_in_use(host, port):
        return f"{host}:{port}"
    raise ConfigError(
        f"no broker: set KAFKA_BOOTSTRAP=host:port, or start the local one with `arbstream broker` "
        f"(nothing listens on {host}:{port}), or run everything with `arbstream up`"
    )
