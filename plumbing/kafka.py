"""Small helpers over aiokafka shared by every service: readiness probe, topic creation."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from plumbing.errors import BrokerNotReadyError, ConfigError

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
    """Create topics that do not exist yet (idempotent), replicated as the cluster's default says.

    CreateTopics v4+ takes replication -1 for "the broker's default.replication.factor"; aiokafka
    speaks v3 at most, so the default is read from a broker: 1 on the single local broker, 3 on a
    three-node cluster, and no service needs a setting for it.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            replication = await default_replication(admin)
            wanted = [
                NewTopic(name, num_partitions=partitions, replication_factor=replication, topic_configs=configs or {})
                for name in missing
            ]
            # Another process may create the same topic between list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


async def default_replication(admin: AIOKafkaAdminClient) -> int:
    """A broker's ``default.replication.factor`` (1 when the broker does not report it, e.g. Redpanda)."""
    brokers = (await admin.describe_cluster())["brokers"]
    broker_id = str(brokers[0]["node_id"])
    resource = ConfigResource(ConfigResourceType.BROKER, broker_id, configs={"default.replication.factor": None})
    for response in await admin.describe_configs([resource]):
        for _code, _message, _type, _name, entries in response.resources:
            for entry in entries:
                if entry[0] == "default.replication.factor" and entry[1]:
                    return int(entry[1])
    return 1


def resolve_bootstrap(configured: str | None, host: str = "127.0.0.1", port: int = 9092) -> str:
    """The cluster a single service should use.

    ``KAFKA_BOOTSTRAP``/``ARBSTREAM_KAFKA_BOOTSTRAP`` when set; otherwise the local
    broker on its default address if one is listening (``arbstream broker`` or
    ``arbstream up`` started it). A service never starts a broker of its own:
    several services would race for the same port and data directory.
    """
    if configured:
        return configured
    from plumbing.broker import port_in_use

    if port_in_use(host, port):
        return f"{host}:{port}"
    raise ConfigError(
        f"no broker: set KAFKA_BOOTSTRAP=host:port, or start the local one with `arbstream broker` "
        f"(nothing listens on {host}:{port}), or run everything with `arbstream up`"
    )


def symbol_of(instrument_id: bytes) -> bytes:
    """``BTC-USDT-PERP@binance`` -> ``BTC``: canonical instrument ids start with the canonical base."""
    return instrument_id.split(b"-", 1)[0]


def tick_partition(instrument_id: bytes, partitions: int) -> int:
    """The partition of a tick on ``ticks.<BASE>``: chosen by the base, not the whole key.

    Every venue's ticks of one symbol share a partition, so they are consumed in one
    total order, and the worker's per-symbol table is co-partitioned with the tick
    topics directly (no repartition hop). Same hash as Kafka's default partitioner.
    """
    return symbol_partition(symbol_of(instrument_id), partitions)


@functools.lru_cache(maxsize=65_536)
def symbol_partition(symbol: bytes, partitions: int) -> int:
    """The partition of everything keyed or routed by a symbol (ticks, the worker's changelog, prices).

    Cached: aiokafka's murmur2 is pure Python (~1.6 µs a key) and producers ask once per record,
    always for the same few hundred symbols."""
    digest: int = murmur2(symbol)
    return (digest & 0x7FFFFFFF) % partitions


def symbol_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka ``partitioner=`` for tick producers (see :func:`tick_partition`)."""
    if key is None:
        raise ValueError("ticks must be keyed by instrument id")
    return all_partitions[tick_partition(key, len(all_partitions))]


async def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    """Partition count of each existing topic among ``names``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}
