"""Funding-history backfill on the real broker: the simulator's history endpoints -> ingest's
backfill -> ``funding-settlements`` -> the API's ``/api/funding-history`` and ``/api/coin-detail``
averages; a second run writes nothing; a live-observed settlement of the same time is replaced,
not counted twice; an unreachable venue is reported on its listing status (``/api/venues``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from api.funding_math import average_apr
from api.wire import PCT_PLACES, capped
from ingest.catalog import Catalog
from ingest.funding_backfill import FundingBackfill, run_backfill, with_backfill
from ingest.settlements_io import SettlementWriter
from ingest.simulator.server import Simulator, serve
from ingest.venues.base import make_instrument
from plumbing.broker import free_port
from plumbing.kafka import ensure_topics
from schemas.funding import FundingSettlement, decode_settlement, encode
from schemas.market import ContractKind, Instrument, ListingSource, ListingStatus
from schemas.topics import FUNDING_SETTLEMENTS, LISTINGS, SETTLEMENTS_CONFIG, topic_name
from tests.helpers import TopicWatcher, running, service_env
from tests.test_api_reliability import in_process_api, produce, status_of, wait_for
from tests.test_funding_integration import publish_worker_output

D = Decimal
MS = 1_000_000
HOUR_MS = 3_600_000


def eth(venue: str, native: str, interval_h: int) -> Instrument:
    linear = ContractKind.LINEAR
    return make_instrument(venue, native, "ETH", "USDT", "USDT", linear, funding_interval_h=interval_h)


# The funding scenario's ETH instruments (tests/test_funding_support.py), with their intervals.
BINANCE, BYBIT, OKX = eth("binance", "ETHUSDT", 8), eth("bybit", "ETHUSDT", 4), eth("okx", "ETH-USDT-SWAP", 8)


async def backfill_once(
    bootstrap: str, namespace: str, rest_base: Callable[[str], str], instruments: list[Instrument]
) -> FundingBackfill:
    async with aiohttp.ClientSession() as http:
        writer = SettlementWriter(bootstrap, namespace, 3)
        backfill = FundingBackfill(http, rest_base, 30, writer.publish)
        await run_backfill(backfill, writer, instruments)
    return backfill


async def records_on(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def publish_status(bootstrap: str, namespace: str, backfill: FundingBackfill) -> None:
    catalog = Catalog(bootstrap, namespace, ["okx"])
    await catalog.start()
    try:
        now = time.time_ns()
        status = ListingStatus(
            venue="okx", source=ListingSource.LIVE, listed_ts_ns=now, instruments=1, tracked=1,
            exchange_ts_ns=now, receipt_ts_ns=now,
        )  # fmt: skip
        await catalog.publish_statuses(with_backfill([status], backfill.statuses()))
    finally:
        await catalog.stop()


def expected_times(interval_h: int, now_ms: int) -> list[int]:
    step = interval_h * HOUR_MS
    start = now_ms - 30 * 24 * HOUR_MS
    return list(range(-(-start // step) * step, now_ms + 1, step))


@pytest.mark.integration
def test_backfilled_history_reaches_the_api_once_and_an_unreachable_venue_is_reported(
    kafka_bootstrap: str, namespace: str
) -> None:
    publish_worker_output(kafka_bootstrap, namespace, time.time_ns())  # ETH's live funding and quotes
    topic = topic_name(FUNDING_SETTLEMENTS, namespace)
    asyncio.run(ensure_topics(kafka_bootstrap, [topic], 3, SETTLEMENTS_CONFIG))
    # A settlement the API observed live (rate quoted before the time), of a time the venue reports.
    live_time = expected_times(8, time.time_ns() // MS)[-1]
    live = FundingSettlement(
        instrument_id=BINANCE.instrument_id, venue="binance", base="ETH", rate=D("0.0042"), interval_h=8,
        settled_ts_ns=live_time * MS, observed_ts_ns=live_time * MS - 5_000 * MS,
    )  # fmt: skip
    asyncio.run(produce(kafka_bootstrap, topic, [(live.key.encode(), encode(live), None)]))

    port = free_port()
    sim = Simulator([BINANCE, BYBIT, OKX], ["binance", "bybit", "okx"], auto_dislocations=False)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: OKX is unreachable

    def rest_base(venue: str) -> str:
        return dead + "/okx" if venue == "okx" else f"http://127.0.0.1:{port}/{venue}"

    async def with_simulator() -> tuple[FundingBackfill, FundingBackfill]:
        runner = await serve(sim, "127.0.0.1", port)
        try:
            first = await backfill_once(kafka_bootstrap, namespace, rest_base, [BINANCE, BYBIT, OKX])
            second = await backfill_once(kafka_bootstrap, namespace, rest_base, [BINANCE, BYBIT])
            return first, second
        finally:
            await runner.cleanup()

    started_ms = time.time_ns() // MS
    first, second = asyncio.run(with_simulator())
    binance_times, bybit_times = expected_times(8, started_ms), expected_times(4, started_ms)
    assert (first.progress["binance"].written, first.progress["bybit"].written) == (
        len(binance_times),
        len(bybit_times),
    )
    okx = first.progress["okx"]
    assert (okx.state, okx.errors, okx.written) == ("unreachable", 1, 0)
    assert "ETH-USDT-SWAP" in okx.last_error
    # The restart found everything on the topic: nothing fetched or written again.
    assert {v: (p.written, p.skipped) for v, p in second.progress.items()} == {"binance": (0, 1), "bybit": (0, 1)}
    assert asyncio.run(records_on(kafka_bootstrap, topic)) == 1 + len(binance_times) + len(bybit_times)
    asyncio.run(publish_status(kafka_bootstrap, namespace, first))

    with in_process_api(kafka_bootstrap, namespace) as (url, _ctx):
        wait_for("the history", lambda: status_of(url, "/api/stats/")[1].get("history_loaded") is True)
        series = {s["exchange"]: s["points"] for s in status_of(url, "/api/funding-history/ETH?days=35")[1]["series"]}
        for venue, inst, times in (("binance", BINANCE, binance_times), ("bybit", BYBIT, bybit_times)):
            points = series[venue]
            assert [p["t"] for p in points] == times
            assert [p["rate"] for p in points] == [sim.market.settled_rate(inst, t) for t in times]
            assert {p["interval_h"] for p in points} == {inst.funding_interval_h}
            assert not any(p["estimated_time"] for p in points)
        # The venue's record replaced the live observation of the same settlement.
        assert series["binance"][-1]["rate"] == sim.market.settled_rate(BINANCE, live_time) != D("0.0042")
        detail = status_of(url, "/api/coin-detail/ETH/")[1]
        stats = {s["exchange"]: s for s in detail["summary_stats"]}
        month = {v: [p for p in series[v] if p["t"] > time.time_ns() // MS - 30 * 24 * HOUR_MS] for v in series}
        for venue in ("binance", "bybit"):
            expected = average_apr((p["rate"], p["interval_h"]) for p in month[venue])
            assert expected is not None
            assert stats[venue]["avg_apr"] == capped(PCT_PLACES)(expected * 100)

        def okx_listing() -> dict[str, Any] | None:
            venues = {v["venue"]: v for v in status_of(url, "/api/venues")[1]["venues"]}
            listing: dict[str, Any] | None = venues.get("okx", {}).get("listing")
            return listing

        wait_for("okx's listing status", lambda: okx_listing() is not None)
        reported = okx_listing()
        assert reported is not None
        assert (reported["funding_backfill"]["state"], reported["funding_backfill"]["errors"]) == ("unreachable", 1)


SUPPORTED = [
    "binance",
    "bybit",
    "okx",
    "kucoin",
    "deribit",
    "bitmex",
    "gate",
    "mexc",
    "bitget",
    "hyperliquid",
    "coinex",
]


def _settled_by_instrument(records: list[Any]) -> dict[str, list[FundingSettlement]]:
    found: dict[str, list[FundingSettlement]] = {}
    for record in records:
        if record.topic.endswith(FUNDING_SETTLEMENTS) and record.value is not None:
            settled = decode_settlement(record.value)
            found.setdefault(settled.instrument_id, []).append(settled)
    return found


def _backfill_states(records: list[Any]) -> dict[str, str]:
    states = {}
    for record in records:
        if record.topic.endswith(LISTINGS) and record.value is not None:
            status = msgspec.json.decode(record.value, type=ListingStatus)
            if status.funding_backfill is not None:
                states[status.venue] = status.funding_backfill.state
    return states


@pytest.mark.integration
async def test_arbstream_ingest_backfills_the_simulated_venues(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """The real `arbstream ingest` against `arbstream simulate`: every supported venue's BTC
    instruments get 30 days of settlements on their grid, and each venue's listing status says done."""
    port = free_port()
    sim_env = service_env(kafka_bootstrap, namespace, ARBSTREAM_SIMULATOR_PORT=str(port), ARBSTREAM_SYMBOLS="BTC")
    ingest_env = service_env(
        kafka_bootstrap, namespace, ARBSTREAM_SYMBOLS="BTC", ARBSTREAM_SIMULATOR_URL=f"http://127.0.0.1:{port}"
    )
    topics = [topic_name(FUNDING_SETTLEMENTS, namespace), topic_name(LISTINGS, namespace)]
    started_ms = time.time_ns() // MS
    with running(["simulate"], sim_env, tmp_path / "sim.log"), running(["ingest"], ingest_env, tmp_path / "ingest.log"):
        async with TopicWatcher(kafka_bootstrap, topics) as watcher:
            await watcher.wait_for(
                lambda rs: all(_backfill_states(rs).get(v) == "done" for v in SUPPORTED), 120, "every backfill done"
            )
            states = _backfill_states(watcher.records)
            settled = _settled_by_instrument(watcher.records)
    assert {v: states[v] for v in ("paradex", "phemex", "coindcx")} == dict.fromkeys(
        ("paradex", "phemex", "coindcx"), "unsupported"
    )
    assert {i.split("@")[1] for i in settled} == set(SUPPORTED)
    for instrument_id, rows in settled.items():
        interval = rows[0].interval_h
        times = sorted(r.settled_ts_ns // MS for r in rows)
        assert len(set(times)) == len(times), instrument_id  # each settlement once
        assert times == list(range(times[0], times[-1] + 1, interval * HOUR_MS)), instrument_id  # no gap
        assert times[0] - (started_ms - 30 * 24 * HOUR_MS) in range(0, interval * HOUR_MS + 60_000), instrument_id
        assert time.time_ns() // MS - times[-1] < interval * HOUR_MS, instrument_id  # up to the latest
        assert all(r.observed_ts_ns == r.settled_ts_ns and r.base == "BTC" for r in rows)
