"""One adjustment to faust-streaming 0.15.3 that its settings cannot express, and its check.

Faust creates its consumer with ``fetch_max_wait_ms=1500`` hard-coded (no setting reaches it).
aiokafka keeps one fetch in flight per broker and leaves partitions that still have buffered
records out of it, so while a busy partition is being processed the next fetch long-polls the
idle ones (hundreds of ``ticks.<BASE>`` partitions are idle most of the time) for up to 1.5 s
and holds back fresh ticks: measured in ``make demo`` before decision 0004's fix, state lagged
the ticks by p50 0.93 s / p99 1.55 s. ``tests/test_processors_faust.py`` checks the patch on the
real consumer Faust builds, so a Faust upgrade that renames anything fails there, not silently.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_ORIGINAL = "_arbstream_original_create_worker_consumer"


def limit_fetch_wait(max_wait_ms: int) -> None:
    """Make Faust's worker consumers long-poll for at most ``max_wait_ms`` (idempotent)."""
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread_class, _ORIGINAL, None) or thread_class._create_worker_consumer

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        # Read by AIOKafkaConsumer.start() when it builds its Fetcher.
        consumer._fetch_max_wait_ms = max_wait_ms
        return consumer

    setattr(thread_class, _ORIGINAL, original)
    thread_class._create_worker_consumer = create_worker_consumer
