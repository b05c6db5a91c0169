"""Hyperliquid: documented frames in, exact values out; the simulator's side of the protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ingest.instruments import load_venue_instruments
from ingest.simulator.base import BOOK, FUNDING, ListingSpec, SimSession
from ingest.simulator.market import SimFunding, SimQuote
from ingest.simulator.server import Simulator
from ingest.simulator.venues.hyperliquid import HyperliquidSim
from ingest.venues.base import FrameError, load_json
from ingest.venues.hyperliquid import Hyperliquid, next_hour_ns
from schemas.market import ContractKind, Funding, Instrument, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.listing_specs import generated_specs, listed, round_trip

RECEIPT = 1_790_516_465_130_000_000
NEXT_HOUR = 1_790_517_600_000_000_000  # 2026-09-27 14:00 UTC, the top of the hour after RECEIPT
FRAMES = fixture_frames("hyperliquid")
ACK_BBO, ACK_CTX, GREETING, PONG, PARSE_ERROR, BTC_BBO, BTC_CTX = FRAMES[:7]
PEPE_BBO, ETH_ONE_SIDED, UNTRACKED_BBO, UNSUB_ACK, PEPE_CTX, ALREADY_SUBSCRIBED = FRAMES[7:13]


@pytest.fixture
def venue() -> Hyperliquid:
    return Hyperliquid(load_venue_instruments("hyperliquid"))


def _one(venue: Hyperliquid, frame: str | bytes) -> Quote | Funding:
    (event,) = venue.parse(frame, RECEIPT).events
    return event


def test_instruments_from_meta() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("hyperliquid")}
    assert set(instruments) == {"BTC", "ETH", "SOL", "kPEPE"}  # delisted MATIC dropped
    assert instruments["BTC"] == Instrument(
        instrument_id="BTC-USDC-PERP@hyperliquid", venue="hyperliquid", native_symbol="BTC", base="BTC",
        quote="USDC", settle="USDC", kind=ContractKind.LINEAR, price_multiplier=Decimal(1),
        contract_size=Decimal(1), tick_size=None, funding_interval_h=1,
    )  # fmt: skip
    assert instruments["kPEPE"] == Instrument(
        instrument_id="PEPE-USDC-PERP@hyperliquid", venue="hyperliquid", native_symbol="kPEPE", base="PEPE",
        quote="USDC", settle="USDC", kind=ContractKind.LINEAR, price_multiplier=Decimal(1000),
        contract_size=Decimal(1000), tick_size=None, funding_interval_h=1,
    )  # fmt: skip


def test_bbo(venue: Hyperliquid) -> None:
    assert _one(venue, BTC_BBO) == Quote(
        instrument_id="BTC-USDC-PERP@hyperliquid", venue="hyperliquid", native_symbol="BTC", base="BTC",
        quote="USDC", kind=ContractKind.LINEAR,
        bid=Decimal("86409.0"), bid_size=Decimal("4.21733"), ask=Decimal("86410.0"), ask_size=Decimal("0.88102"),
        exchange_ts_ns=1_790_516_465_070_000_000, receipt_ts_ns=RECEIPT, sequence=None,
    )  # fmt: skip


def test_k_prefixed_sizes_in_base_units(venue: Hyperliquid) -> None:
    assert _one(venue, PEPE_BBO) == Quote(
        instrument_id="PEPE-USDC-PERP@hyperliquid", venue="hyperliquid", native_symbol="kPEPE", base="PEPE",
        quote="USDC", kind=ContractKind.LINEAR,
        bid=Decimal("0.011203"), bid_size=Decimal("125000000"), ask=Decimal("0.011204"), ask_size=Decimal("98000000"),
        price_multiplier=Decimal(1000), exchange_ts_ns=1_790_516_465_112_000_000, receipt_ts_ns=RECEIPT,
    )  # fmt: skip


def test_one_sided_book(venue: Hyperliquid) -> None:
    assert _one(venue, ETH_ONE_SIDED) == Quote(
        instrument_id="ETH-USDC-PERP@hyperliquid", venue="hyperliquid", native_symbol="ETH", base="ETH",
        quote="USDC", kind=ContractKind.LINEAR,
        bid=Decimal("3201.4"), bid_size=Decimal("12.5031"), ask=None, ask_size=None,
        exchange_ts_ns=1_790_516_465_140_000_000, receipt_ts_ns=RECEIPT,
    )  # fmt: skip


def test_active_asset_ctx_funding(venue: Hyperliquid) -> None:
    assert _one(venue, BTC_CTX) == Funding(
        instrument_id="BTC-USDC-PERP@hyperliquid", venue="hyperliquid", native_symbol="BTC", base="BTC",
        quote="USDC", kind=ContractKind.LINEAR,
        rate=Decimal("0.0000095"), interval_h=1, next_funding_ts_ns=NEXT_HOUR, predicted_rate=None,
        mark=Decimal("86409.0"), index=Decimal("86402.0"),
        exchange_ts_ns=RECEIPT, receipt_ts_ns=RECEIPT, exchange_ts_missing=True,
    )  # fmt: skip


def test_k_prefixed_funding(venue: Hyperliquid) -> None:
    assert _one(venue, PEPE_CTX) == Funding(
        instrument_id="PEPE-USDC-PERP@hyperliquid", venue="hyperliquid", native_symbol="kPEPE", base="PEPE",
        quote="USDC", kind=ContractKind.LINEAR,
        rate=Decimal("-0.0000031"), interval_h=1, next_funding_ts_ns=NEXT_HOUR,
        mark=Decimal("0.011199"), index=Decimal("0.011202"), price_multiplier=Decimal(1000),
        exchange_ts_ns=RECEIPT, receipt_ts_ns=RECEIPT, exchange_ts_missing=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("receipt", "expected"),
    [
        (NEXT_HOUR - 1, NEXT_HOUR),
        (NEXT_HOUR, NEXT_HOUR + 3_600_000_000_000),  # at the settlement instant, the next one is an hour on
        (NEXT_HOUR - 3_600_000_000_000, NEXT_HOUR),
    ],
)
def test_next_funding_is_the_top_of_the_next_hour(receipt: int, expected: int) -> None:
    assert next_hour_ns(receipt) == expected


def test_control_frames_produce_no_events(venue: Hyperliquid) -> None:
    for ack in (ACK_BBO, ACK_CTX):
        parsed = venue.parse(ack, RECEIPT)
        assert parsed.subscribed and not parsed.events and parsed.error is None
    for quiet in (GREETING, PONG, UNSUB_ACK, UNTRACKED_BBO):
        parsed = venue.parse(quiet, RECEIPT)
        assert (parsed.events, parsed.subscribed, parsed.error, parsed.replies) == ([], False, None, [])
    assert venue.parse(PARSE_ERROR, RECEIPT).error == (
        'Error parsing JSON into valid websocket request: { "type": "allMids" }'
    )
    assert venue.parse(ALREADY_SUBSCRIBED, RECEIPT).error == 'Already subscribed: {"type":"bbo","coin":"BTC"}'
    assert venue.parse(b'{"channel":"activeSpotAssetCtx","data":{"coin":"PURR/USDC","ctx":{}}}', RECEIPT).events == []


def test_one_subscription_per_frame_and_only_listed_coins(venue: Hyperliquid) -> None:
    (plan,) = venue.connections("wss://api.hyperliquid.xyz")
    assert plan.url == "wss://api.hyperliquid.xyz/ws"
    # Every book first (quotes stream sooner), then every coin's funding context.
    assert plan.topics == (
        "bbo:BTC", "bbo:ETH", "bbo:SOL", "bbo:kPEPE",
        "activeAssetCtx:BTC", "activeAssetCtx:ETH", "activeAssetCtx:SOL", "activeAssetCtx:kPEPE",
    )  # fmt: skip
    btc = ["bbo:BTC", "activeAssetCtx:BTC"]
    frames = venue.subscribe_messages([*btc, "bbo:BTCC", "activeAssetCtx:kpepe", "l2Book:ETH"])
    # A misspelt or unlisted coin would close the socket, so it is never sent.
    assert frames == [
        '{"method":"subscribe","subscription":{"type":"bbo","coin":"BTC"}}',
        '{"method":"subscribe","subscription":{"type":"activeAssetCtx","coin":"BTC"}}',
    ]
    assert venue.ping_message() == '{"method":"ping"}'
    assert venue.ping_interval_s is not None and venue.ping_interval_s < 60


@pytest.mark.parametrize(
    "frame",
    [
        '{"truncated": ',
        "[1,2]",
        '{"data":{}}',
        '{"channel":"bbo","data":[]}',
        '{"channel":"bbo","data":{"coin":["BTC"]}}',
        '{"channel":"bbo","data":{"coin":"BTC","time":1,"bbo":{"px":"1"}}}',
        '{"channel":"bbo","data":{"coin":"BTC","time":1,"bbo":[{"px":"1","sz":"1","n":1}]}}',
        '{"channel":"bbo","data":{"coin":"BTC","bbo":[null,null]}}',
        '{"channel":"bbo","data":{"coin":"BTC","time":"soon","bbo":[null,null]}}',
        '{"channel":"bbo","data":{"coin":"BTC","time":1,"bbo":[{"sz":"1","n":1},null]}}',
        '{"channel":"bbo","data":{"coin":"BTC","time":1,"bbo":[7,null]}}',
        '{"channel":"bbo","data":{"coin":"BTC","time":1,"bbo":[{"px":"abc","sz":"1","n":1},null]}}',
        '{"channel":"activeAssetCtx","data":{"coin":"BTC"}}',
        '{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":[1]}}',
        '{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"markPx":"1","oraclePx":"1"}}}',
        '{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"funding":"NaN","markPx":"1","oraclePx":"1"}}}',
    ],
)
def test_malformed_frames_raise_frame_error(venue: Hyperliquid, frame: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


# -- the simulator's side ----------------------------------------------------


@pytest.fixture
def sim() -> HyperliquidSim:
    return HyperliquidSim(load_venue_instruments("hyperliquid"))


def test_sim_acks_pings_and_rejects(sim: HyperliquidSim, venue: Hyperliquid) -> None:
    session = SimSession("hyperliquid", "/ws", {})
    assert sim.on_open(session) == ["Websocket connection established."]
    subscribe = '{"method":"subscribe","subscription":{"type":"bbo","coin":"kPEPE"}}'
    (ack,) = sim.on_message(session, subscribe)
    assert orjson.loads(ack) == {
        "channel": "subscriptionResponse",
        "data": {"method": "subscribe", "subscription": {"type": "bbo", "coin": "kPEPE"}},
    }
    assert session.subscriptions == {(BOOK, "kPEPE")}
    (again,) = sim.on_message(session, subscribe)
    assert venue.parse(again, RECEIPT).error == 'Already subscribed: {"type":"bbo","coin":"kPEPE"}'
    assert sim.on_message(session, '{"method":"ping"}') == ['{"channel":"pong"}']
    (bad,) = sim.on_message(session, "{nope")
    assert venue.parse(bad, RECEIPT).error == "Error parsing JSON into valid websocket request: {nope"
    (unsub,) = sim.on_message(session, subscribe.replace('"subscribe"', '"unsubscribe"'))
    assert not venue.parse(unsub, RECEIPT).subscribed and session.subscriptions == set()


def test_sim_closes_the_socket_on_an_unknown_coin(sim: HyperliquidSim) -> None:
    session = SimSession("hyperliquid", "/ws", {})
    sim.on_message(session, '{"method":"subscribe","subscription":{"type":"activeAssetCtx","coin":"ETH"}}')
    assert session.subscriptions == {(FUNDING, "ETH")}
    # No error frame: the real venue drops the connection (1006) and so does this session.
    assert sim.on_message(session, '{"method":"subscribe","subscription":{"type":"bbo","coin":"ETHH"}}') == []
    assert session.state["close_code"] == 1006 and session.subscriptions == set()
    assert sim.on_message(session, '{"method":"ping"}') == []
    eth = sim.by_native["ETH"]
    quote = SimQuote(Decimal("3200.1"), Decimal("3200.2"), Decimal(1), Decimal(1), 1)
    assert sim.book_frames(session, eth, quote) == []
    assert sim.funding_frames(session, eth, SimFunding(Decimal(0), Decimal(1), Decimal(1), 2, 1)) == []


def test_sim_frames_carry_venue_units(sim: HyperliquidSim, venue: Hyperliquid) -> None:
    session = SimSession("hyperliquid", "/ws", {})
    pepe = sim.by_native["kPEPE"]
    quote = SimQuote(
        Decimal("0.011203"), Decimal("0.011204"), Decimal("125000000"), Decimal("98000"), 1_790_516_465_112
    )
    (frame,) = sim.book_frames(session, pepe, quote)
    levels = orjson.loads(frame)["data"]["bbo"]
    assert [(lv["px"], lv["sz"]) for lv in levels] == [("0.011203", "125000"), ("0.011204", "98")]
    got = _one(venue, frame)
    assert isinstance(got, Quote) and (got.bid_size, got.ask_size) == (Decimal("125000000"), Decimal("98000"))
    funding = SimFunding(Decimal("0.0000125"), Decimal("0.011199"), Decimal("0.011202"), 1, 2)
    (ctx_frame,) = sim.funding_frames(session, pepe, funding)
    data = orjson.loads(ctx_frame)["data"]
    assert data["coin"] == "kPEPE" and "time" not in data and isinstance(data["ctx"]["funding"], str)
    got_funding = _one(venue, ctx_frame)
    assert isinstance(got_funding, Funding)
    assert (got_funding.rate, got_funding.mark, got_funding.index) == (
        Decimal("0.0000125"), Decimal("0.011199"), Decimal("0.011202"),
    )  # fmt: skip


# -- over real sockets -------------------------------------------------------


@pytest.fixture
async def sim_base() -> AsyncIterator[str]:
    simulator = Simulator(load_venue_instruments("hyperliquid"), ["hyperliquid"], tick_ms=20)
    runner = web.AppRunner(simulator.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"{host}:{port}/hyperliquid"
    finally:
        await runner.cleanup()


async def test_listing_is_fetched_with_a_post(sim_base: str) -> None:
    async with aiohttp.ClientSession() as http:
        raw = await Hyperliquid.fetch_listing(http, f"http://{sim_base}")
        async with http.get(f"http://{sim_base}/info") as response:
            assert response.status == 405
        async with http.post(f"http://{sim_base}/info", json={"type": "spotMeta"}) as response:
            assert response.status == 422
    listing = load_json(raw)
    assert list(listing) == ["POST /info metaAndAssetCtxs"]
    assert Hyperliquid.parse_instruments(listing) == load_venue_instruments("hyperliquid")


async def test_simulator_socket_streams_after_subscribing(sim_base: str) -> None:
    venue = Hyperliquid(load_venue_instruments("hyperliquid"))
    (plan,) = venue.connections(f"ws://{sim_base}")
    async with aiohttp.ClientSession() as http, http.ws_connect(plan.url) as ws:
        assert await ws.receive_str(timeout=2) == "Websocket connection established."
        for frame in venue.subscribe_messages(["bbo:BTC", "activeAssetCtx:BTC"]):
            await ws.send_str(frame)
        parsed = [venue.parse(await ws.receive_str(timeout=2), RECEIPT) for _ in range(2)]
        assert all(p.subscribed for p in parsed)
        kinds: set[type] = set()
        while kinds != {Quote, Funding}:
            events = venue.parse(await asyncio.wait_for(ws.receive_str(), 3), RECEIPT).events
            kinds |= {type(e) for e in events}


# -- whole-market listings -----------------------------------------------------


def test_generated_listing_round_trips_usdc_coins_with_volumes() -> None:
    specs = generated_specs()
    instruments = round_trip(HyperliquidSim, Hyperliquid, specs)
    # USDC only, and 1,000,000x has no spelling on this venue (kPEPE is its one prefix).
    assert len(instruments) == sum(1 for s in specs if s.group == "USDC" and s.multiplier in (1, 1000)) > 30
    by_native = {i.native_symbol: i for i in instruments}
    assert "MOG" not in {i.base for i in instruments}
    assert (by_native["kPEPE"].base, by_native["kPEPE"].contract_size) == ("PEPE", Decimal(1000))
    assert {i.funding_interval_h for i in instruments} == {1}  # hourly, whatever the others do
    wanted = {s.base: s.volume_24h_quote for s in specs if s.group == "USDC"}
    assert all(i.volume_24h_quote == (wanted[i.base] or 0) for i in instruments)
    assert all(i.open_interest_quote is not None and i.open_interest_quote > 0 for i in instruments)


def test_only_usdc_and_k_prefix() -> None:
    spec = ListingSpec("PEPE", "USDC", 1000, 8, Decimal("0.0000112"), Decimal("123.5"))
    inst = HyperliquidSim.list_instrument(spec)
    assert inst is not None and (inst.native_symbol, inst.funding_interval_h) == ("kPEPE", 1)
    for other in (replace(spec, group="USDT"), replace(spec, group="USD-inverse"), replace(spec, multiplier=1_000_000)):
        assert HyperliquidSim.list_instrument(other) is None


def test_volume_from_asset_contexts_by_position_and_old_meta_files_still_parse() -> None:
    meta = {"universe": [{"name": "OLD", "isDelisted": True}, {"name": "BTC"}, {"name": "kPEPE"}]}
    contexts = [{"dayNtlVlm": "5.0"}, {"dayNtlVlm": "3120993814.20331"}, {"dayNtlVlm": "0.0"}]
    btc, pepe = Hyperliquid.parse_instruments({"POST /info metaAndAssetCtxs": [meta, contexts]})
    assert (btc.native_symbol, btc.volume_24h_quote) == ("BTC", Decimal("3120993814.20331"))
    assert (pepe.native_symbol, pepe.volume_24h_quote) == ("kPEPE", Decimal(0))
    old = Hyperliquid.parse_instruments({"POST /info meta": meta})
    assert [(i.native_symbol, i.volume_24h_quote) for i in old] == [("BTC", None), ("kPEPE", None)]


def test_open_interest_in_listed_coin_units_at_the_mark() -> None:
    meta = {"universe": [{"name": "BTC"}, {"name": "kPEPE"}, {"name": "SOL"}]}
    # The documented context (EXCHANGES.md activeAssetCtx / metaAndAssetCtxs): strings, units of the coin.
    btc = {"funding": "0.0000095", "openInterest": "30122.44012", "dayNtlVlm": "3120993814.20331", "markPx": "86409.0"}
    pepe = {"openInterest": "8123456789", "dayNtlVlm": "0.0", "markPx": "0.011234"}  # kPEPE units, kPEPE price
    sol = {"openInterest": "1000.0", "dayNtlVlm": "1.0"}  # no mark: unknown, not guessed
    listing = {"POST /info metaAndAssetCtxs": [meta, [btc, pepe, sol]]}
    by_coin = {i.native_symbol: i.open_interest_quote for i in Hyperliquid.parse_instruments(listing)}
    assert by_coin == {
        "BTC": Decimal("2602849928.32908"),  # 30122.44012 BTC x 86409
        "kPEPE": Decimal("91258913.567626"),  # 8123456789 kPEPE x 0.011234 USDC
        "SOL": None,
    }
    assert all(i.open_interest_quote is None for i in Hyperliquid.parse_instruments({"POST /info meta": meta}))


def test_more_topics_than_the_per_ip_cap_are_left_out_not_put_on_a_second_socket() -> None:
    coins = [f"C{chr(65 + n // 26)}{chr(65 + n % 26)}" for n in range(520)]
    venue = Hyperliquid(listed(HyperliquidSim, [ListingSpec(c, "USDC", 1, 1, Decimal(1)) for c in coins]))
    (plan,) = venue.connections("wss://api.hyperliquid.xyz")
    # All 520 books, then funding for the first 480 coins: 1,000 subscriptions, no second socket.
    assert len(plan.topics) == 1000 and plan.topics[519] == "bbo:CTZ" and plan.topics[-1] == "activeAssetCtx:CSL"


async def test_a_coin_delisted_since_the_listing_is_not_subscribed_and_the_others_stream(sim_base: str) -> None:
    # The venue (the simulator) lists BTC, ETH, SOL, kPEPE; our listing is older and still has GONE.
    gone = HyperliquidSim.list_instrument(ListingSpec("GONE", "USDC", 1, 1, Decimal(2)))
    assert gone is not None
    venue = Hyperliquid([*load_venue_instruments("hyperliquid"), gone])
    (plan,) = venue.connections(f"ws://{sim_base}")
    assert "bbo:GONE" in plan.topics
    async with aiohttp.ClientSession() as http:
        url = await venue.resolve_url(plan, f"http://{sim_base}", http)
        frames = venue.subscribe_messages(plan.topics)
        assert len(frames) == 8 and not any("GONE" in f for f in frames)
        async with http.ws_connect(url) as ws:
            await ws.receive_str(timeout=2)  # greeting
            for frame in frames:
                await ws.send_str(frame)
            acks = [venue.parse(await ws.receive_str(timeout=2), RECEIPT) for _ in range(8)]
            assert all(p.subscribed for p in acks)
            coins: set[str] = set()
            while coins != {"BTC", "ETH", "SOL", "kPEPE"}:
                for event in venue.parse(await asyncio.wait_for(ws.receive_str(), 3), RECEIPT).events:
                    coins.add(event.native_symbol)
            assert not ws.closed


async def test_without_the_live_meta_the_listed_coins_are_subscribed() -> None:
    venue = Hyperliquid(load_venue_instruments("hyperliquid"))
    (plan,) = venue.connections("ws://127.0.0.1:1")
    async with aiohttp.ClientSession() as http:
        assert await venue.resolve_url(plan, "http://127.0.0.1:1", http) == plan.url  # nothing listens there
    assert len(venue.subscribe_messages(plan.topics)) == 8


async def test_simulator_rest_route_serves_the_generated_listing_and_the_preflight() -> None:
    instruments = listed(HyperliquidSim, generated_specs(tail=60))
    simulator = Simulator(instruments, ["hyperliquid"], auto_dislocations=False, listings_from_instruments=True)
    venue = Hyperliquid([*instruments, *listed(HyperliquidSim, [ListingSpec("GONE", "USDC", 1, 1, Decimal(2))])])
    (plan,) = venue.connections("ws://unused")
    async with TestServer(simulator.app()) as server, aiohttp.ClientSession() as http:
        raw = await Hyperliquid.fetch_listing(http, str(server.make_url("/hyperliquid")))
        await venue.resolve_url(plan, str(server.make_url("/hyperliquid")), http)
    assert Hyperliquid.parse_instruments(load_json(raw)) == instruments
    subscribed = {orjson.loads(f)["subscription"]["coin"] for f in venue.subscribe_messages(plan.topics)}
    assert subscribed == {i.native_symbol for i in instruments}  # GONE left out
