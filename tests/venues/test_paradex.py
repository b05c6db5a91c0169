"""Paradex: documented frames in, exact values out.

Control frames (JSON-RPC text) are in ``tests/fixtures/frames/paradex.jsonl``.
Channel data are binary SBE frames (schema 1, ``paradex_1_0.xml``), which a JSON
line cannot hold: they live in ``tests/fixtures/frames/paradex.sbe.b64``, one
base64 frame per line, each preceded by a ``#`` line saying what it encodes.
Paradex has no text heartbeat: the server's protocol pings are answered by the
WebSocket library, and its idle HeartbeatEvent is SBE frame 7 of that file.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import replace
from decimal import Decimal

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ingest.instruments import load_venue_instruments
from ingest.simulator.base import FUNDING, ListingSpec, SimSession
from ingest.simulator.market import SimFunding
from ingest.simulator.server import Simulator
from ingest.simulator.venues.paradex import ParadexSim
from ingest.venues.base import FrameError, load_json
from ingest.venues.paradex import Paradex
from schemas.market import ContractKind, Funding, Quote
from tests.venues.conftest import FRAMES_DIR, fixture_frames
from tests.venues.listing_specs import generated_specs, listed, round_trip

RECEIPT = 1_790_516_465_130_000_000


def sbe_frames() -> list[bytes]:
    lines = (FRAMES_DIR / "paradex.sbe.b64").read_text().splitlines()
    return [base64.b64decode(line) for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture
def venue() -> Paradex:
    return Paradex(load_venue_instruments("paradex"))


def test_instruments_from_markets() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("paradex")}
    assert set(instruments) == {"BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP", "kPEPE-USD-PERP"}  # option dropped
    btc = instruments["BTC-USD-PERP"]
    assert (btc.instrument_id, btc.quote, btc.settle, btc.kind, btc.contract_size, btc.tick_size) == (
        "BTC-USDC-PERP@paradex", "USDC", "USDC", ContractKind.LINEAR, Decimal(1), Decimal("0.1"),
    )  # fmt: skip
    assert btc.funding_interval_h == 8
    pepe = instruments["kPEPE-USD-PERP"]
    assert (pepe.instrument_id, pepe.base, pepe.price_multiplier, pepe.contract_size) == (
        "PEPE-USDC-PERP@paradex", "PEPE", Decimal(1000), Decimal(1000),
    )  # fmt: skip


def test_url_negotiates_sbe_and_one_channel_per_subscribe(venue: Paradex) -> None:
    (plan,) = venue.connections("wss://ws.api.prod.paradex.trade")
    assert plan.url == "wss://ws.api.prod.paradex.trade/v1?sbeSchemaId=1&sbeSchemaVersion=1"
    # Every market's summary on one subscription, then one bbo per market.
    assert plan.topics == (
        "markets_summary", "bbo.BTC-USD-PERP", "bbo.ETH-USD-PERP", "bbo.SOL-USD-PERP", "bbo.kPEPE-USD-PERP",
    )  # fmt: skip
    first, second = venue.subscribe_messages(plan.topics[:2])
    assert first == '{"jsonrpc":"2.0","method":"subscribe","params":{"channel":"markets_summary"},"id":1}'
    assert second == '{"jsonrpc":"2.0","method":"subscribe","params":{"channel":"bbo.BTC-USD-PERP"},"id":2}'
    assert venue.ping_message() is None and venue.ping_interval_s is None


def test_fixture_headers_follow_the_schema() -> None:
    """Pin the frame layout to paradex_1_0.xml: header, block lengths, template ids."""
    headers = [struct.unpack_from("<HHHH", frame) for frame in sbe_frames()]
    assert headers[0] == (48, 2, 1, 1)  # BboEvent: 6 x int64
    assert headers[4] == (240, 4, 1, 1)  # MarketSummaryEvent v1: 30 x int64
    assert headers[5] == (216, 4, 1, 0)  # MarketSummaryEvent v0: 27 x int64
    assert headers[7] == (16, 40, 1, 1)  # HeartbeatEvent


def test_bbo(venue: Paradex) -> None:
    (quote,) = venue.parse(sbe_frames()[0], RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USDC-PERP@paradex", venue="paradex", native_symbol="BTC-USD-PERP", base="BTC",
        quote="USDC", kind=ContractKind.LINEAR,
        bid=Decimal("86401.2"), bid_size=Decimal("0.412"), ask=Decimal("86402.9"), ask_size=Decimal("1.031"),
        exchange_ts_ns=1_790_516_465_220_123_000, receipt_ts_ns=RECEIPT, sequence=31190228,
    )  # fmt: skip
    assert str(quote.bid) == "86401.20000000"  # mantissa x 10^-8, exactly, never via float


def test_k_prefixed_sizes_in_base_units(venue: Paradex) -> None:
    (quote,) = venue.parse(sbe_frames()[1], RECEIPT).events
    assert quote == Quote(
        instrument_id="PEPE-USDC-PERP@paradex", venue="paradex", native_symbol="kPEPE-USD-PERP", base="PEPE",
        quote="USDC", kind=ContractKind.LINEAR,
        bid=Decimal("0.0112031"), bid_size=Decimal("125000000"), ask=Decimal("0.011204"), ask_size=Decimal("98000000"),
        price_multiplier=Decimal(1000), exchange_ts_ns=1_790_516_465_203_456_000, receipt_ts_ns=RECEIPT, sequence=5512,
    )  # fmt: skip


def test_empty_book_side_is_null(venue: Paradex) -> None:
    (quote,) = venue.parse(sbe_frames()[2], RECEIPT).events
    assert quote == Quote(
        instrument_id="ETH-USDC-PERP@paradex", venue="paradex", native_symbol="ETH-USD-PERP", base="ETH",
        quote="USDC", kind=ContractKind.LINEAR,
        bid=None, bid_size=None, ask=Decimal("3201.45"), ask_size=Decimal("12.5"),
        exchange_ts_ns=1_790_516_465_300_000_000, receipt_ts_ns=RECEIPT, sequence=771203,
    )  # fmt: skip


def test_markets_summary_prefers_the_precise_rate(venue: Paradex) -> None:
    (funding,) = venue.parse(sbe_frames()[4], RECEIPT).events
    assert funding == Funding(
        instrument_id="BTC-USDC-PERP@paradex", venue="paradex", native_symbol="BTC-USD-PERP", base="BTC",
        quote="USDC", kind=ContractKind.LINEAR,
        rate=Decimal("0.000012500013"), interval_h=8, next_funding_ts_ns=None,
        mark=Decimal("86408.81234567"), index=Decimal("86399.1"),
        exchange_ts_ns=1_790_516_466_000_000_000, receipt_ts_ns=RECEIPT,
    )  # fmt: skip


def test_markets_summary_version_0_block(venue: Paradex) -> None:
    (funding,) = venue.parse(sbe_frames()[5], RECEIPT).events
    assert funding == Funding(
        instrument_id="ETH-USDC-PERP@paradex", venue="paradex", native_symbol="ETH-USD-PERP", base="ETH",
        quote="USDC", kind=ContractKind.LINEAR,
        rate=Decimal("-0.000025"), interval_h=8, mark=Decimal("3200.5"), index=Decimal("3199.9"),
        exchange_ts_ns=1_790_516_466_100_000_000, receipt_ts_ns=RECEIPT,
    )  # fmt: skip


def test_markets_summary_null_precise_rate_falls_back(venue: Paradex) -> None:
    (funding,) = venue.parse(sbe_frames()[6], RECEIPT).events
    assert isinstance(funding, Funding)
    assert (funding.native_symbol, funding.rate, funding.mark) == (
        "SOL-USD-PERP",
        Decimal("0.00000875"),
        Decimal("181.234"),
    )


def test_longer_block_from_a_newer_version(venue: Paradex) -> None:
    (quote,) = venue.parse(sbe_frames()[9], RECEIPT).events
    assert isinstance(quote, Quote)
    assert (quote.native_symbol, quote.bid, quote.ask_size, quote.sequence) == (
        "BTC-USD-PERP", Decimal("86403"), Decimal("0.5"), 31190300,
    )  # fmt: skip


@pytest.mark.parametrize("index", [3, 7, 8])
def test_untracked_heartbeat_and_other_templates_produce_nothing(venue: Paradex, index: int) -> None:
    parsed = venue.parse(sbe_frames()[index], RECEIPT)
    assert not parsed.events and parsed.error is None and parsed.gap is None and not parsed.replies


def test_control_frames(venue: Paradex) -> None:
    frames = fixture_frames("paradex")
    for ack in frames[:2]:
        parsed = venue.parse(ack, RECEIPT)
        assert parsed.subscribed and not parsed.events and parsed.error is None
    error = venue.parse(frames[2], RECEIPT)
    assert error.error == "code -32600: invalid subscribe request (invalid channel)" and not error.events
    assert venue.parse(frames[3], RECEIPT).error == "code -32601: method does not exist"
    # JSON channel data only arrive on a connection without SBE, which we never open.
    json_data = venue.parse(frames[4], RECEIPT)
    assert not json_data.events and not json_data.subscribed and json_data.error is None


def _malformed() -> list[str | bytes]:
    bbo = sbe_frames()[0]
    return [
        bbo[:6],  # not even a header
        bbo[:40],  # root block cut short
        bbo[:-3],  # market symbol cut short
        bbo[:56],  # no symbol length at all
        bbo[:4] + b"\x02\x00" + bbo[6:],  # schema id 2
        struct.pack("<HHHH", 16, 2, 1, 1) + bytes(16) + b"\x00",  # block too short for a BboEvent
        bbo[:56] + b"\x02\xff\xfe",  # symbol not UTF-8
        "nope",
        "[1,2]",
        '{"jsonrpc":"2.0","error":"boom","id":1}',
    ]


@pytest.mark.parametrize("frame", _malformed())
def test_malformed_frames_raise_frame_error(venue: Paradex, frame: str | bytes) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


def test_simulator_version_0_session_round_trips(venue: Paradex) -> None:
    instruments = load_venue_instruments("paradex")
    sim = ParadexSim(instruments)
    session = SimSession("paradex", "/v1", {"sbeSchemaId": "1", "sbeSchemaVersion": "0"})
    inst = next(i for i in instruments if i.native_symbol == "BTC-USD-PERP")
    funding = SimFunding(Decimal("0.0000125"), Decimal("86400.5"), Decimal("86399"), 0, 1_790_516_466_000)
    (frame,) = sim.funding_frames(session, inst, funding)
    assert isinstance(frame, bytes) and struct.unpack_from("<HHHH", frame) == (216, 4, 1, 0)
    (event,) = venue.parse(frame, RECEIPT).events
    assert isinstance(event, Funding)
    assert (event.rate, event.mark, event.index) == (Decimal("0.0000125"), Decimal("86400.5"), Decimal("86399"))


def test_simulator_rejects_duplicate_and_invalid_channels(venue: Paradex) -> None:
    sim = ParadexSim(load_venue_instruments("paradex"))
    session = SimSession("paradex", "/v1", {})
    subscribe, duplicate = venue.subscribe_messages(["bbo.BTC-USD-PERP", "bbo.BTC-USD-PERP"])
    assert venue.parse(sim.on_message(session, subscribe)[0], RECEIPT).subscribed
    assert venue.parse(sim.on_message(session, duplicate)[0], RECEIPT).error is not None
    (bad,) = venue.subscribe_messages(["bbo.NOPE-USD-PERP"])
    assert venue.parse(sim.on_message(session, bad)[0], RECEIPT).error == (
        "code -32600: invalid subscribe request (invalid channel)"
    )


# -- whole-market listings -----------------------------------------------------


def test_generated_listing_round_trips_with_volumes_and_funding_periods() -> None:
    specs = generated_specs()
    instruments = round_trip(ParadexSim, Paradex, specs)
    assert len(instruments) == sum(1 for s in specs if s.group == "USDC" and s.multiplier in (1, 1000)) > 30
    by_native = {i.native_symbol: i for i in instruments}
    pepe, btc = by_native["kPEPE-USD-PERP"], by_native["BTC-USD-PERP"]
    assert (pepe.base, pepe.price_multiplier, pepe.contract_size, pepe.tick_size) == (
        "PEPE", Decimal(1000), Decimal(1000), Decimal("0.0000001"),
    )  # fmt: skip
    assert (btc.quote, btc.settle, btc.tick_size) == ("USDC", "USDC", Decimal("0.1"))
    assert btc.quote_group == "USDC"  # compares with Hyperliquid's, Bybit's and Deribit's USDC perpetuals
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}
    wanted = {s.base: s.volume_24h_quote for s in specs if s.group == "USDC"}
    assert all(i.volume_24h_quote == wanted[i.base] for i in instruments)
    assert any(i.volume_24h_quote is None for i in instruments)  # a market the summary leaves out


def test_usdc_settled_only() -> None:
    spec = ListingSpec("PEPE", "USDC", 1000, 8, Decimal("0.0000112"))
    inst = ParadexSim.list_instrument(spec)
    assert inst is not None and inst.native_symbol == "kPEPE-USD-PERP"
    for other in (replace(spec, group="USDT"), replace(spec, group="USD-inverse"), replace(spec, multiplier=1_000_000)):
        assert ParadexSim.list_instrument(other) is None


def test_open_interest_from_the_summary_in_base_units_at_the_mark() -> None:
    market = {"symbol": "BTC-USD-PERP", "base_currency": "BTC", "settlement_currency": "USDC", "asset_kind": "PERP"}
    # The documented markets_summary row (EXCHANGES.md): open_interest in BTC, prices in USD.
    summary = {"symbol": "BTC-USD-PERP", "mark_price": "86402.1", "volume_24h": "412003.5", "open_interest": "61.25"}
    listing = {"/v1/markets": {"results": [market]}, "/v1/markets/summary?market=ALL": {"results": [summary]}}
    (btc,) = Paradex.parse_instruments(listing)
    assert (btc.volume_24h_quote, btc.open_interest_quote) == (Decimal("412003.5"), Decimal("5292128.625"))
    no_mark = {**listing, "/v1/markets/summary?market=ALL": {"results": [{**summary, "mark_price": None}]}}
    assert Paradex.parse_instruments(no_mark)[0].open_interest_quote is None


def test_listing_without_the_summary_still_parses() -> None:
    instruments = listed(ParadexSim, generated_specs(tail=20))
    listing = ParadexSim(instruments).listing(instruments)
    del listing["/v1/markets/summary?market=ALL"]
    parsed = Paradex.parse_instruments(listing)
    assert parsed == [msgspec.structs.replace(i, volume_24h_quote=None, open_interest_quote=None) for i in instruments]


def test_books_split_over_sockets_and_the_summary_rides_once() -> None:
    names = [f"C{chr(65 + n // 26 % 26)}{chr(65 + n % 26)}X" for n in range(450)]
    instruments = listed(ParadexSim, [ListingSpec(name, "USDC", 1, 8, Decimal(1)) for name in names])
    plans = Paradex(instruments).connections("wss://ws.api.prod.paradex.trade")
    assert [len(p.topics) for p in plans] == [201, 200, 50]
    assert [t for p in plans for t in p.topics if not t.startswith("bbo.")] == ["markets_summary"]
    sim = ParadexSim(instruments)
    session = SimSession("paradex", "/v1", {})
    sim.on_message(session, Paradex(instruments).subscribe_messages(["markets_summary"])[0])
    assert {m for kind, m in session.subscriptions if kind == FUNDING} == set(sim.by_native)


async def test_fetch_without_the_summary_endpoint_lists_markets_without_volumes() -> None:
    instruments = listed(ParadexSim, generated_specs(tail=20))
    markets = ParadexSim(instruments).listing(instruments)["/v1/markets"]

    async def serve_markets(_request: web.Request) -> web.Response:
        return web.json_response(markets)

    app = web.Application()
    app.router.add_get("/v1/markets", serve_markets)  # the summary path answers 404
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as http:
            raw = await Paradex.fetch_listing(http, f"http://{host}:{port}")
    finally:
        await runner.cleanup()
    listing = load_json(raw)
    assert list(listing) == ["/v1/markets"]
    without_volumes = [msgspec.structs.replace(i, volume_24h_quote=None, open_interest_quote=None) for i in instruments]
    assert Paradex.parse_instruments(listing) == without_volumes


async def test_simulator_rest_route_serves_the_generated_listing() -> None:
    instruments = listed(ParadexSim, generated_specs(tail=60))
    simulator = Simulator(instruments, ["paradex"], auto_dislocations=False, listings_from_instruments=True)
    async with TestServer(simulator.app()) as server, aiohttp.ClientSession() as http:
        raw = await Paradex.fetch_listing(http, str(server.make_url("/paradex")))
    listing = load_json(raw)
    assert list(listing) == ["/v1/markets", "/v1/markets/summary?market=ALL"]
    assert Paradex.parse_instruments(listing) == instruments
