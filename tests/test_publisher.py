"""Publisher delivery accounting: failed deliveries are retried, then reported lost - never silent."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from ingest.publisher import Publisher
from schemas.market import Quote


class FlakyProducer:
    """Stands in for AIOKafkaProducer's accumulator: the first ``failures`` deliveries fail."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, key, value))
        if self.failures > 0:
            self.failures -= 1
            future.set_exception(ConnectionError("broker went away"))
        else:
            future.set_result(None)
        return future

    async def flush(self) -> None:
        return None

    async def stop(self) -> None:
        return None


QUOTE = Quote(
    instrument_id="BTC-USDT-PERP@binance",
    venue="binance",
    native_symbol="BTCUSDT",
    base="BTC",
    bid=Decimal("1"),
    bid_size=Decimal("1"),
    ask=Decimal("2"),
    ask_size=Decimal("1"),
    exchange_ts_ns=1,
    receipt_ts_ns=2,
)


async def run_with(failures: int, retries: int) -> tuple[Publisher, FlakyProducer]:
    publisher = Publisher("unused:1", "ns", queue_size=100, retries=retries)
    producer = FlakyProducer(failures)
    publisher._producer = producer
    publisher._drain_task = asyncio.create_task(publisher._drain())
    await publisher.publish([QUOTE])
    for _ in range(50):
        await asyncio.sleep(0.01)
    await publisher.stop()
    return publisher, producer


async def test_failed_delivery_is_retried_until_it_succeeds() -> None:
    publisher, producer = await run_with(failures=2, retries=5)
    assert (publisher.stats.delivered, publisher.stats.delivery_errors, publisher.stats.lost) == (1, 2, 0)
    assert [topic for topic, _, _ in producer.sent] == ["ns.ticks.BTC"] * 3
    assert {key for _, key, _ in producer.sent} == {b"BTC-USDT-PERP@binance"}


async def test_delivery_failing_past_retries_is_counted_lost() -> None:
    publisher, producer = await run_with(failures=10, retries=2)
    assert (publisher.stats.delivered, publisher.stats.delivery_errors, publisher.stats.lost) == (0, 3, 1)
    assert len(producer.sent) == 3
