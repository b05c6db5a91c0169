"""CoinDCX futures (Socket.IO): documented frames in, exact values out."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ingest.instruments import listing_path, load_venue_instruments
from ingest.listings import FetchPolicy, venue_policy
from ingest.simulator.base import BOOK, FUNDING, ListingSpec, SimSession
from ingest.simulator.market import SimFunding, SimQuote
from ingest.simulator.server import Simulator
from ingest.simulator.venues.coindcx import CoindcxSim
from ingest.venues import coindcx
from ingest.venues.base import FrameError, load_json
from ingest.venues.coindcx import ACTIVE_PATH, DETAIL_PATH, Coindcx
from schemas.market import ContractKind, Funding, Instrument, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.listing_specs import generated_specs, listed, over_the_wire, round_trip

RECEIPT = 1_790_516_465_130_000_000
_encode = msgspec.json.Encoder(decimal_format="number").encode


@pytest.fixture
def venue() -> Coindcx:
    return Coindcx(load_venue_instruments("coindcx"))


@pytest.fixture
def frames() -> list[str]:
    return fixture_frames("coindcx")


def _listing() -> dict[str, Any]:
    listing: dict[str, Any] = load_json(listing_path("coindcx", None).read_bytes())
    return listing


def test_instruments_from_active_list_and_details() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("coindcx")}
    assert set(instruments) == {"B-BTC_USDT", "B-ETH_USDT", "B-SOL_USDT", "B-1000PEPE_USDT"}  # inactive OMG dropped
    btc, pepe = instruments["B-BTC_USDT"], instruments["B-1000PEPE_USDT"]
    assert (btc.instrument_id, btc.quote, btc.settle, btc.kind) == (
        "BTC-USDT-PERP@coindcx", "USDT", "USDT", ContractKind.LINEAR,
    )  # fmt: skip
    assert (btc.contract_size, btc.tick_size, btc.funding_interval_h) == (Decimal(1), Decimal("0.1"), 8)
    assert (pepe.instrument_id, pepe.base, pepe.price_multiplier, pepe.contract_size) == (
        "PEPE-USDT-PERP@coindcx", "PEPE", Decimal(1000), Decimal(1000),
    )  # fmt: skip
    assert (pepe.tick_size, pepe.funding_interval_h) == (Decimal("0.0000001"), 4)


def test_details_of_another_pair_or_a_pair_not_in_the_active_list_are_skipped() -> None:
    listing = _listing()
    eth = DETAIL_PATH.format(pair="B-ETH_USDT")
    # An unknown pair is answered with some other pair's details and HTTP 200.
    listing[DETAIL_PATH.format(pair="B-BTC_USDT")] = copy.deepcopy(listing[eth])
    listing[ACTIVE_PATH] = [p for p in listing[ACTIVE_PATH] if p != "B-SOL_USDT"]
    natives = [i.native_symbol for i in Coindcx.parse_instruments(listing)]
    assert natives == ["B-ETH_USDT", "B-1000PEPE_USDT"]


def test_snapshot_applies_levels_by_price_not_position(venue: Coindcx, frames: list[str]) -> None:
    # The first keys on the wire are "86413" (asks) and "86412" (bids): not the top.
    (quote,) = venue.parse(frames[3], RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USDT-PERP@coindcx", venue="coindcx", native_symbol="B-BTC_USDT", base="BTC",
        quote="USDT", kind=ContractKind.LINEAR,
        bid=Decimal("86412.3"), bid_size=Decimal("0.871"), ask=Decimal("86412.4"), ask_size=Decimal("1.203"),
        exchange_ts_ns=1790516465500_000_000, receipt_ts_ns=RECEIPT, sequence=310447120,
    )  # fmt: skip


def test_update_merges_into_the_book(venue: Coindcx, frames: list[str]) -> None:
    venue.parse(frames[3], RECEIPT)
    (quote,) = venue.parse(frames[4], RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USDT-PERP@coindcx", venue="coindcx", native_symbol="B-BTC_USDT", base="BTC",
        quote="USDT", kind=ContractKind.LINEAR,
        bid=Decimal("86412.4"), bid_size=Decimal("0.35"), ask=Decimal("86412.5"), ask_size=Decimal("0.44"),
        exchange_ts_ns=1790516466003_000_000, receipt_ts_ns=RECEIPT, sequence=310447121,
    )  # fmt: skip


def test_skipped_version_withholds_that_book_until_its_next_snapshot(venue: Coindcx, frames: list[str]) -> None:
    venue.parse(frames[3], RECEIPT)
    venue.parse(frames[4], RECEIPT)
    skipped = venue.parse(frames[5], RECEIPT)
    # Only this pair resyncs: no gap, so the socket and its other books stay up.
    assert (skipped.resyncs, skipped.gap, skipped.events) == (["B-BTC_USDT"], None, [])
    assert skipped.replies == [  # that one channel re-joined: a join starts with a snapshot
        '["leave",{"channelName":"B-BTC_USDT@orderbook@20-futures"}]',
        '["join",{"channelName":"B-BTC_USDT@orderbook@20-futures"}]',
    ]
    assert venue.parse(frames[5], RECEIPT).events == []  # no book until the next snapshot
    assert venue.parse(frames[9], RECEIPT).events  # 1000PEPE's book is unaffected
    (quote,) = venue.parse(frames[3], RECEIPT).events
    assert isinstance(quote, Quote) and quote.sequence == 310447120


def test_update_before_first_snapshot_is_held(venue: Coindcx, frames: list[str]) -> None:
    parsed = venue.parse(frames[10], RECEIPT)
    assert (parsed.events, parsed.gap, parsed.error) == ([], None, None)


def test_multiplied_symbol_sizes_in_base_units(venue: Coindcx, frames: list[str]) -> None:
    (quote,) = venue.parse(frames[9], RECEIPT).events
    assert quote == Quote(
        instrument_id="PEPE-USDT-PERP@coindcx", venue="coindcx", native_symbol="B-1000PEPE_USDT", base="PEPE",
        quote="USDT", kind=ContractKind.LINEAR,
        bid=Decimal("0.0112031"), bid_size=Decimal("125000000"), ask=Decimal("0.0112032"), ask_size=Decimal("98000000"),
        price_multiplier=Decimal(1000), exchange_ts_ns=1790516465600_000_000, receipt_ts_ns=RECEIPT, sequence=106543300,
    )  # fmt: skip


def test_current_prices_snapshot_gives_mark_and_funding(venue: Coindcx, frames: list[str]) -> None:
    btc, pepe = venue.parse(frames[6], RECEIPT).events  # B-NATGAS_USDT is not tracked
    assert btc == Funding(
        instrument_id="BTC-USDT-PERP@coindcx", venue="coindcx", native_symbol="B-BTC_USDT", base="BTC",
        quote="USDT", kind=ContractKind.LINEAR,
        rate=Decimal("0.00008125"), interval_h=8, next_funding_ts_ns=None, mark=Decimal("86408.81234567"),
        exchange_ts_ns=1790516466754_000_000, receipt_ts_ns=RECEIPT,
    )  # fmt: skip
    assert pepe == Funding(
        instrument_id="PEPE-USDT-PERP@coindcx", venue="coindcx", native_symbol="B-1000PEPE_USDT", base="PEPE",
        quote="USDT", kind=ContractKind.LINEAR,
        rate=Decimal("-0.0000419"), interval_h=4, mark=Decimal("0.01120412"), price_multiplier=Decimal(1000),
        exchange_ts_ns=1790516466754_000_000, receipt_ts_ns=RECEIPT,
    )  # fmt: skip


def test_current_prices_update_keeps_unchanged_fields(venue: Coindcx, frames: list[str]) -> None:
    venue.parse(frames[6], RECEIPT)
    (funding,) = venue.parse(frames[7], RECEIPT).events
    assert funding == Funding(
        instrument_id="BTC-USDT-PERP@coindcx", venue="coindcx", native_symbol="B-BTC_USDT", base="BTC",
        quote="USDT", kind=ContractKind.LINEAR,
        rate=Decimal("0.00008125"), interval_h=8, mark=Decimal("86410.2"),
        exchange_ts_ns=1790516467251_000_000, receipt_ts_ns=RECEIPT,
    )  # fmt: skip
    assert venue.parse(frames[8], RECEIPT).events == []  # only last price and 24 h figures moved


def test_update_without_snapshot_has_no_rate_yet(venue: Coindcx, frames: list[str]) -> None:
    (funding,) = venue.parse(frames[7], RECEIPT).events
    assert isinstance(funding, Funding)
    assert (funding.rate, funding.mark) == (None, Decimal("86410.2"))


@pytest.mark.parametrize("index", [1, 2, 11])
def test_other_channels_and_spot_books_produce_nothing(venue: Coindcx, frames: list[str], index: int) -> None:
    parsed = venue.parse(frames[index], RECEIPT)
    assert (parsed.events, parsed.error, parsed.gap, parsed.subscribed) == ([], None, None, False)


def test_connect_error_is_reported(venue: Coindcx, frames: list[str]) -> None:
    parsed = venue.parse(frames[0], RECEIPT)
    assert parsed.error == "connect_error: Connection rejected by server" and not parsed.events


def test_joins_one_channel_per_emit_and_prices_once(venue: Coindcx) -> None:
    assert (venue.transport, venue.ping_message(), venue.ping_interval_s) == ("socketio", None, None)
    (plan,) = venue.connections("wss://stream.coindcx.com")
    assert plan.url == "wss://stream.coindcx.com"
    assert plan.topics == (
        "currentPrices@futures@rt",
        "B-BTC_USDT@orderbook@20-futures",
        "B-ETH_USDT@orderbook@20-futures",
        "B-SOL_USDT@orderbook@20-futures",
        "B-1000PEPE_USDT@orderbook@20-futures",
    )
    assert venue.subscribe_messages(plan.topics[:2]) == [
        '["join",{"channelName":"currentPrices@futures@rt"}]',
        '["join",{"channelName":"B-BTC_USDT@orderbook@20-futures"}]',
    ]


def test_simulator_never_acks_and_ignores_unknown_channels() -> None:
    sim = CoindcxSim(load_venue_instruments("coindcx"))
    session = SimSession("coindcx", "/socket.io", {})
    for channel in (
        "B-BTC_USDT@orderbook@30-futures",
        "BTCUSDT@orderbook@20-futures",
        "B-NOPE_USDT@orderbook@20-futures",
    ):
        assert sim.on_message(session, orjson.dumps(["join", {"channelName": channel}])) == []
    assert session.subscriptions == set()
    sim.on_message(session, '["join",{"channelName":"B-BTC_USDT@orderbook@10-futures"}]')
    sim.on_message(session, '["join",{"channelName":"currentPrices@futures@rt"}]')
    assert (BOOK, "B-BTC_USDT") in session.subscriptions and (FUNDING, "B-ETH_USDT") in session.subscriptions


def test_simulated_stream_round_trips_through_updates_and_gaps(venue: Coindcx) -> None:
    sim = CoindcxSim(list(venue.by_native.values()))
    session = SimSession("coindcx", "/socket.io", {})
    sim.on_message(session, '["join",{"channelName":"B-BTC_USDT@orderbook@20-futures"}]')
    inst = venue.by_native["B-BTC_USDT"]
    for step in range(12):  # snapshot, updates with moving prices, then a fresh snapshot
        bid = Decimal("86400.5") + step * (-1) ** step * 100
        quote = SimQuote(bid, bid + 1, Decimal("2.5") + step, Decimal("0.4"), 1_790_516_465_000 + step)
        (frame,) = sim.book_frames(session, inst, quote)
        assert orjson.loads(frame)[0] == ("depth-snapshot" if step % 8 == 0 else "depth-update")
        (got,) = venue.parse(frame, RECEIPT).events
        assert isinstance(got, Quote)
        assert (got.bid, got.bid_size, got.ask, got.ask_size) == (bid, Decimal("2.5") + step, bid + 1, Decimal("0.4"))
    session.skip_sequence = True
    quote = SimQuote(Decimal("86400.5"), Decimal("86401.5"), Decimal(1), Decimal(1), 1_790_516_466_000)
    (frame,) = sim.book_frames(session, inst, quote)
    skipped = venue.parse(frame, RECEIPT)
    assert skipped.resyncs == ["B-BTC_USDT"] and not skipped.events
    for reply in skipped.replies:  # leave + join on the same socket
        assert sim.on_message(session, reply) == []
    (frame,) = sim.book_frames(session, inst, quote)
    assert orjson.loads(frame)[0] == "depth-snapshot"  # the re-join's snapshot, not the stream's 8th frame
    (got,) = venue.parse(frame, RECEIPT).events
    assert isinstance(got, Quote) and (got.bid, got.ask) == (Decimal("86400.5"), Decimal("86401.5"))


def test_simulated_prices_send_only_what_changed(venue: Coindcx) -> None:
    sim = CoindcxSim(list(venue.by_native.values()))
    session = SimSession("coindcx", "/socket.io", {})
    inst = venue.by_native["B-ETH_USDT"]
    first = SimFunding(Decimal("0.0001"), Decimal("3200.5"), Decimal("3200"), 1_790_524_800_000, 1_790_516_466_000)
    second = SimFunding(Decimal("0.0001"), Decimal("3201.25"), Decimal("3200"), 1_790_524_800_000, 1_790_516_467_000)
    venue.parse(sim.funding_frames(session, inst, first)[0], RECEIPT)
    (frame,) = sim.funding_frames(session, inst, second)
    inner = orjson.loads(orjson.loads(frame)[1]["data"])
    assert set(inner["prices"]["B-ETH_USDT"]) == {"mp", "bmST", "cmRT"}
    (funding,) = venue.parse(frame, RECEIPT).events
    assert isinstance(funding, Funding) and (funding.rate, funding.mark) == (Decimal("0.0001"), Decimal("3201.25"))


@pytest.mark.parametrize(
    "frame",
    [
        "nope",
        '{"event":"depth-snapshot"}',
        "[]",
        '["depth-snapshot",{"event":"depth-snapshot","data":"{\\"ts\\":1790516465500,\\"vs\\":"}]',
        '["depth-snapshot",{"event":"depth-snapshot","data":"[1,2]"}]',
        '["depth-snapshot",{"event":"depth-snapshot","data":"{\\"s\\":\\"BTCUSDT\\",\\"vs\\":1,\\"ts\\":1}"}]',
        '["depth-snapshot",{"event":"depth-snapshot","data":"{\\"s\\":\\"BTCUSDT\\",\\"vs\\":1,\\"ts\\":1,'
        '\\"bids\\":[[\\"1\\",\\"2\\"]],\\"asks\\":{}}"}]',
        '["depth-snapshot",{"event":"depth-snapshot","data":"{\\"s\\":\\"BTCUSDT\\",\\"vs\\":\\"x\\",\\"ts\\":1,'
        '\\"bids\\":{},\\"asks\\":{}}"}]',
        '["currentPrices@futures#update",{"data":"{\\"ts\\":1,\\"prices\\":{\\"B-BTC_USDT\\":5}}"}]',
        '["currentPrices@futures#update",{"data":"{\\"ts\\":1,\\"prices\\":[]}"}]',
    ],
)
def test_malformed_frames_raise_frame_error(venue: Coindcx, frame: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


# -- generated listings and the REST listing path ---------------------------------


def test_generated_listing_round_trips_usdt_pairs_only() -> None:
    specs = generated_specs()
    instruments = round_trip(CoindcxSim, Coindcx, specs)
    assert len(instruments) == sum(1 for s in specs if s.group == "USDT") > 350
    by_native = {i.native_symbol: i for i in instruments}
    pepe, mog = by_native["B-1000PEPE_USDT"], by_native["B-1000000MOG_USDT"]
    assert (pepe.base, pepe.price_multiplier, pepe.contract_size) == ("PEPE", Decimal(1000), Decimal(1000))
    assert (mog.base, mog.price_multiplier, mog.tick_size) == ("MOG", Decimal(1_000_000), Decimal("0.00001"))
    assert by_native["B-BTC_USDT"].tick_size == Decimal("0.1")
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}
    assert {i.quote_group for i in instruments} == {"USDT"}
    assert all(i.volume_24h_quote is None for i in instruments)  # the listing carries none
    listing = CoindcxSim(instruments).listing(instruments)
    assert len(listing) == 1 + len(instruments)  # the active list and one details response per pair


def test_no_usdc_inverse_or_odd_multiplier_contracts() -> None:
    spec = ListingSpec("BTC", "USDT", 1, 8, Decimal("86400.5"))
    assert CoindcxSim.list_instrument(spec) is not None
    for other in (replace(spec, group="USDC"), replace(spec, group="USD-inverse"), replace(spec, multiplier=7)):
        assert CoindcxSim.list_instrument(other) is None


async def _serve(routes: dict[str, Any]) -> AsyncIterator[str]:
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def listing_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, list[Instrument], list[float]]]:
    """A REST server answering like CoinDCX: the active list, and details per pair (pair 3 fails)."""
    monkeypatch.setattr(coindcx, "DETAIL_REQUESTS_PER_S", 200.0)
    monkeypatch.setattr(coindcx, "DETAIL_RETRY_PAUSE_S", 0.01)
    instruments = listed(CoindcxSim, generated_specs(tail=40))
    served = over_the_wire(CoindcxSim(instruments).listing(instruments))
    broken = instruments[3].native_symbol
    started: list[float] = []

    async def active(_request: web.Request) -> web.Response:
        return web.json_response(served[ACTIVE_PATH])

    async def detail(request: web.Request) -> web.Response:
        started.append(time.monotonic())
        pair = request.query["pair"]
        if pair == broken:
            return web.Response(status=502)
        body = served.get(DETAIL_PATH.format(pair=pair), served[DETAIL_PATH.format(pair="B-BTC_USDT")])
        return web.Response(body=_encode(body), content_type="application/json")

    routes = {ACTIVE_PATH.partition("?")[0]: active, DETAIL_PATH.partition("?")[0]: detail}
    async for base in _serve(routes):
        yield base, instruments, started


async def test_fetch_lists_every_active_pair_and_leaves_out_failed_details(
    listing_server: tuple[str, list[Instrument], list[float]],
) -> None:
    base, instruments, started = listing_server
    async with aiohttp.ClientSession() as http:
        raw = await Coindcx.fetch_listing(http, base)
    parsed = Coindcx.parse_instruments(load_json(raw))
    broken = instruments[3]
    assert parsed == [i for i in instruments if i is not broken]
    assert len(started) == len(instruments) + 1  # one GET per pair, one retry of the broken one
    # Paced: N requests at 200/s span at least (N - 1) / 200 s (less the first one's latency).
    first_attempts = sorted(started)[: len(instruments)]
    assert first_attempts[-1] - first_attempts[0] >= (len(instruments) - 1) / 200.0 - 0.02


def test_a_stream_that_never_snapshots_again_ends_the_socket(venue: Coindcx, frames: list[str]) -> None:
    venue.parse(frames[3], RECEIPT)
    venue.parse(frames[4], RECEIPT)
    assert venue.parse(frames[5], RECEIPT).resyncs == ["B-BTC_USDT"]
    waited = [venue.parse(frames[5], RECEIPT) for _ in range(coindcx.SNAPSHOT_WAIT_FRAMES)]
    assert all(p.gap is None and not p.events for p in waited)
    assert venue.parse(frames[5], RECEIPT).gap == "B-BTC_USDT: no depth-snapshot in 240 updates"


async def test_simulator_rest_route_serves_the_generated_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coindcx, "DETAIL_REQUESTS_PER_S", 500.0)
    instruments = listed(CoindcxSim, generated_specs(tail=60))
    simulator = Simulator(instruments, ["coindcx"], auto_dislocations=False, listings_from_instruments=True)
    async with TestServer(simulator.app()) as server, aiohttp.ClientSession() as http:
        raw = await Coindcx.fetch_listing(http, str(server.make_url("/coindcx")))
    assert Coindcx.parse_instruments(load_json(raw)) == instruments


def test_the_listing_fetch_gets_the_time_the_paced_details_need() -> None:
    policy = FetchPolicy(timeout_s=10, attempts=3, deadline_s=30)
    stretched = venue_policy("coindcx", policy)
    assert (stretched.timeout_s, stretched.deadline_s) == (90, 90)
    assert Coindcx.listing_time_s / 2 > 450 / coindcx.DETAIL_REQUESTS_PER_S  # the whole market, with room
    assert venue_policy("binance", policy) == policy
