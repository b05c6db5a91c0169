"""KuCoin Futures: documented frames in, exact values out; the bullet token flow against the simulator."""

from __future__ import annotations

import json
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ingest.instruments import load_venue_instruments
from ingest.simulator.base import ListingSpec, SimSession
from ingest.simulator.market import SimFunding
from ingest.simulator.server import Simulator
from ingest.simulator.venues.kucoin import KucoinSim
from ingest.venues.base import Connection, FrameError, make_instrument
from ingest.venues.kucoin import Kucoin
from plumbing.errors import RetryableError
from schemas.market import ContractKind, Funding, Instrument, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.generated_specs import round_trip, specs

RECEIPT = 1_790_516_465_130_000_000
FRAMES = fixture_frames("kucoin")
WELCOME, ACK, PONG, ERROR, TICKER, RATE, MARK, INVERSE, PEPE, PING_TIMEOUT, UNTRACKED, SETTLED = range(12)


@pytest.fixture
def venue() -> Kucoin:
    return Kucoin(load_venue_instruments("kucoin"))


def test_instruments_from_active_contracts() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("kucoin")}
    assert set(instruments) == {"XBTUSDTM", "ETHUSDTM", "SOLUSDTM", "PEPEUSDTM", "XBTUSDM"}  # FFICSX dropped
    assert instruments["XBTUSDTM"] == Instrument(
        instrument_id="BTC-USDT-PERP@kucoin",
        venue="kucoin",
        native_symbol="XBTUSDTM",
        base="BTC",
        quote="USDT",
        settle="USDT",
        kind=ContractKind.LINEAR,
        contract_size=Decimal("0.001"),
        tick_size=Decimal("0.1"),
        funding_interval_h=8,
        volume_24h_quote=Decimal("1130278521.5612"),  # turnoverOf24h, USDT
        open_interest_quote=Decimal("739992912.1440"),  # openInterest 8563920 lots x 0.001 BTC x markPrice 86408.2
    )
    assert instruments["XBTUSDM"] == Instrument(
        instrument_id="BTC-USD-INV-PERP@kucoin",
        venue="kucoin",
        native_symbol="XBTUSDM",
        base="BTC",
        quote="USD",
        settle="BTC",
        kind=ContractKind.INVERSE,
        contract_size=Decimal(1),
        tick_size=Decimal("0.1"),
        funding_interval_h=8,
        volume_24h_quote=Decimal(6158920),  # volumeOf24h lots of 1 USD (turnoverOf24h is BTC)
        open_interest_quote=Decimal(21905523),  # openInterest lots of 1 USD
    )
    pepe = instruments["PEPEUSDTM"]
    assert (pepe.instrument_id, pepe.price_multiplier, pepe.contract_size, pepe.tick_size) == (
        "PEPE-USDT-PERP@kucoin",
        Decimal(1),
        Decimal(1_000_000),
        Decimal("0.0000000001"),
    )
    assert pepe.funding_interval_h == 4  # fundingRateGranularity 14400000 ms
    assert instruments["SOLUSDTM"].contract_size == Decimal("0.1")


def test_prefixed_base_counts_prefixed_units() -> None:
    row = {
        "symbol": "1000BONKUSDTM",
        "type": "FFWCSX",
        "status": "Open",
        "baseCurrency": "1000BONK",
        "quoteCurrency": "USDT",
        "settleCurrency": "USDT",
        "multiplier": Decimal(1000),
        "isInverse": False,
        "tickSize": Decimal("0.000001"),
        "fundingRateGranularity": 28800000,
    }
    (bonk,) = Kucoin.parse_instruments({"/api/v1/contracts/active": {"code": "200000", "data": [row]}})
    assert (bonk.base, bonk.price_multiplier, bonk.contract_size) == ("BONK", Decimal(1000), Decimal(1_000_000))


def test_ticker_v2_lots_to_base_units(venue: Kucoin) -> None:
    (quote,) = venue.parse(FRAMES[TICKER], RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USDT-PERP@kucoin",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="kucoin",
        native_symbol="XBTUSDTM",
        base="BTC",
        bid=Decimal("86410.3"),
        bid_size=Decimal("1.342"),
        ask=Decimal("86410.4"),
        ask_size=Decimal("0.207"),
        exchange_ts_ns=1790516465033412000,
        receipt_ts_ns=RECEIPT,
        sequence=1830419922201,
    )


def test_inverse_usd_lots_to_btc(venue: Kucoin) -> None:
    (quote,) = venue.parse(FRAMES[INVERSE], RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USD-INV-PERP@kucoin",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="kucoin",
        native_symbol="XBTUSDM",
        base="BTC",
        bid=Decimal("86401.5"),
        bid_size=Decimal(25000) / Decimal("86401.5"),
        ask=Decimal("86402.0"),
        ask_size=Decimal(8120) / Decimal("86402.0"),
        exchange_ts_ns=1790516465101988000,
        receipt_ts_ns=RECEIPT,
        sequence=912044719,
    )


def test_large_multiplier_symbol(venue: Kucoin) -> None:
    (quote,) = venue.parse(FRAMES[PEPE], RECEIPT).events
    assert quote == Quote(
        instrument_id="PEPE-USDT-PERP@kucoin",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="kucoin",
        native_symbol="PEPEUSDTM",
        base="PEPE",
        bid=Decimal("0.0000112"),
        bid_size=Decimal(1_250_000_000),
        ask=Decimal("0.0000113"),
        ask_size=Decimal(980_000_000),
        exchange_ts_ns=1790516465200120000,
        receipt_ts_ns=RECEIPT,
        sequence=74218830,
    )


def test_sequence_passed_through_without_gap_checks(venue: Kucoin) -> None:
    """tickerV2 shares its sequence with level2, so jumps (and repeats) are not gaps."""
    first = venue.parse(FRAMES[TICKER], RECEIPT)
    jumped = venue.parse(FRAMES[TICKER].replace("1830419922201", "1830419922950"), RECEIPT)
    assert first.gap is None and jumped.gap is None
    assert [e.sequence for e in jumped.events if isinstance(e, Quote)] == [1830419922950]


def test_funding_rate_and_mark_frames_merge(venue: Kucoin) -> None:
    (rate_only,) = venue.parse(FRAMES[RATE], RECEIPT).events
    assert rate_only == Funding(
        instrument_id="BTC-USDT-PERP@kucoin",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="kucoin",
        native_symbol="XBTUSDTM",
        base="BTC",
        rate=Decimal("0.000081"),
        interval_h=8,
        next_funding_ts_ns=None,
        mark=None,
        index=None,
        exchange_ts_ns=1790516460000_000_000,
        receipt_ts_ns=RECEIPT,
    )
    (merged,) = venue.parse(FRAMES[MARK], RECEIPT).events
    assert merged == Funding(
        instrument_id="BTC-USDT-PERP@kucoin",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="kucoin",
        native_symbol="XBTUSDTM",
        base="BTC",
        rate=Decimal("0.000081"),
        interval_h=8,
        next_funding_ts_ns=None,
        mark=Decimal("86408.2"),
        index=Decimal("86399.1"),
        exchange_ts_ns=1790516466000_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_settled_rate_frame_is_not_the_current_rate(venue: Kucoin) -> None:
    venue.parse(FRAMES[RATE], RECEIPT)
    settled = venue.parse(FRAMES[SETTLED], RECEIPT)  # granularity 28,800,000: the period that just ended
    assert settled.events == [] and settled.error is None
    (funding,) = venue.parse(FRAMES[MARK], RECEIPT).events
    assert isinstance(funding, Funding) and funding.rate == Decimal("0.000081")  # still the 1-minute rate


def test_reset_forgets_the_last_rate(venue: Kucoin) -> None:
    venue.parse(FRAMES[RATE], RECEIPT)
    venue.reset()
    (funding,) = venue.parse(FRAMES[MARK], RECEIPT).events
    assert isinstance(funding, Funding)
    assert (funding.rate, funding.mark, funding.index) == (None, Decimal("86408.2"), Decimal("86399.1"))


def test_control_frames_produce_no_events(venue: Kucoin) -> None:
    for index in (WELCOME, PONG, UNTRACKED):
        parsed = venue.parse(FRAMES[index], RECEIPT)
        assert not parsed.events and not parsed.subscribed and parsed.error is None and not parsed.replies
    ack = venue.parse(FRAMES[ACK], RECEIPT)
    assert ack.subscribed and not ack.events
    assert venue.parse(FRAMES[ERROR], RECEIPT).error == "code 404: topic does not exist"
    assert venue.parse(FRAMES[PING_TIMEOUT], RECEIPT).error == "code 400: ping timeout"


def test_subscribe_messages_group_symbols_per_channel(venue: Kucoin) -> None:
    (plan,) = venue.connections("wss://ws-api-futures.kucoin.com")
    messages = venue.subscribe_messages(plan.topics)
    assert messages == [
        '{"id":"1","type":"subscribe","topic":"/contractMarket/tickerV2:XBTUSDTM,ETHUSDTM,SOLUSDTM,PEPEUSDTM,'
        'XBTUSDM","response":true}',
        '{"id":"2","type":"subscribe","topic":"/contract/instrument:XBTUSDTM,ETHUSDTM,SOLUSDTM,PEPEUSDTM,'
        'XBTUSDM","response":true}',
    ]


def test_subscribe_batches_at_most_100_symbols() -> None:
    many = [make_instrument("kucoin", f"C{n}USDTM", f"C{n}", "USDT", "USDT", ContractKind.LINEAR) for n in range(250)]
    venue = Kucoin(many)
    plans = venue.connections("wss://ws-api-futures.kucoin.com")
    assert [len(p.topics) for p in plans] == [400, 100]
    messages = [json.loads(m) for p in plans for m in venue.subscribe_messages(p.topics)]
    sizes = [len(m["topic"].partition(":")[2].split(",")) for m in messages]
    # Both topics of an instrument ride the same socket: 200 instruments, then 50.
    assert sizes == [100, 100, 100, 100, 50, 50]


def test_ping_message(venue: Kucoin) -> None:
    ping = venue.ping_message()
    assert ping is not None
    message = json.loads(ping)
    assert message["type"] == "ping" and message["id"].isdigit()
    assert venue.ping_interval_s == 18.0 and venue.subscribe_after_first_frame


@pytest.mark.parametrize(
    "frame",
    [
        '{"topic":"/contractMarket/tickerV2:XBTUSDTM","type":"message","data":{"symbol":"XBTUSDTM"}}',
        '{"topic":"/contractMarket/tickerV2:XBTUSDTM","type":"message","data":{"symbol":"XBTUSDTM","sequence":1,'
        '"bestBidSize":1,"bestBidPrice":"x","bestAskPrice":"1","bestAskSize":1,"ts":1}}',
        '{"topic":"/contractMarket/tickerV2:XBTUSDTM","type":"message","data":{"symbol":"XBTUSDTM","sequence":"a",'
        '"bestBidSize":1,"bestBidPrice":"1","bestAskPrice":"1","bestAskSize":1,"ts":1}}',
        '{"topic":"/contract/instrument:XBTUSDTM","type":"message","subject":"funding.rate","data":{"timestamp":1}}',
        '{"topic":"/contract/instrument:XBTUSDTM","type":"message","subject":"mark.index.price","data":[]}',
        '{"type":"message","data":{}}',
        "[1,2]",
        "nope",
    ],
)
def test_malformed_frames_raise_frame_error(venue: Kucoin, frame: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


async def test_bullet_token_welcome_subscribe_and_pong_against_simulator() -> None:
    instruments = load_venue_instruments("kucoin")
    simulator = Simulator(instruments, ["kucoin"], auto_dislocations=False)
    async with TestServer(simulator.app()) as server, aiohttp.ClientSession() as http:
        base = str(server.make_url("/kucoin"))
        venue = Kucoin(instruments)
        (plan,) = venue.connections(base.replace("http", "ws", 1))
        url = await venue.resolve_url(plan, base, http)
        assert url.startswith(f"ws://{server.host}:{server.port}/kucoin/?token=") and "&connectId=" in url
        connect_id = url.rpartition("connectId=")[2]
        async with http.ws_connect(url) as ws:
            assert json.loads(await ws.receive_str()) == {"id": connect_id, "type": "welcome"}
            for message in venue.subscribe_messages(plan.topics):
                await ws.send_str(message)
            ping = venue.ping_message()
            assert ping is not None
            await ws.send_str(ping)
            seen = {"ack": 0, "pong": 0, "events": 0}
            while seen["pong"] == 0 or seen["events"] == 0:
                frame = await ws.receive_str(timeout=5)
                kind = json.loads(frame)["type"]
                parsed = venue.parse(frame, RECEIPT)
                seen["ack"] += parsed.subscribed
                seen["pong"] += kind == "pong"
                seen["events"] += len(parsed.events)
            assert seen["ack"] == 2


async def _serve_bullet(body: bytes, status: int = 200) -> TestServer:
    async def bullet(_request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/v1/bullet-public", bullet)
    server = TestServer(app)
    await server.start_server()
    return server


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"code":"429000","msg":"Too Many Requests"}', 200, "code 429000: Too Many Requests"),
        (b'{"code":"200000","data":{"token":"t","instanceServers":[]}}', 200, "unusable"),
        (b"<html>busy</html>", 200, "unusable"),
        (b"", 503, "HTTP 503"),
    ],
)
async def test_bullet_failures_are_retryable(venue: Kucoin, body: bytes, status: int, message: str) -> None:
    server = await _serve_bullet(body, status)
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(RetryableError, match=message):
                await venue.resolve_url(Connection("kucoin-0", "", ()), str(server.make_url("")), http)
    finally:
        await server.close()


# -- whole market: limits, volumes, generated listings ---------------------------
def test_whole_market_plan_within_the_documented_limits() -> None:
    instruments = round_trip(KucoinSim, Kucoin, specs(420))
    venue = Kucoin(instruments)
    plans = venue.connections("wss://ws-api-futures.kucoin.com")
    assert all(len(p.topics) <= 400 for p in plans)
    assert sum(len(p.topics) for p in plans) == 2 * len(instruments)
    for plan in plans:
        messages = [json.loads(m) for m in venue.subscribe_messages(plan.topics)]
        assert all(len(m["topic"].partition(":")[2].split(",")) <= 100 for m in messages)
    # 100 uplink messages per 10 s, pings included: subscribes take at most half.
    assert 10 / Kucoin.subscribe_interval_s <= 50


def test_generated_listing_round_trip_covers_prefixes_groups_and_intervals() -> None:
    instruments = round_trip(KucoinSim, Kucoin, specs(420))
    assert len(instruments) > 800
    assert {i.quote_group for i in instruments} == {"USDT", "USDC", "USD-inverse"}
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}
    by_native = {i.native_symbol: i for i in instruments}
    btc = by_native["XBTUSDTM"]
    assert (btc.base, btc.contract_size, btc.tick_size, btc.volume_24h_quote) == (
        "BTC",
        Decimal("0.001"),
        Decimal("0.1"),
        Decimal(10_000),
    )
    bonk = by_native["1000BONKUSDTM"]  # a prefixed base: lots count 1000-BONK units
    assert (bonk.base, bonk.price_multiplier, bonk.contract_size) == ("BONK", Decimal(1000), Decimal(1000 * 1000))
    assert by_native["XBTUSDM"].kind is ContractKind.INVERSE
    assert all((i.open_interest_quote or 0) > 0 for i in instruments if i.volume_24h_quote is not None)
    unprefixed = KucoinSim.list_instrument(ListingSpec("PEPE", "USDT", 1, 4, Decimal("0.0000112")))
    assert unprefixed is not None and (unprefixed.native_symbol, unprefixed.contract_size) == (
        "PEPEUSDTM",
        Decimal(1_000_000),
    )
    assert KucoinSim.list_instrument(ListingSpec("PEPE", "USD-inverse", 1000, 8, Decimal("0.00001"))) is None


def test_sim_pushes_settled_rates_that_the_venue_ignores() -> None:
    instruments = round_trip(KucoinSim, Kucoin, specs(10))
    sim, venue = KucoinSim(instruments), Kucoin(instruments)
    inst = instruments[0]
    session = SimSession("kucoin", "/", {})
    rates = []
    for ts_ms, next_ms in ((1_790_524_799_000, 1_790_524_800_000), (1_790_524_801_000, 1_790_553_600_000)):
        funding = SimFunding(Decimal("0.0001"), Decimal(1), Decimal(1), next_ms, ts_ms)
        frames = sim.funding_frames(session, inst, funding)
        rates += [e.rate for f in frames for e in venue.parse(f, RECEIPT).events if isinstance(e, Funding)]
    assert any(json.loads(f)["data"]["granularity"] == 28_800_000 for f in frames)
    assert set(rates) == {Decimal("0.0001")}  # the settled 0.0002 never shows as current
