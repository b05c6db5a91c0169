"""A listing refresh changes subscriptions and numbers without a restart (simulator + real Kafka).

Ingest runs in this process against the simulator's WebSockets and REST routes
(``ARBSTREAM_SIMULATOR_URL``), the same path as production; the test edits what the
simulator's REST listing endpoints answer, then calls one refresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiokafka.errors import KafkaError

from ingest.catalog import read_compacted
from ingest.instruments import load_all
from ingest.main import IngestService
from ingest.publisher import Publisher
from ingest.settings import IngestSettings
from ingest.simulator.market import SimQuote
from ingest.simulator.server import Simulator
from plumbing.broker import free_port
from plumbing.kafka import ensure_topics
from schemas.market import Funding, Health, Instrument, ListingSource, ListingStatus, Quote
from schemas.topics import HEALTH, HEALTH_CONFIG, INSTRUMENTS, LISTINGS, topic_name
from tests.helpers import running, service_env
from tests.test_listings import bundled

pytestmark = pytest.mark.integration

VENUES = ["binance", "okx"]
_encode = msgspec.json.Encoder(decimal_format="number")


def fixed_sizes(quote: Callable[[Instrument, int], SimQuote]) -> Callable[[Instrument, int], SimQuote]:
    """The simulated market with every book's sizes pinned (base units), so sizes can be asserted."""

    def pinned(inst: Instrument, now_ms: int) -> SimQuote:
        return quote(inst, now_ms)._replace(bid_size=Decimal("1.5"), ask_size=Decimal("2"))

    return pinned


def listing_override(listings: dict[str, dict[str, Any]]) -> Any:
    """Middleware answering the simulator's REST listing paths from ``listings`` (editable)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        venue, _, tail = request.path.lstrip("/").partition("/")
        key = "/" + tail + (f"?{request.query_string}" if request.query_string else "")
        if key in listings.get(venue, {}):
            return web.Response(body=_encode.encode(listings[venue][key]), content_type="application/json")
        response: web.StreamResponse = await handler(request)
        return response

    return middleware


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout_s}s: {what}")


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[str, dict[str, dict[str, Any]]]]:
    """(simulator URL, its editable REST listings): binance initially without SOLUSDT."""
    listings = {venue: bundled(venue) for venue in VENUES}
    info = listings["binance"]["/fapi/v1/exchangeInfo"]
    info["symbols"] = [s for s in info["symbols"] if s["symbol"] != "SOLUSDT"]
    sim = Simulator(load_all(VENUES), VENUES, tick_ms=50, auto_dislocations=False)
    sim.market.quote = fixed_sizes(sim.market.quote)  # type: ignore[method-assign,assignment]
    app = sim.app()
    app.middlewares.append(listing_override(listings))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", listings
    finally:
        await runner.cleanup()


async def test_refresh_follows_adds_delistings_and_multipliers(
    simulator: tuple[str, dict[str, dict[str, Any]]], kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    url, listings = simulator
    settings = IngestSettings(
        kafka_bootstrap=kafka_bootstrap,
        namespace=namespace,
        simulator_url=url,
        venues=VENUES,
        symbols=["BTC", "ETH", "SOL"],
        instruments_cache_dir=tmp_path,
        health_every_s=1,
        backoff_initial_s=0.2,
        backoff_max_s=1,
    )
    quotes: list[Quote] = []
    await ensure_topics(kafka_bootstrap, [topic_name(HEALTH, namespace)], 1, HEALTH_CONFIG)
    publisher = Publisher(kafka_bootstrap, namespace, 10_000)
    await publisher.start()

    async def on_events(events: list[Quote | Funding]) -> None:
        quotes.extend(e for e in events if isinstance(e, Quote))
        await publisher.publish(events)

    async def on_health(health: Health) -> None:
        await publisher.publish_health(health)

    async with aiohttp.ClientSession() as http:

        async def subscriptions() -> set[str]:
            async with http.get(f"{url}/control/status") as response:
                status = await response.json()
            return {f"{venue}:{sub}" for venue in VENUES for sub in status[venue]["subscriptions"]}

        def sizes_of(instrument_id: str, since_ns: int) -> set[Decimal | None]:
            return {q.bid_size for q in quotes if q.instrument_id == instrument_id and q.receipt_ts_ns > since_ns}

        service = IngestService(settings, http, on_events, on_health, kafka_bootstrap)
        try:
            await service.start()
            assert {v: listing.source for v, listing in service.listings.items()} == dict.fromkeys(
                VENUES, ListingSource.LIVE
            )

            async def first_state() -> bool:
                subs = await subscriptions()
                return {"binance:book:ETHUSDT", "okx:book:BTC-USDT-SWAP"} <= subs and bool(
                    sizes_of("BTC-USDT-PERP@okx", 0)
                )

            await eventually(first_state, 30, "ETHUSDT and BTC-USDT-SWAP subscribed and quoting")
            assert "binance:book:SOLUSDT" not in await subscriptions()
            assert sizes_of("BTC-USDT-PERP@okx", 0) == {Decimal("1.5")}  # 150 contracts x 0.01 BTC
            okx_untouched = service.supervisors["okx"].runners.copy()

            # The venues change their listings: Binance lists SOL and delists ETH; OKX makes a
            # BTC contract worth 0.1 BTC instead of 0.01.
            info = listings["binance"]["/fapi/v1/exchangeInfo"]
            info["symbols"] = [
                s for s in bundled("binance")["/fapi/v1/exchangeInfo"]["symbols"] if s["symbol"] != "ETHUSDT"
            ]
            okx_rows = next(iter(listings["okx"].values()))["data"]
            next(row for row in okx_rows if row["instId"] == "BTC-USDT-SWAP")["ctVal"] = "0.1"
            refreshed_at = time.time_ns()
            await service.refresh()
            applied_at = time.time_ns()  # the replaced runners are stopped: later quotes are the new ones

            async def second_state() -> bool:
                subs = await subscriptions()
                return (
                    "binance:book:SOLUSDT" in subs
                    and "binance:book:ETHUSDT" not in subs
                    and bool(sizes_of("BTC-USDT-PERP@okx", applied_at))
                    and bool(sizes_of("SOL-USDT-PERP@binance", applied_at))
                )

            await eventually(second_state, 30, "SOLUSDT subscribed, ETHUSDT unsubscribed, OKX BTC quoting again")
            assert sizes_of("BTC-USDT-PERP@okx", applied_at) == {Decimal("15.0")}  # 150 x 0.1 BTC
            assert not sizes_of("ETH-USDT-PERP@binance", applied_at)
            # Only the OKX socket carrying BTC-USDT-SWAP reconnected.
            okx_now = service.supervisors["okx"].runners
            replaced = {label for label, runner in okx_now.items() if okx_untouched.get(label) is not runner}
            assert replaced == {label for label, r in okx_now.items() if "BTC-USDT-SWAP" in str(r.plan.topics)}

            on_topic = await read_compacted(kafka_bootstrap, topic_name(INSTRUMENTS, namespace))
            ids = set(on_topic)
            assert {"SOL-USDT-PERP@binance", "BTC-USDT-PERP@binance", "BTC-USDT-PERP@okx"} <= ids
            assert "ETH-USDT-PERP@binance" not in ids
            okx_btc = msgspec.json.decode(on_topic["BTC-USDT-PERP@okx"], type=Instrument)
            assert okx_btc.contract_size == Decimal("0.1")
            assert ids == {i.instrument_id for i in service.tracked}

            statuses = {
                venue: msgspec.json.decode(value, type=ListingStatus)
                for venue, value in (await read_compacted(kafka_bootstrap, topic_name(LISTINGS, namespace))).items()
            }
            assert statuses["binance"].source is ListingSource.LIVE and statuses["binance"].error == ""
            assert statuses["binance"].tracked == sum(1 for i in service.tracked if i.venue == "binance")
            assert statuses["binance"].listed_ts_ns >= refreshed_at
        finally:
            await service.stop()
            await publisher.stop()


async def test_the_ingest_command_refreshes_on_its_timer(
    simulator: tuple[str, dict[str, dict[str, Any]]], kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    url, listings = simulator
    env = service_env(
        kafka_bootstrap,
        namespace,
        ARBSTREAM_SIMULATOR_URL=url,
        ARBSTREAM_VENUES="binance,okx",
        ARBSTREAM_SYMBOLS="BTC,ETH,SOL",
        ARBSTREAM_INSTRUMENTS_CACHE_DIR=str(tmp_path / "cache"),
        ARBSTREAM_LISTING_REFRESH_S="1",
    )
    instruments_topic = topic_name(INSTRUMENTS, namespace)

    async def on_topic() -> set[str]:
        try:
            return set(await read_compacted(kafka_bootstrap, instruments_topic))
        except KafkaError:  # not created yet
            return set()

    async with aiohttp.ClientSession() as http:

        async def binance_books() -> set[str]:
            async with http.get(f"{url}/control/status") as response:
                subscriptions = (await response.json())["binance"]["subscriptions"]
            return {s for s in subscriptions if s.startswith("book:")}

        with running(["ingest"], env, tmp_path / "ingest.log") as ingest:

            async def started() -> bool:
                return "ETH-USDT-PERP@binance" in await on_topic() and "book:ETHUSDT" in await binance_books()

            await eventually(started, 60, "ingest publishes the universe and subscribes ETHUSDT")
            info = listings["binance"]["/fapi/v1/exchangeInfo"]
            info["symbols"] = [s for s in info["symbols"] if s["symbol"] != "ETHUSDT"]

            async def delisted() -> bool:
                return "ETH-USDT-PERP@binance" not in await on_topic() and "book:ETHUSDT" not in await binance_books()

            await eventually(delisted, 30, "the timer's refresh tombstones and unsubscribes ETHUSDT")
            assert await binance_books() == {"book:BTCUSDT"}
            assert ingest.poll() is None, (tmp_path / "ingest.log").read_text()[-3000:]
