"""Issue 13 item 4: the broker stopped and restarted under a running simulator, ingest, worker and API.

All stay up; the API's /health shows the outage; processing resumes; no old price passes as fresh
(every tick on the topics has a receipt time within seconds of its exchange time, although the
broker was gone for longer); every event ingest accepted is delivered, conflated or counted lost.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from arbstream.soak import Probes, SoakSettings, Stack
from plumbing.kafka import wait_until_ready
from schemas.market import decode_ticks

pytestmark = pytest.mark.integration

OUTAGE_S = 8.0
RESUME_BOUND_S = 10.0
"""Issue 13: processing resumes within 10 s of the broker being back."""
FRESH_BOUND_NS = 3_000_000_000
"""A tick's receipt time may trail its exchange time by this much; the outage is longer."""
ACCOUNTING = ("queued", "delivered", "conflated", "lost", "pending", "in_flight")


@dataclass
class Outage:
    alive_during: list[dict[str, int]] = field(default_factory=list)
    health_during: list[tuple[str, list[str]]] = field(default_factory=list)
    resumed_after_s: float | None = None
    accounting: dict[str, float] | None = None
    ticks_checked: int = 0
    worst_receipt_lag_ns: int = 0
    dead_after: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    work = tmp_path_factory.mktemp("outage")
    saved = dict(os.environ)
    os.environ.update(
        {
            "ARBSTREAM_VENUES": "binance,bybit,okx",
            "ARBSTREAM_SYMBOLS": "BTC,ETH,SOL",
            "ARBSTREAM_WORKER_INSTANCE_ID": "outage-worker",
        }
    )
    for name in ("KAFKA_BOOTSTRAP", "ARBSTREAM_KAFKA_BOOTSTRAP"):
        os.environ.pop(name, None)
    try:
        settings = SoakSettings(namespace="outage", kafka_data_dir=work / "kafka")
        stack = Stack(settings, work)
        try:
            stack.start_broker()
            for name in ("simulator", "ingest", "worker", "api"):
                stack.spawn(name)
            yield asyncio.run(_scenario(stack, settings))
        finally:
            stack.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def _until(check: object, bound_s: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < bound_s:
        if await check():  # type: ignore[operator]
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    return None


async def _scenario(stack: Stack, settings: SoakSettings) -> Outage:
    result = Outage()
    async with aiohttp.ClientSession() as http:
        probes = Probes(stack, http)
        follower = asyncio.create_task(probes.follow(stack.broker.bootstrap, settings.namespace))
        try:

            async def healthy() -> bool:
                return await probes.health() in ("ok", "degraded") and probes.processed_since(0) > 0

            assert await _until(healthy, 120) is not None, f"stack never became healthy: {probes.last_reasons}"
            await asyncio.to_thread(stack.broker.stop)
            down_until = time.monotonic() + OUTAGE_S
            while time.monotonic() < down_until:
                result.alive_during.append(stack.dead())
                result.health_during.append((await probes.health(), list(probes.last_reasons)))
                await asyncio.sleep(1.0)
            stack.broker.launch()
            await wait_until_ready(stack.broker.bootstrap, 60, is_alive=stack.broker.is_running)
            delivered = (await probes.ingest()).get("arbstream_ingest_delivered_total", {}).get("", 0)
            processed = probes.processed_since(0)

            async def flows_again() -> bool:
                now = (await probes.ingest()).get("arbstream_ingest_delivered_total", {}).get("", 0)
                return now > delivered and probes.processed_since(0) > processed

            result.resumed_after_s = await _until(flows_again, 60)
            result.accounting = await _consistent_accounting(probes)
            result.ticks_checked, result.worst_receipt_lag_ns = await _receipt_lags(stack, settings.namespace)
            result.dead_after = stack.dead()
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
    return result


async def _consistent_accounting(probes: Probes) -> dict[str, float] | None:
    """One scrape where the publisher's books balance (the scrape races the event loop, so retry)."""
    for _ in range(100):
        metrics = await probes.ingest()
        values = {
            name: metrics.get(f"arbstream_ingest_{name}_total", metrics.get(f"arbstream_ingest_{name}", {}))
            for name in ACCOUNTING
        }
        row = {name: value.get("", 0.0) for name, value in values.items()}
        if row["queued"] == row["delivered"] + row["conflated"] + row["lost"] + row["pending"] + row["in_flight"]:
            return row
        await asyncio.sleep(0.05)
    return None


async def _receipt_lags(stack: Stack, namespace: str) -> tuple[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.subscribe(pattern=rf"^{namespace}\.ticks\..*")
        checked, worst, empty_polls = 0, 0, 0
        deadline = time.monotonic() + 60
        while empty_polls < 4 and time.monotonic() < deadline:  # to the end of what is there
            batch = await consumer.getmany(timeout_ms=500)
            empty_polls = 0 if batch else empty_polls + 1
            for records in batch.values():
                for record in records:
                    for tick in decode_ticks(record.value or b""):
                        if not tick.exchange_ts_missing:
                            checked += 1
                            worst = max(worst, tick.receipt_ts_ns - tick.exchange_ts_ns)
        return checked, worst
    finally:
        await consumer.stop()


def test_every_service_stays_up_through_the_outage(outage: Outage) -> None:
    assert outage.alive_during and all(dead == {} for dead in outage.alive_during)
    assert outage.dead_after == {}


def test_health_shows_the_outage(outage: Outage) -> None:
    statuses = [status for status, _ in outage.health_during]
    assert "ok" not in statuses[2:], outage.health_during  # a second or two to notice
    assert any("broker unreachable" in reasons for _, reasons in outage.health_during), outage.health_during


def test_processing_resumes_within_ten_seconds(outage: Outage) -> None:
    assert outage.resumed_after_s is not None and outage.resumed_after_s <= RESUME_BOUND_S, outage.resumed_after_s


def test_no_old_price_is_stamped_fresh(outage: Outage) -> None:
    assert outage.ticks_checked > 100
    assert outage.worst_receipt_lag_ns <= FRESH_BOUND_NS, outage.worst_receipt_lag_ns / 1e9


def test_every_accepted_event_is_delivered_conflated_or_counted_lost(outage: Outage) -> None:
    assert outage.accounting is not None, "the publisher's books never balanced"
    assert outage.accounting["delivered"] > 0
