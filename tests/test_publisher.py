"""Publisher: per-symbol micro-batches within the linger window, delivery accounting (retried, then
reported lost - never silent)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from ingest import publisher as publisher_module
from ingest.publisher import (
    BATCH_OVERHEAD,
    RECORD_OVERHEAD,
    Publisher,
    _identity,
    _Record,
    budgeted_chunks,
    tick_chunks,
    tick_records,
)
from plumbing.kafka import tick_partition
from schemas.market import Funding, Health, HealthState, Quote, decode_ticks, encode_ticks


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
    publisher = Publisher("unused:1", "ns", max_pending=100, linger_ms=linger_ms, retries=retries)
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


class StuckProducer(FlakyProducer):
    """A broker that is down: send() waits until ``release`` is set (aiokafka waits for metadata)."""

    def __init__(self) -> None:
        super().__init__(failures=0)
        self.release = asyncio.Event()

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        await self.release.wait()
        return await super().send(topic, value, key)


def health(connection: str, state: HealthState, ts: int) -> Health:
    return Health(venue="okx", connection=connection, state=state, exchange_ts_ns=ts, receipt_ts_ns=ts)


async def test_a_stuck_broker_never_blocks_publish_and_overload_keeps_the_newest_per_instrument() -> None:
    publisher = Publisher("unused:1", "ns", max_pending=10, linger_ms=0)
    producer = StuckProducer()
    publisher._producer = producer
    publisher._drain_task = asyncio.create_task(publisher._drain())
    await publisher.publish([quote(ts=1)])
    await asyncio.sleep(0.01)  # the drain took it and waits in send()
    eth = [quote(base="ETH", bid=str(n), ts=100 + n) for n in range(1, 30)]
    sol = [quote(base="SOL", bid=str(n), ts=200 + n) for n in range(1, 30)]
    for e, s in zip(eth, sol, strict=True):  # 58 events while the broker is stuck: none waits
        await asyncio.wait_for(publisher.publish([e, s]), 0.1)
    await publisher.publish_health(health("okx-0", HealthState.STREAMING, 7))
    await publisher.publish_health(health("okx-1", HealthState.STALE, 8))
    # Bounded: conflated to the newest quote per instrument and health per connection, counted.
    assert publisher.stats.pending <= 10 and publisher.stats.conflated >= 48
    producer.release.set()
    await publisher.stop()
    sent = [t for topic, _, value in producer.sent if topic != "ns.health" for t in decode_ticks(value)]
    assert sent[0] == quote(ts=1) and len(sent) <= 1 + 10
    for ticks in (eth, sol):  # each instrument: its newest quotes, in order, ending with the last one
        kept = [t for t in sent if t.base == ticks[0].base]
        assert kept == ticks[len(ticks) - len(kept) :] and kept
    healths = [value for topic, _, value in producer.sent if topic == "ns.health"]
    assert len(healths) == 2  # both connections kept: health is conflated per connection, not per venue
    stats = publisher.stats
    assert stats.queued == stats.delivered + stats.conflated + stats.lost and stats.lost == 0


async def test_a_retry_never_sends_an_older_quote_behind_a_newer_one() -> None:
    publisher, producer = started(failures=1, linger_ms=0)
    older, newer = quote(bid="1", ts=10), quote(bid="2", ts=20)
    await publisher.publish([older])
    await asyncio.sleep(0.01)  # sent; its delivery failed
    await publisher.publish([newer])
    await publisher.stop()
    delivered = [t for _, _, value in producer.sent for t in decode_ticks(value)]
    # The failed record was re-queued ahead of the newer one: older then newer, never newer then older.
    assert delivered == [older, older, newer]
    assert (publisher.stats.delivered, publisher.stats.conflated, publisher.stats.lost) == (2, 0, 0)


async def test_a_failed_quote_already_superseded_by_a_sent_one_is_conflated_not_resent() -> None:
    publisher, producer = started(linger_ms=0)
    older, newer = quote(bid="1", ts=10), quote(bid="2", ts=20)
    publisher._last_sent_ns[_identity(newer)] = newer.receipt_ts_ns  # newer already sent
    publisher._failed(ingest_record(publisher, [older]), ConnectionError("broker went away"))
    await publisher.stop()
    assert producer.sent == [] and (publisher.stats.conflated, publisher.stats.lost) == (1, 0)


def ingest_record(publisher: Publisher, events: list[Quote]) -> Any:
    ((topic, key, value, chunk),) = tick_chunks(events, publisher.namespace)
    publisher.stats.in_flight += len(chunk)
    return _Record(topic, key, value, chunk)


async def test_stop_with_the_broker_down_counts_what_it_could_not_deliver() -> None:
    publisher = Publisher("unused:1", "ns", max_pending=100, linger_ms=0, stop_timeout_s=0.2)
    producer = StuckProducer()
    publisher._producer = producer
    publisher._drain_task = asyncio.create_task(publisher._drain())
    await publisher.publish([quote(ts=1), quote(base="ETH", ts=2)])
    await asyncio.sleep(0.01)
    await publisher.publish([quote(base="SOL", ts=3)])
    await publisher.stop()
    assert (publisher.stats.delivered, publisher.stats.lost) == (0, 3)


async def test_without_conflation_publish_waits_for_room_and_keeps_every_tick() -> None:
    publisher = Publisher("unused:1", "ns", max_pending=3, linger_ms=0, conflate_when_full=False)
    producer = StuckProducer()
    publisher._producer = producer
    publisher._drain_task = asyncio.create_task(publisher._drain())
    ticks = [quote(bid=str(n), ts=n) for n in range(1, 9)]
    publishing = asyncio.create_task(publisher.publish(ticks[:1]))
    await publishing
    await asyncio.sleep(0.01)
    blocked = asyncio.create_task(_publish_each(publisher, ticks[1:]))
    await asyncio.sleep(0.05)
    assert not blocked.done() and publisher.stats.pending == 3  # waits for the broker, drops nothing
    producer.release.set()
    await blocked
    await publisher.stop()
    assert [t for _, _, value in producer.sent for t in decode_ticks(value)] == ticks
    assert publisher.stats.conflated == 0


async def _publish_each(publisher: Publisher, ticks: list[Quote]) -> None:
    for tick in ticks:
        await publisher.publish([tick])


async def test_without_conflation_one_large_batch_is_kept_whole() -> None:
    publisher = Publisher("unused:1", "ns", max_pending=3, linger_ms=0, conflate_when_full=False)
    producer = StuckProducer()
    publisher._producer = producer
    publisher._drain_task = asyncio.create_task(publisher._drain())
    ticks = [quote(bid=str(n), ts=n) for n in range(1, 9)]
    await publisher.publish(ticks)  # one recorded frame may carry more events than max_pending
    producer.release.set()
    await publisher.stop()
    assert [t for _, _, value in producer.sent for t in decode_ticks(value)] == ticks
    assert publisher.stats.conflated == 0


def _stuck(conflate_after_ms: int, conflate_when_full: bool = True) -> tuple[Publisher, StuckProducer]:
    publisher = Publisher(
        "unused:1",
        "ns",
        max_pending=1_000,
        linger_ms=0,
        conflate_when_full=conflate_when_full,
        conflate_after_ms=conflate_after_ms,
    )
    producer = StuckProducer()
    publisher._producer = producer
    publisher._drain_task = asyncio.create_task(publisher._drain())
    return publisher, producer


async def _behind_the_producer(publisher: Publisher, producer: StuckProducer, wait_s: float) -> list[Quote]:
    """One quote the drain takes and is stuck sending, 10 of ETH and 10 of SOL behind it for ``wait_s``."""
    await publisher.publish([quote(ts=1)])
    await asyncio.sleep(0.01)  # the drain took it and waits in send()
    for n in range(1, 11):
        await publisher.publish([quote(base="ETH", bid=str(n), ts=100 + n), quote(base="SOL", bid=str(n), ts=200 + n)])
    await asyncio.sleep(wait_s)
    producer.release.set()
    await publisher.stop()
    return [t for _, _, value in producer.sent for t in decode_ticks(value) if isinstance(t, Quote)]


async def test_events_that_waited_past_the_threshold_for_a_busy_producer_are_conflated_and_counted() -> None:
    publisher, producer = _stuck(conflate_after_ms=20)
    sent = await _behind_the_producer(publisher, producer, wait_s=0.05)  # far below max_pending, but old
    assert sent[0] == quote(ts=1)
    assert sorted(sent[1:], key=lambda q: q.base) == [
        quote(base="ETH", bid="10", ts=110),
        quote(base="SOL", bid="10", ts=210),
    ]
    stats = publisher.stats
    assert stats.conflated == 18
    assert stats.queued == stats.delivered + stats.conflated + stats.lost and stats.lost == 0


async def test_events_taken_before_the_threshold_are_all_sent() -> None:
    publisher, producer = _stuck(conflate_after_ms=10_000)
    sent = await _behind_the_producer(publisher, producer, wait_s=0.05)
    assert len(sent) == 21 and publisher.stats.conflated == 0


async def test_a_publisher_that_must_keep_every_tick_never_conflates_by_age() -> None:
    publisher, producer = _stuck(conflate_after_ms=20, conflate_when_full=False)
    sent = await _behind_the_producer(publisher, producer, wait_s=0.05)
    assert len(sent) == 21 and publisher.stats.conflated == 0


class UnansweredProducer(FlakyProducer):
    """A broker slow to answer: send() returns at once, each delivery completes on :meth:`answer`."""

    def __init__(self) -> None:
        super().__init__(failures=0)
        self.unanswered: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.unanswered.append(future)
        return future

    def answer(self) -> None:
        for future in self.unanswered:
            future.set_result(None)
        self.unanswered.clear()


async def test_nothing_more_goes_to_the_producer_until_it_answered_so_a_backlog_is_conflated_not_queued() -> None:
    publisher = Publisher("unused:1", "ns", max_pending=1_000, linger_ms=0, conflate_after_ms=20)
    producer = UnansweredProducer()
    publisher._producer = producer
    publisher._drain_task = asyncio.create_task(publisher._drain())
    await publisher.publish([quote(ts=1)])
    await asyncio.sleep(0.01)
    assert len(producer.sent) == 1  # handed over, not answered yet
    for n in range(1, 11):
        await publisher.publish([quote(base="ETH", bid=str(n), ts=100 + n), quote(base="SOL", bid=str(n), ts=200 + n)])
    await asyncio.sleep(0.05)
    assert len(producer.sent) == 1 and publisher.stats.pending == 20  # waiting here, not in the producer
    producer.answer()
    await asyncio.sleep(0.01)
    sent = [t for _, _, value in producer.sent[1:] for t in decode_ticks(value) if isinstance(t, Quote)]
    assert sorted(sent, key=lambda q: q.base) == [
        quote(base="ETH", bid="10", ts=110),
        quote(base="SOL", bid="10", ts=210),
    ]
    producer.answer()
    await publisher.stop()
    stats = publisher.stats
    assert stats.conflated == 18 and stats.delivered == 3
    assert stats.queued == stats.delivered + stats.conflated + stats.lost


def _batch_bytes(records: list[bytes], key: bytes = b"BTC") -> int:
    return BATCH_OVERHEAD + sum(len(key) + len(value) + RECORD_OVERHEAD for value in records)


def test_a_symbol_stops_before_its_batch_overfills_and_its_tail_is_left_in_order() -> None:
    btc = [quote(bid=str(n), ts=n) for n in range(1, 8)]
    two = [encode_ticks(btc[0:2]), encode_ticks(btc[2:4])]
    records, left = budgeted_chunks([*btc, FUNDING], "ns", max_bytes=_batch_bytes(two), max_ticks=2)
    assert [(topic, chunk) for topic, _, _, chunk in records] == [
        ("ns.ticks.BTC", btc[0:2]),
        ("ns.ticks.BTC", btc[2:4]),
        ("ns.ticks.ETH", [FUNDING]),
    ]
    assert left == btc[4:]
    # A record larger than the whole budget still goes (alone): a symbol is never starved.
    records, left = budgeted_chunks([*btc, FUNDING], "ns", max_bytes=1, max_ticks=2)
    assert [len(chunk) for _, _, _, chunk in records] == [2, 1] and left == btc[2:]
    assert budgeted_chunks(btc, "ns", max_ticks=2) == (tick_chunks(btc, "ns", max_ticks=2), [])


async def test_a_drain_hands_the_producer_one_batch_per_partition_and_the_rest_goes_next_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More than a producer batch of one symbol: the drain never waits in send() for a full batch;
    the rest waits, in order, ahead of newer ticks (decision 0042)."""
    btc = [quote(bid=str(n), ts=n) for n in range(1, 601)]
    one_record = encode_ticks(btc[:256])
    monkeypatch.setattr(publisher_module, "PRODUCE_BATCH_BYTES", _batch_bytes([one_record]) + 1_000)
    publisher = Publisher("unused:1", "ns", max_pending=1_000, linger_ms=0)
    producer = UnansweredProducer()
    publisher._producer = producer
    publisher._drain_task = asyncio.create_task(publisher._drain())
    await publisher.publish(btc)
    await asyncio.sleep(0.01)
    assert [len(decode_ticks(value)) for _, _, value in producer.sent] == [256]
    assert (publisher.stats.pending, publisher.stats.held_over) == (344, 344)
    newer = quote(bid="9", ts=1_000)
    await publisher.publish([newer])
    for _ in range(2):
        producer.answer()
        await asyncio.sleep(0.01)
    producer.answer()
    await publisher.stop()
    assert [len(decode_ticks(value)) for _, _, value in producer.sent] == [256, 256, 89]
    assert [t for _, _, value in producer.sent for t in decode_ticks(value)] == [*btc, newer]
    stats = publisher.stats
    assert (stats.delivered, stats.conflated, stats.lost, stats.held_over) == (601, 0, 0, 344 + 89)
