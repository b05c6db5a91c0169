"""Live listings: fetch, validate, cache atomically, fall back; sticky connection plans."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from ingest.catalog import universe_records
from ingest.instruments import BUNDLED_DIR
from ingest.listings import FetchPolicy, load_all_live, load_venue, refresh_venue
from ingest.main import IngestService
from ingest.plan import connection_instruments, same_inputs, sticky_plan
from ingest.runner import ConnectionRunner, RunnerConfig
from ingest.settings import IngestSettings
from ingest.supervisor import VenueSupervisor
from ingest.venues import venue_class
from ingest.venues.base import Connection, load_json
from plumbing.broker import free_port
from schemas.market import Instrument, ListingSource, encode

_encode = msgspec.json.Encoder(decimal_format="number")

FAST = FetchPolicy(timeout_s=0.5, attempts=2, deadline_s=1.5, backoff_s=0.05)


def bundled(venue: str) -> dict[str, Any]:
    listing: dict[str, Any] = load_json((BUNDLED_DIR / f"{venue}.json").read_bytes())
    return listing


def parsed(venue: str, listing: dict[str, Any]) -> list[Instrument]:
    return venue_class(venue).parse_instruments(listing)


class ListingServer:
    """Serves venues' REST listings in their own format under ``/<venue>``, like the venues do."""

    def __init__(self) -> None:
        self.listings: dict[str, dict[str, Any]] = {}
        """venue -> {"path?query": decoded response} (the bundled file's shape); edit to change."""
        self.hung: set[str] = set()
        self.requests: Counter[str] = Counter()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()

    def release(self) -> None:
        """Hung requests answer now (later ones are not held)."""
        self.hung.clear()
        self._release.set()

    def rest_base(self, venue: str) -> str:
        return f"{self.url}/{venue}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        venue = request.match_info["venue"]
        self.requests[venue] += 1
        if venue in self.hung:
            await self._release.wait()  # an endpoint that never answers (until the test ends)
        key = "/" + request.match_info["tail"] + (f"?{request.query_string}" if request.query_string else "")
        responses = self.listings.get(venue, {})
        if key not in responses:
            return web.Response(status=404, text=f"no {key}")
        return web.Response(body=_encode.encode(responses[key]), content_type="application/json")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{venue}/{tail:.*}", self._handle)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@asynccontextmanager
async def serving(**listings: dict[str, Any]) -> AsyncIterator[ListingServer]:
    server = ListingServer()
    server.listings.update(listings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_live_listing_is_validated_cached_atomically_and_used(tmp_path: Path) -> None:
    async with serving(binance=bundled("binance")) as server, aiohttp.ClientSession() as http:
        listing = await load_venue("binance", http, server.rest_base("binance"), tmp_path, FAST)
    assert listing.source is ListingSource.LIVE and listing.error == ""
    assert list(listing.instruments) == parsed("binance", bundled("binance"))
    assert os.listdir(tmp_path) == ["binance.json"]  # no temp file left behind
    assert parsed("binance", load_json((tmp_path / "binance.json").read_bytes())) == list(listing.instruments)
    status = listing.status(tracked=2, now_ns=123)
    assert (status.venue, status.source, status.instruments, status.tracked) == (
        "binance",
        ListingSource.LIVE,
        len(listing.instruments),
        2,
    )


async def test_fallback_chain_live_then_cache_then_bundled(tmp_path: Path) -> None:
    changed = bundled("binance")
    changed["/fapi/v1/exchangeInfo"]["symbols"] = changed["/fapi/v1/exchangeInfo"]["symbols"][:1]  # BTCUSDT only
    async with serving(binance=changed) as server, aiohttp.ClientSession() as http:
        live = await load_venue("binance", http, server.rest_base("binance"), tmp_path, FAST)
        assert [i.native_symbol for i in live.instruments] == ["BTCUSDT"]
        down = server.rest_base("binance")
    async with aiohttp.ClientSession() as http:  # the server is gone now
        cached = await load_venue("binance", http, down, tmp_path, FAST)
        assert cached.source is ListingSource.CACHE
        assert cached.instruments == live.instruments
        assert cached.listed_ts_ns == (tmp_path / "binance.json").stat().st_mtime_ns
        assert cached.error.startswith("live: 2 attempts failed") and "ClientConnectorError" in cached.error

        (tmp_path / "binance.json").unlink()
        fallback = await load_venue("binance", http, down, tmp_path, FAST)
    assert fallback.source is ListingSource.BUNDLED
    assert list(fallback.instruments) == parsed("binance", bundled("binance"))
    assert "cache: no file" in fallback.error


async def test_a_hung_venue_does_not_hold_back_the_others(tmp_path: Path) -> None:
    async with serving(binance=bundled("binance"), okx=bundled("okx")) as server, aiohttp.ClientSession() as http:
        server.hung.add("okx")
        result = await asyncio.wait_for(
            load_all_live(["okx", "binance"], http, server.rest_base, tmp_path, FAST), timeout=30
        )
    assert result["binance"].source is ListingSource.LIVE
    assert result["okx"].source is ListingSource.BUNDLED
    assert "deadline" in result["okx"].error or "timed out" in result["okx"].error
    assert server.requests["okx"] == 2  # both attempts were made, each cut at its timeout


async def test_an_unparseable_listing_is_never_cached(tmp_path: Path) -> None:
    (tmp_path / "binance.json").write_bytes((BUNDLED_DIR / "binance.json").read_bytes())
    before = (tmp_path / "binance.json").read_bytes()
    broken = {path: {"symbols": "not a list"} for path in bundled("binance")}
    async with serving(binance=broken) as server, aiohttp.ClientSession() as http:
        listing = await load_venue("binance", http, server.rest_base("binance"), tmp_path, FAST)
        assert server.requests["binance"] == len(broken)  # one attempt: a bad listing is not retried
    assert listing.source is ListingSource.CACHE and "unparseable listing" in listing.error
    assert (tmp_path / "binance.json").read_bytes() == before


async def test_a_failed_refresh_keeps_the_listing_in_use(tmp_path: Path) -> None:
    async with serving(binance=bundled("binance")) as server, aiohttp.ClientSession() as http:
        live = await load_venue("binance", http, server.rest_base("binance"), tmp_path, FAST)
        server.listings["binance"] = {}
        kept = await refresh_venue(live, http, server.rest_base("binance"), tmp_path, FAST)
    assert (kept.source, kept.instruments, kept.listed_ts_ns) == (live.source, live.instruments, live.listed_ts_ns)
    assert kept.error.startswith("refresh: 2 attempts failed") and "HTTP 404" in kept.error


def _conn(label: str, url: str, *topics: str) -> Connection:
    return Connection(label, url, tuple(topics))


def test_sticky_plan_never_touches_a_connection_that_lost_nothing() -> None:
    current = [_conn("v-0", "u", "a", "b", "c"), _conn("v-1", "u", "d", "e")]
    fresh = [_conn("v-0", "u", "a", "c", "x"), _conn("v-1", "u", "d", "e", "y")]  # b delisted; x, y new
    # v-0 reconnects anyway (b left it): it takes x; v-1 is untouched, so y gets a new socket.
    expected = [_conn("v-0", "u", "a", "c", "x"), _conn("v-1", "u", "d", "e"), _conn("v-2", "u", "y")]
    assert sticky_plan(current, fresh, cap=3) == expected
    # Same change, listing order shifted: nothing moves that need not.
    fresh = [_conn("v-0", "u", "x", "y", "a"), _conn("v-1", "u", "c", "d", "e")]
    assert sticky_plan(current, fresh, cap=3) == expected
    # A connection whose instruments changed reconnects anyway: it takes new topics while it has room.
    assert sticky_plan(current, fresh, cap=3, dirty={"v-1"}) == [
        _conn("v-0", "u", "a", "c", "x"),
        _conn("v-1", "u", "d", "e", "y"),
    ]
    # Pure additions never reconnect anything.
    added = [_conn("v-0", "u", "a", "b", "c"), _conn("v-1", "u", "d", "e", "z")]
    assert sticky_plan(current, added, cap=3)[:2] == current


def test_sticky_plan_respects_the_venues_connection_cap() -> None:
    current = [_conn("v-0", "u", "a", "b"), _conn("v-1", "u", "c")]
    fresh = [_conn("v-0", "u", "a", "b"), _conn("v-1", "u", "c", "d")]
    assert sticky_plan(current, fresh, cap=2) == [*current, _conn("v-2", "u", "d")]
    assert sticky_plan(current, fresh, cap=2, max_connections=2) == fresh


def test_sticky_plan_opens_new_connections_per_url_with_the_venues_labels() -> None:
    current = [_conn("b-public-0", "pub", "p1", "p2"), _conn("b-market-0", "mkt", "m1", "m2")]
    fresh = [
        _conn("b-public-0", "pub", "p1", "p2"),
        _conn("b-public-1", "pub", "p3"),
        _conn("b-market-0", "mkt", "m1", "m2"),
        _conn("b-market-1", "mkt", "m3"),
    ]
    plan = sticky_plan(current, fresh, cap=2)
    assert plan == [
        _conn("b-public-0", "pub", "p1", "p2"),
        _conn("b-market-0", "mkt", "m1", "m2"),
        _conn("b-public-1", "pub", "p3"),
        _conn("b-market-1", "mkt", "m3"),
    ]
    # A topic whose URL changed leaves its old connection; an emptied connection is dropped.
    assert sticky_plan([_conn("x-0", "old", "t")], [_conn("x-0", "new", "t")], cap=5) == [_conn("x-1", "new", "t")]


def test_sticky_plan_repacks_when_holes_would_waste_connections() -> None:
    current = [_conn(f"v-{n}", "u", f"t{n}a", f"t{n}b") for n in range(6)]
    fresh = [_conn("v-0", "u", "t0a", "t1a", "t2a", "t3a"), _conn("v-1", "u", "t4a", "t5a")]  # every "b" delisted
    assert sticky_plan(current, fresh, cap=4) == fresh


def test_connection_instruments_are_the_ones_whose_topics_ride_on_it() -> None:
    instruments = parsed("binance", bundled("binance"))
    parser = venue_class("binance")(instruments)
    plans = parser.connections("ws://x")
    btc = next(i for i in instruments if i.native_symbol == "BTCUSDT")
    solo = Connection("binance-public-0", plans[0].url, ("btcusdt@bookTicker",))
    assert connection_instruments(parser, solo, instruments) == (btc,)
    # A channel no single instrument owns (an all-market ticker) needs every instrument.
    shared = Connection("x", plans[0].url, ("btcusdt@bookTicker", "!ticker@arr"))
    assert connection_instruments(parser, shared, instruments) == tuple(instruments)


def test_universe_records_write_changes_and_tombstone_only_own_venues() -> None:
    instruments = parsed("binance", bundled("binance"))
    btc, eth = instruments[0], instruments[1]
    xrp = msgspec.structs.replace(btc, instrument_id="XRP-USDT-PERP@binance", base="XRP", native_symbol="XRPUSDT")
    okx = msgspec.structs.replace(btc, instrument_id="BTC-USDT-PERP@okx", venue="okx", native_symbol="BTC-USDT-SWAP")
    # The venue comes from each record's typed Instrument: okx's is left alone, an undecodable one too.
    previous = {btc.instrument_id: encode(btc), xrp.instrument_id: encode(xrp), okx.instrument_id: encode(okx)}
    previous["junk-key"] = b"{}"
    bigger = msgspec.structs.replace(btc, contract_size=Decimal(10))
    records = universe_records(previous, [bigger, eth], venues={"binance"})
    assert records == [
        (btc.instrument_id.encode(), encode(bigger)),
        (eth.instrument_id.encode(), encode(eth)),
        (b"XRP-USDT-PERP@binance", None),
    ]
    assert universe_records({btc.instrument_id: encode(btc)}, [btc], venues={"binance"}) == []


async def test_supervisor_replaces_only_the_connections_that_changed() -> None:
    instruments = parsed("binance", bundled("binance"))
    config = RunnerConfig("ws://127.0.0.1:1", "http://127.0.0.1:1", backoff_initial_s=60, backoff_max_s=60)

    async def sink(_: object) -> None:
        return None

    async with aiohttp.ClientSession() as http:

        def make(plan: Connection, mine: Any) -> ConnectionRunner:
            return ConnectionRunner(venue_class("binance"), mine, plan, config, sink, sink, http)

        supervisor = VenueSupervisor("binance", "ws://127.0.0.1:1", make)
        try:
            first = await supervisor.apply(instruments)
            assert sorted(first.started) == ["binance-market-0", "binance-public-0"]
            market = supervisor.runners["binance-market-0"]
            market.stats.frames = 42
            # Only the volume changes: nothing reconnects.
            fresher = [msgspec.structs.replace(i, volume_24h_quote=Decimal(7)) for i in instruments]
            assert sorted((await supervisor.apply(fresher)).kept) == ["binance-market-0", "binance-public-0"]
            assert supervisor.runners["binance-market-0"] is market
            # A tick size change touches both sockets of that symbol: both reconnect, counters carry on.
            btc = next(i for i in instruments if i.native_symbol == "BTCUSDT")
            changed = [msgspec.structs.replace(i, tick_size=Decimal("0.5")) if i is btc else i for i in instruments]
            change = await supervisor.apply(changed)
            assert sorted(change.replaced) == ["binance-market-0", "binance-public-0"] and not change.kept
            assert supervisor.runners["binance-market-0"].stats.frames == 42
            stopped = await supervisor.apply([])
            assert sorted(stopped.stopped) == ["binance-market-0", "binance-public-0"] and not supervisor.runners
        finally:
            await supervisor.stop()


async def test_start_does_not_wait_for_a_slow_listing_and_adopts_it_when_it_comes(tmp_path: Path) -> None:
    okx_btc_only = bundled("okx")
    rows = next(iter(okx_btc_only.values()))["data"]
    rows[:] = [row for row in rows if row["instId"] == "BTC-USDT-SWAP"]
    async with serving(binance=bundled("binance"), okx=okx_btc_only) as server, aiohttp.ClientSession() as http:
        server.hung.add("okx")
        settings = IngestSettings(
            simulator_url=server.url,  # REST (and WebSocket) bases under the test server
            venues=["binance", "okx"],
            symbols=["BTC", "ETH"],
            instruments_cache_dir=tmp_path,
            listing_start_wait_s=0.3,
            listing_timeout_s=20,
            listing_attempts=1,
            backoff_initial_s=60,
            backoff_max_s=60,
        )

        async def sink(_: object) -> None:
            return None

        service = IngestService(settings, http, sink, sink, bootstrap=None)
        try:
            await asyncio.wait_for(service.start(), timeout=15)
            okx = service.listings["okx"]
            assert (service.listings["binance"].source, okx.source) == (ListingSource.LIVE, ListingSource.BUNDLED)
            assert okx.error.startswith("live: still fetching after 0.3s")
            assert {i.native_symbol for i in service.supervisors["okx"].instruments} == {
                "BTC-USDT-SWAP",
                "ETH-USDT-SWAP",
                "BTC-USD-SWAP",
                "ETH-USD-SWAP",
            }
            server.release()
            for _ in range(100):
                if service.listings["okx"].source is ListingSource.LIVE:
                    break
                await asyncio.sleep(0.1)
            assert service.listings["okx"].source is ListingSource.LIVE
            assert [i.native_symbol for i in service.supervisors["okx"].instruments] == ["BTC-USDT-SWAP"]
            assert {i.venue for i in service.tracked} == {"binance", "okx"}
        finally:
            await service.stop()


def test_parse_inputs_include_multipliers_and_funding_intervals_but_not_volume() -> None:
    btc = parsed("binance", bundled("binance"))[0]
    assert same_inputs([btc], [msgspec.structs.replace(btc, volume_24h_quote=Decimal(123))])
    for changed in (
        {"funding_interval_h": 4},
        {"contract_size": Decimal(10)},
        {"price_multiplier": Decimal(1000)},
        {"tick_size": Decimal("0.001")},
    ):
        assert not same_inputs([btc], [msgspec.structs.replace(btc, **changed)]), changed
