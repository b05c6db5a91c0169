"""Publisher: per-symbol micro-batches within the linger window, delivery accounting (retried, then
reported lost - never silent)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from ingest.publisher import Publisher, tick_records
from plumbing.kafka import tick_partition
from schemas.market import Funding, Quote, decode_ticks


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


def quote(base: str = "BTC", venue: str = "binance", bid: str = "1", ts: int = 2) -> Quote:
    return Quote(
        instrument_id=f"{base}-USDT-PERP@{venue}",
        venue=venue,
        native_symbol=f"{base}USDT",
        base=base,
        bid=Decimal(bid),
        bid_size=Decimal("1"),
        ask=Decimal("2"),
        ask_size=Decimal("1"),
        exchange_ts_ns=1,
        receipt_ts_ns=ts,
    )


FUNDING = Funding(
    instrument_id="ETH-USDT-PERP@okx",
    venue="okx",
    native_symbol="ETH-USDT-SWAP",
    base="ETH",
    rate=Decimal("0.0001"),
    interval_h=8,
    exchange_ts_ns=1,
    receipt_ts_ns=3,
)


def started(failures: int = 0, retries: int = 5, linger_ms: int = 5) -> tuple[Publisher, FlakyProducer]:
    publisher = Publisher("unused:1", "ns", queue_size=100, linger_ms=linger_ms, retries=retries)
    producer = FlakyProducer(failures)
    publisher._producer = producer
    publisher._drain_task = asyncio.create_task(publisher._drain())
    return publisher, producer


async def run_with(failures: int, retries: int) -> tuple[Publisher, FlakyProducer]:
    publisher, producer = started(failures, retries)
    await publisher.publish([quote()])
    for _ in range(50):
        await asyncio.sleep(0.01)
    await publisher.stop()
    return publisher, producer


async def test_failed_delivery_is_retried_until_it_succeeds() -> None:
    publisher, producer = await run_with(failures=2, retries=5)
    assert (publisher.stats.delivered, publisher.stats.delivery_errors, publisher.stats.lost) == (1, 2, 0)
    assert [topic for topic, _, _ in producer.sent] == ["ns.ticks.BTC"] * 3
    assert {key for _, key, _ in producer.sent} == {b"BTC"}


async def test_delivery_failing_past_retries_is_counted_lost() -> None:
    publisher, producer = await run_with(failures=10, retries=2)
    assert (publisher.stats.delivered, publisher.stats.delivery_errors, publisher.stats.lost) == (0, 3, 1)
    assert len(producer.sent) == 3


async def test_ticks_queued_within_the_window_become_one_record_per_symbol() -> None:
    publisher, producer = started(linger_ms=20)
    btc = [quote(bid=str(n), ts=10 + n) for n in range(1, 4)]
    await publisher.publish([btc[0], FUNDING])
    await asyncio.sleep(0.005)  # inside the first tick's window
    await publisher.publish(btc[1:])
    await publisher.stop()
    by_topic = {topic: (key, decode_ticks(value)) for topic, key, value in producer.sent}
    assert by_topic == {"ns.ticks.BTC": (b"BTC", btc), "ns.ticks.ETH": (b"ETH", [FUNDING])}
    assert (publisher.stats.records, publisher.stats.delivered, publisher.stats.queued) == (2, 4, 4)


async def test_a_tick_after_the_window_goes_in_the_next_record() -> None:
    publisher, producer = started(linger_ms=5)
    first, second = quote(bid="1"), quote(bid="2")
    await publisher.publish([first])
    await asyncio.sleep(0.05)
    await publisher.publish([second])
    await publisher.stop()
    assert [decode_ticks(value) for _, _, value in producer.sent] == [[first], [second]]


def test_tick_records_keep_order_split_large_batches_and_key_by_symbol() -> None:
    ticks = [quote(bid=str(n), ts=n) for n in range(1, 8)] + [FUNDING]
    records = tick_records(ticks, "ns", max_ticks=3)
    assert [(topic, key, count) for topic, key, _, count in records] == [
        ("ns.ticks.BTC", b"BTC", 3),
        ("ns.ticks.BTC", b"BTC", 3),
        ("ns.ticks.BTC", b"BTC", 1),
        ("ns.ticks.ETH", b"ETH", 1),
    ]
    assert [t for _, _, value, _ in records for t in decode_ticks(value)] == ticks
    # The symbol key lands where the instrument-keyed ticks used to: the symbol's partition.
    assert tick_partition(b"BTC", 3) == tick_partition(b"BTC-USDT-PERP@binance", 3)
