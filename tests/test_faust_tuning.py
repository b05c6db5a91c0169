"""The worker's consumer long-polls briefly instead of Faust's hard-coded 1.5 s."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from processors.faust_tuning import limit_fetch_wait


def test_limit_fetch_wait_overrides_fausts_value_and_is_idempotent(monkeypatch: pytest.MonkeyPatch) -> None:
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    created: list[Any] = []

    def faust_original(self: Any, transport: Any) -> Any:
        consumer = SimpleNamespace(_fetch_max_wait_ms=1500, transport=transport)
        created.append(consumer)
        return consumer

    monkeypatch.setattr(thread_class, "_create_worker_consumer", faust_original)
    monkeypatch.delattr(thread_class, "_arbstream_fetch_wait_ms", raising=False)
    limit_fetch_wait(20)
    limit_fetch_wait(35)  # a second app in the same process re-patches, never wraps twice
    consumer = thread_class._create_worker_consumer(object(), "transport")
    assert (consumer._fetch_max_wait_ms, consumer.transport, len(created)) == (35, "transport", 1)
