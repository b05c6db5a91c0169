"""The API's side of ``POST /api/reload-config``: tell ingest, over the ``control`` topic."""

from __future__ import annotations

import logging
import time
import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from plumbing.kafka import ensure_topics
from schemas.control import CONTROL, CONTROL_CONFIG, ControlRequest, encode_request
from schemas.topics import topic_name

log = logging.getLogger(__name__)


async def request_ingest_reload(bootstrap: str | None, namespace: str, timeout_s: float = 10.0) -> bool:
    """Publish a reload request; True once the broker has it (every running ingest follows it).

    One short-lived producer per call: reloads are rare admin actions, not worth a
    connection kept open for the API's lifetime."""
    if bootstrap is None:
        return False
    topic = topic_name(CONTROL, namespace)
    request = ControlRequest(op="reload-config", request_id=uuid.uuid4().hex, sent_ts_ns=time.time_ns())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await ensure_topics(bootstrap, [topic], 1, CONTROL_CONFIG)
        await producer.start()
        await producer.send_and_wait(topic, encode_request(request), key=b"reload-config")
    except (KafkaError, OSError) as exc:
        log.error("reload-config: could not reach ingest over %s: %r", topic, exc)
        return False
    finally:
        await producer.stop()
    log.info("reload-config: request %s sent to ingest on %s", request.request_id, topic)
    return True
