"""CoinEx futures v2: documented frames in, exact values out; the dead-venue path stays unhealthy.

``tests/fixtures/frames/coinex.jsonl`` holds the frames as JSON text (after
gunzip); ``tests/fixtures/frames/coinex.gz.b64`` holds the same frames, line for
line, as the venue sends them: each line is base64 of the gzip-compressed frame
(``gzip.compress(line, mtime=0)``). Regenerate it from the .jsonl when that changes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal

import aiohttp
import msgspec
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ingest.instruments import BUNDLED_DIR, load_venue_instruments
from ingest.plan import sticky_plan
from ingest.runner import ConnectionRunner, RunnerConfig
from ingest.simulator.base import BOOK, FUNDING, ListingSpec, SimSession
from ingest.simulator.market import SimFunding, SimQuote
from ingest.simulator.server import Simulator
from ingest.simulator.venues.coinex import CoinexSim
from ingest.venues.base import Connection, FrameError, load_json
from ingest.venues.coinex import TICKER_PATH, Coinex
from plumbing.broker import free_port
from plumbing.errors import RetryableError
from schemas.market import ContractKind, Funding, Health, HealthState, Instrument, Quote
from tests.venues.conftest import FRAMES_DIR, fixture_frames
from tests.venues.listing_specs import generated_specs, listed, round_trip

RECEIPT = 1_790_516_465_130_000_000  # 2026-09-27 13:41:05.130 UTC
_encode = msgspec.json.Encoder(decimal_format="number").encode
FRAMES = fixture_frames("coinex")
ACK, PONG, ERROR, BTC_BBO, INVERSE_BBO, PEPE_BBO, STATE = FRAMES[:7]
EMPTY_BTC, ZERO_ETH, FROZEN_STATE, ONE_SIDED_SOL, UNTRACKED_BBO, DEPTH = FRAMES[7:13]
GZ_FRAMES = [base64.b64decode(line) for line in (FRAMES_DIR / "coinex.gz.b64").read_text().split()]


@pytest.fixture
def venue() -> Coinex:
    return Coinex(load_venue_instruments("coinex"))


def _quote(**fields: object) -> Quote:
    base = {"venue": "coinex", "receipt_ts_ns": RECEIPT}
    return Quote(**{**base, **fields})  # type: ignore[arg-type]


def test_instruments_from_market_status() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("coinex")}
    assert set(instruments) == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "PEPEUSDT", "BTCUSD"}  # offline MATIC dropped
    assert instruments["BTCUSDT"] == Instrument(
        instrument_id="BTC-USDT-PERP@coinex", venue="coinex", native_symbol="BTCUSDT", base="BTC", quote="USDT",
        settle="USDT", kind=ContractKind.LINEAR, contract_size=Decimal(1), tick_size=Decimal("0.01"),
        funding_interval_h=8,
    )  # fmt: skip
    assert instruments["BTCUSD"] == Instrument(
        instrument_id="BTC-USD-INV-PERP@coinex", venue="coinex", native_symbol="BTCUSD", base="BTC", quote="USD",
        settle="BTC", kind=ContractKind.INVERSE, contract_size=Decimal(1), tick_size=Decimal("0.1"),
        funding_interval_h=8,
    )  # fmt: skip
    assert instruments["PEPEUSDT"].tick_size == Decimal("1E-10")


def test_multiplied_base_scales_contract_size() -> None:
    row = {"market": "1000PEPEUSDT", "contract_type": "linear", "base_ccy": "1000PEPE", "quote_ccy": "USDT"}
    listing = {"/v2/futures/market": {"code": 0, "data": [{**row, "status": "online", "tick_size": "0.0000001"}]}}
    (pepe,) = Coinex.parse_instruments(listing)
    assert (pepe.instrument_id, pepe.base, pepe.price_multiplier, pepe.contract_size) == (
        "PEPE-USDT-PERP@coinex", "PEPE", Decimal(1000), Decimal(1000),
    )  # fmt: skip


def test_bbo_update(venue: Coinex) -> None:
    (quote,) = venue.parse(BTC_BBO, RECEIPT).events
    assert quote == _quote(
        instrument_id="BTC-USDT-PERP@coinex", native_symbol="BTCUSDT", base="BTC",
        quote="USDT", kind=ContractKind.LINEAR,
        bid=Decimal("86409.5"), bid_size=Decimal("0.8811"), ask=Decimal("86410"), ask_size=Decimal("0.0204"),
        exchange_ts_ns=1790516465160_000_000,
    )  # fmt: skip


def test_inverse_sizes_are_usd_converted_to_base(venue: Coinex) -> None:
    (quote,) = venue.parse(INVERSE_BBO, RECEIPT).events
    assert quote == _quote(
        instrument_id="BTC-USD-INV-PERP@coinex", native_symbol="BTCUSD", base="BTC",
        quote="USD", kind=ContractKind.INVERSE,
        bid=Decimal("86405.1"), bid_size=Decimal("0.5"),
        ask=Decimal("86405.2"), ask_size=Decimal("12000") / Decimal("86405.2"),
        exchange_ts_ns=1790516465172_000_000,
    )  # fmt: skip


def test_pepe_sizes_in_coins(venue: Coinex) -> None:
    (quote,) = venue.parse(PEPE_BBO, RECEIPT).events
    assert quote == _quote(
        instrument_id="PEPE-USDT-PERP@coinex", native_symbol="PEPEUSDT", base="PEPE",
        quote="USDT", kind=ContractKind.LINEAR,
        bid=Decimal("0.0000112031"), bid_size=Decimal("125000000"),
        ask=Decimal("0.0000112045"), ask_size=Decimal("98000000"),
        exchange_ts_ns=1790516465180_000_000,
    )  # fmt: skip


def test_state_update_one_funding_per_tracked_market(venue: Coinex) -> None:
    parsed = venue.parse(STATE, RECEIPT)
    assert parsed.error is None
    btc, sol = parsed.events  # NOPEUSDT is not tracked: skipped silently
    # latest_funding_rate settles at latest_funding_time (the upcoming settlement).
    assert btc == Funding(
        instrument_id="BTC-USDT-PERP@coinex", native_symbol="BTCUSDT", base="BTC",
        quote="USDT", kind=ContractKind.LINEAR,
        rate=Decimal("0.00008125"), predicted_rate=Decimal("0.00010311"), interval_h=8,
        next_funding_ts_ns=1790524800000_000_000, mark=Decimal("86408.81"), index=Decimal("86399.1"),
        venue="coinex", receipt_ts_ns=RECEIPT, exchange_ts_ns=RECEIPT, exchange_ts_missing=True,  # no time on the wire
    )  # fmt: skip
    # A 4 h gap between the two settlement times: the venue shortened the interval.
    assert sol == Funding(
        instrument_id="SOL-USDT-PERP@coinex", native_symbol="SOLUSDT", base="SOL",
        quote="USDT", kind=ContractKind.LINEAR,
        rate=Decimal("-0.00031"), predicted_rate=Decimal("-0.00052"), interval_h=4,
        next_funding_ts_ns=1790524800000_000_000, mark=Decimal("181.201"), index=Decimal("181.188"),
        venue="coinex", receipt_ts_ns=RECEIPT, exchange_ts_ns=RECEIPT, exchange_ts_missing=True,
    )  # fmt: skip


def test_control_frames_produce_no_events(venue: Coinex) -> None:
    ack = venue.parse(ACK, RECEIPT)
    assert ack.subscribed and not ack.events and ack.error is None
    pong = venue.parse(PONG, RECEIPT)
    assert not pong.subscribed and not pong.events and pong.error is None and not pong.replies
    error = venue.parse(ERROR, RECEIPT)
    assert error.error == "code 30002: unknown method" and not error.events and not error.subscribed
    for frame in (UNTRACKED_BBO, DEPTH):  # untracked market, unsubscribed channel
        assert venue.parse(frame, RECEIPT).events == []


def test_gzip_frames_decode_like_text(venue: Coinex) -> None:
    assert len(GZ_FRAMES) == len(FRAMES)
    for binary, text in zip(GZ_FRAMES, FRAMES, strict=True):
        assert binary[:2] == b"\x1f\x8b" and gzip.decompress(binary).decode() == text
        assert Coinex(load_venue_instruments("coinex")).parse(binary, RECEIPT) == venue.parse(text, RECEIPT)


def test_empty_book_gives_no_quote_and_one_error_per_symbol(venue: Coinex) -> None:
    first = venue.parse(EMPTY_BTC, RECEIPT)
    assert first.events == []
    assert first.error == "empty book for BTCUSDT (venue acknowledged but sends no prices)"
    assert venue.parse(EMPTY_BTC, RECEIPT).error is None  # named once per connection
    zero = venue.parse(ZERO_ETH, RECEIPT)  # zero prices count as empty: never a zero-priced Quote
    assert zero.events == [] and zero.error == "empty book for ETHUSDT (venue acknowledged but sends no prices)"
    venue.reset()
    assert venue.parse(EMPTY_BTC, RECEIPT).error is not None


def test_one_sided_book_leaves_the_empty_side_none(venue: Coinex) -> None:
    (quote,) = venue.parse(ONE_SIDED_SOL, RECEIPT).events
    assert quote == _quote(
        instrument_id="SOL-USDT-PERP@coinex", native_symbol="SOLUSDT", base="SOL",
        quote="USDT", kind=ContractKind.LINEAR,
        bid=Decimal("181.2"), bid_size=Decimal("36.4"), ask=None, ask_size=None,
        exchange_ts_ns=1790516465320_000_000,
    )  # fmt: skip


def test_frozen_state_gives_no_funding(venue: Coinex) -> None:
    parsed = venue.parse(FROZEN_STATE, RECEIPT)  # settlement 2026-09-22 08:00, five days before receipt
    assert parsed.events == []
    assert parsed.error == "frozen funding state for BTCUSDT (settlement at 1790064000000 ms is long past)"
    assert venue.parse(FROZEN_STATE, RECEIPT).error is None
    # The same frame read before its settlement time is a normal Funding.
    (funding,) = venue.parse(FROZEN_STATE, 1_790_050_000_000_000_000).events
    assert isinstance(funding, Funding) and funding.rate == Decimal("-0.00375")


def test_books_and_state_on_separate_connections(venue: Coinex) -> None:
    plans = venue.connections("wss://socket.coinex.com")
    assert [(p.label, p.url) for p in plans] == [
        ("coinex-bbo-0", "wss://socket.coinex.com/v2/futures"),
        ("coinex-state-0", "wss://socket.coinex.com/v2/futures"),
    ]
    assert venue.subscribe_messages(plans[0].topics) == [
        '{"method":"bbo.subscribe","params":{"market_list":["BTCUSDT","ETHUSDT","SOLUSDT","PEPEUSDT","BTCUSD"]},"id":1}'
    ]
    (state,) = venue.subscribe_messages(plans[1].topics)
    assert state == '{"method":"state.subscribe","params":{"market_list":[]},"id":2}'  # every market
    assert venue.ping_message() == '{"method":"server.ping","params":{},"id":3}'


@pytest.mark.parametrize(
    "frame",
    [
        '{"method":"bbo.update","data":{"market":"BTCUSDT","best_bid_price":"1","best_bid_size":"1"}}',
        '{"method":"bbo.update","data":{"market":"BTCUSDT","updated_at":"soon","best_bid_price":"1",'
        '"best_bid_size":"1"}}',
        '{"method":"state.update","data":{"state_list":[{"market":"BTCUSDT"}]}}',
        '{"method":"state.update","data":{"state_list":[1]}}',
        '{"method":"state.update","data":[]}',
        '{"id":1,"message":"OK"}',
        "[1,2]",
        "nope",
        b"\x1f\x8b not really gzip",
        gzip.compress(b'{"truncated": '),
    ],
)
def test_malformed_frames_raise_frame_error(venue: Coinex, frame: str | bytes) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


def _subscribed(sim: CoinexSim, venue: Coinex, kind: str) -> SimSession:
    session = SimSession("coinex", "/v2/futures", {})
    plan = next(p for p in venue.connections("ws://sim/coinex") if p.label.startswith(f"coinex-{kind}"))
    for request in venue.subscribe_messages(plan.topics):
        (reply,) = sim.on_message(session, request)
        assert isinstance(reply, bytes) and venue.parse(reply, RECEIPT).subscribed
    return session


def test_simulator_heartbeat_and_errors(venue: Coinex) -> None:
    sim = CoinexSim(load_venue_instruments("coinex"))
    session = SimSession("coinex", "/v2/futures", {})
    ping = venue.ping_message()
    assert ping is not None
    (pong,) = sim.on_message(session, ping)
    assert isinstance(pong, bytes)
    assert orjson.loads(gzip.decompress(pong)) == {"id": 1, "code": 0, "data": {"result": "pong"}, "message": "OK"}
    assert venue.parse(pong, RECEIPT) == venue.parse(PONG, RECEIPT)
    (error,) = sim.on_message(session, '{"method":"nope.subscribe","params":{},"id":8}')
    assert venue.parse(error, RECEIPT).error == "code 30002: unknown method"
    sim.on_message(session, '{"method":"state.subscribe","params":{"market_list":[]},"id":9}')
    assert {n for k, n in session.subscriptions if k == FUNDING} == set(sim.by_native)  # empty list = all


def test_simulator_empty_books_mode_is_unhealthy(venue: Coinex) -> None:
    instruments = load_venue_instruments("coinex")
    sim = CoinexSim(instruments)
    btc = next(i for i in instruments if i.native_symbol == "BTCUSDT")
    book, state = _subscribed(sim, venue, "bbo"), _subscribed(sim, venue, "state")
    assert (BOOK, "BTCUSDT") in book.subscriptions and (FUNDING, "BTCUSDT") in state.subscriptions
    book.state["empty_books"] = state.state["empty_books"] = True
    quote = SimQuote(Decimal("86400.5"), Decimal("86401"), Decimal("2.5"), Decimal("40"), 1_790_516_465_000)
    funding = SimFunding(Decimal("0.000125"), Decimal("86400"), Decimal("86399"), 1_790_524_800_000, 1_790_516_466_000)
    errors = []
    for _ in range(3):
        for frame in sim.book_frames(book, btc, quote) + sim.funding_frames(state, btc, funding):
            parsed = venue.parse(frame, RECEIPT)
            assert parsed.events == []
            errors += [parsed.error] if parsed.error else []
    assert errors == [
        "empty book for BTCUSDT (venue acknowledged but sends no prices)",
        "frozen funding state for BTCUSDT (settlement at 1790064000000 ms is long past)",
    ]


async def test_runner_reports_empty_books_then_goes_stale() -> None:
    """The shared runner against the simulator in empty-books mode: ERROR naming why, then STALE."""
    instruments = load_venue_instruments("coinex")
    simulator = Simulator(instruments, ["coinex"], tick_ms=50, auto_dislocations=False)
    simulator.sims["coinex"].empty_books = True  # type: ignore[attr-defined]
    port = free_port()
    app_runner = web.AppRunner(simulator.app())
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", port).start()
    health: list[Health] = []
    try:
        async with aiohttp.ClientSession() as http:
            (book_plan, _state_plan) = Coinex(instruments).connections(f"ws://127.0.0.1:{port}/coinex")
            config = RunnerConfig(f"ws://127.0.0.1:{port}/coinex", f"http://127.0.0.1:{port}/coinex", stale_after_s=1)

            async def no_events(events: list[Quote | Funding]) -> None:
                raise AssertionError(f"a dead venue produced {events}")

            async def record(event: Health) -> None:
                health.append(event)

            runner = ConnectionRunner(Coinex, instruments, book_plan, config, no_events, record, http)
            task = asyncio.create_task(runner.run_forever())
            async with asyncio.timeout(15):
                while not any(h.state is HealthState.STALE for h in health):
                    await asyncio.sleep(0.05)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await app_runner.cleanup()
    states = [h.state for h in health]
    assert HealthState.SUBSCRIBED in states and HealthState.STREAMING not in states
    reasons = {h.reason for h in health if h.state is HealthState.ERROR}
    assert "empty book for BTCUSDT (venue acknowledged but sends no prices)" in reasons


# -- whole-market listings -----------------------------------------------------


def test_generated_listing_round_trips_every_group_with_intervals_and_volumes() -> None:
    specs = generated_specs()
    instruments = round_trip(CoinexSim, Coinex, specs)
    assert len(instruments) == sum(1 for s in specs if s.multiplier == 1) > 400
    assert {i.quote_group for i in instruments} == {"USDT", "USDC", "USD-inverse"}
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}  # per market, from /v2/futures/funding-rate
    by_native = {i.native_symbol: i for i in instruments}
    btc_usd, eth_usdc = by_native["BTCUSD"], by_native["ETHUSDC"]
    assert (btc_usd.kind, btc_usd.settle, btc_usd.contract_size) == (ContractKind.INVERSE, "BTC", Decimal(1))
    assert (eth_usdc.quote, eth_usdc.settle, eth_usdc.tick_size) == ("USDC", "USDC", Decimal("0.01"))
    assert btc_usd.volume_24h_quote is None  # the inverse turnover's unit is undocumented: not read
    wanted = {(s.base, s.group): s.volume_24h_quote for s in specs}
    linear = [i for i in instruments if i.kind is ContractKind.LINEAR]
    assert all(i.volume_24h_quote == wanted[(i.base, i.quote)] for i in linear)
    assert btc_usd.open_interest_quote is None  # nor the inverse open interest's
    assert all((i.open_interest_quote is None) == (i.volume_24h_quote is None) for i in linear)


def test_open_interest_from_the_ticker_linear_only() -> None:
    listing = load_json((BUNDLED_DIR / "coinex.json").read_bytes())
    # /v2/futures/ticker rows as documented: strings, open_interest_volume in base units (inverse: not read).
    rows = [
        {"market": "BTCUSDT", "value": "4120331004.12", "mark_price": "86408.8", "open_interest_volume": "1820.709"},
        {"market": "BTCUSD", "value": "1201.3", "mark_price": "86401.6", "open_interest_volume": "2566879"},
        {"market": "ETHUSDT", "value": "1", "open_interest_volume": "20714.38"},  # no mark: not guessed
    ]
    parsed = Coinex.parse_instruments(listing | {TICKER_PATH: {"code": 0, "data": rows, "message": "OK"}})
    by_market = {i.native_symbol: i.open_interest_quote for i in parsed}
    assert by_market["BTCUSDT"] == Decimal("157325279.8392")  # 1820.709 BTC x 86408.8 USDT
    assert (by_market["BTCUSD"], by_market["ETHUSDT"], by_market["SOLUSDT"]) == (None, None, None)


def test_prefixed_contracts_are_not_offered() -> None:
    spec = ListingSpec("PEPE", "USDT", 1, 4, Decimal("0.0000112"))
    inst = CoinexSim.list_instrument(spec)
    assert inst is not None and (inst.native_symbol, inst.funding_interval_h) == ("PEPEUSDT", 4)
    assert CoinexSim.list_instrument(replace(spec, multiplier=1000)) is None


def test_listing_files_without_funding_or_tickers_give_8_hours_and_no_volume() -> None:
    instruments = listed(CoinexSim, generated_specs(tail=30))
    listing = CoinexSim(instruments).listing(instruments)
    del listing["/v2/futures/funding-rate"], listing["/v2/futures/ticker"]
    parsed = Coinex.parse_instruments(listing)
    unknown = {"volume_24h_quote": None, "open_interest_quote": None}
    assert parsed == [msgspec.structs.replace(i, funding_interval_h=8, **unknown) for i in instruments]


def test_whole_market_plan_books_by_200_state_once_for_every_market() -> None:
    names = [f"C{chr(65 + n // 26 % 26)}{chr(65 + n % 26)}X" for n in range(450)]
    instruments = listed(CoinexSim, [ListingSpec(name, "USDT", 1, 8, Decimal(1)) for name in names])
    venue = Coinex(instruments)
    plans = venue.connections("wss://socket.coinex.com")
    assert [(p.label, len(p.topics)) for p in plans] == [
        ("coinex-bbo-0", 200), ("coinex-bbo-1", 200), ("coinex-bbo-2", 50), ("coinex-state-0", 1),
    ]  # fmt: skip
    assert [len(orjson.loads(f)["params"]["market_list"]) for f in venue.subscribe_messages(plans[1].topics)] == [200]
    session = SimSession("coinex", "/v2/futures", {})
    CoinexSim(instruments).on_message(session, venue.subscribe_messages(plans[3].topics)[0])
    assert len(session.subscriptions) == 450


async def _fetch_from(routes: dict[str, dict[str, object]]) -> bytes:
    """Coinex.fetch_listing against a server answering only ``routes`` (other paths: 404)."""

    def answer(body: dict[str, object]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(_request: web.Request) -> web.Response:
            return web.Response(body=_encode(body), content_type="application/json")

        return serve

    app = web.Application()
    for path, body in routes.items():
        app.router.add_get(path, answer(body))
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        return await Coinex.fetch_listing(http, str(server.make_url("")).rstrip("/"))


async def test_fetch_goes_on_without_tickers_but_not_without_funding_intervals() -> None:
    instruments = listed(CoinexSim, generated_specs(tail=20))
    listing = CoinexSim(instruments).listing(instruments)
    raw = await _fetch_from({p: listing[p] for p in ("/v2/futures/market", "/v2/futures/funding-rate")})
    parsed = Coinex.parse_instruments(load_json(raw))
    assert parsed == [msgspec.structs.replace(i, volume_24h_quote=None, open_interest_quote=None) for i in instruments]
    assert {i.funding_interval_h for i in parsed} == {1, 4, 8}
    # A wrong interval is a wrong APR: without the funding rates the fetch fails (the cache serves).
    with pytest.raises(RetryableError, match="funding-rate: HTTP 404"):
        await _fetch_from({p: listing[p] for p in ("/v2/futures/market", "/v2/futures/ticker")})


async def test_simulator_rest_route_serves_the_generated_listing() -> None:
    instruments = listed(CoinexSim, generated_specs(tail=60))
    simulator = Simulator(instruments, ["coinex"], auto_dislocations=False, listings_from_instruments=True)
    async with TestServer(simulator.app()) as server, aiohttp.ClientSession() as http:
        raw = await Coinex.fetch_listing(http, str(server.make_url("/coinex")))
    listing = load_json(raw)
    assert list(listing) == ["/v2/futures/market", "/v2/futures/funding-rate", "/v2/futures/ticker"]
    assert Coinex.parse_instruments(listing) == instruments


def test_sticky_plans_keep_the_state_socket_apart_from_the_books() -> None:
    names = [f"C{chr(65 + n // 26 % 26)}{chr(65 + n % 26)}X" for n in range(260)]
    instruments = listed(CoinexSim, [ListingSpec(name, "USDT", 1, 8, Decimal(1)) for name in names])
    url = "wss://socket.coinex.com"

    def shape(plan: list[Connection]) -> list[tuple[str, int]]:
        return [(c.label, len(c.topics)) for c in plan]

    start = sticky_plan([], Coinex(instruments[:250]).connections(url), 200)
    assert shape(start) == [("coinex-bbo-0", 200), ("coinex-bbo-1", 50), ("coinex-state-0", 1)]
    # Ten new markets on refresh join a book socket, never the state one (same URL).
    dirty = {"coinex-bbo-1", "coinex-state-0"}
    refreshed = sticky_plan(start, Coinex(instruments).connections(url), 200, dirty=dirty)
    assert shape(refreshed) == [("coinex-bbo-0", 200), ("coinex-bbo-1", 60), ("coinex-state-0", 1)]
