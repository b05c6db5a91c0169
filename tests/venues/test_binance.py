"""Binance USDⓈ-M: documented frames in, exact values out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ingest.instruments import BUNDLED_DIR, load_venue_instruments
from ingest.simulator.base import BOOK, FUNDING, ListingSpec, SimSession
from ingest.simulator.market import SimFunding
from ingest.simulator.venues.binance import BinanceSim
from ingest.venues.base import FrameError, load_json
from ingest.venues.binance import EXCHANGE_INFO, FUNDING_INFO, TICKER_24H, Binance
from plumbing.errors import RetryableError
from processors.funding import funding_apr
from schemas.market import ContractKind, Funding, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.generated_specs import round_trip, specs, wire

RECEIPT = 1_790_516_465_130_000_000


@pytest.fixture
def venue() -> Binance:
    return Binance(load_venue_instruments("binance"))


def test_instruments_from_exchange_info() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("binance")}
    assert set(instruments) == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "1000PEPEUSDT"}  # quarterly dropped
    pepe = instruments["1000PEPEUSDT"]
    assert (pepe.instrument_id, pepe.base, pepe.price_multiplier, pepe.contract_size) == (
        "PEPE-USDT-PERP@binance",
        "PEPE",
        Decimal(1000),
        Decimal(1000),
    )
    assert instruments["BTCUSDT"].tick_size == Decimal("0.10")
    assert {i.funding_interval_h for i in instruments.values()} == {8}  # none of them adjusted in fundingInfo
    assert instruments["BTCUSDT"].volume_24h_quote == Decimal("12190517315.42")


def test_book_ticker(venue: Binance) -> None:
    frames = fixture_frames("binance")
    (quote,) = venue.parse(frames[1], RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USDT-PERP@binance",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="binance",
        native_symbol="BTCUSDT",
        base="BTC",
        bid=Decimal("86412.30"),
        bid_size=Decimal("3.417"),
        ask=Decimal("86412.40"),
        ask_size=Decimal("0.902"),
        exchange_ts_ns=1790516465121_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=8834120551,
    )


def test_multiplied_symbol_sizes_in_base_units(venue: Binance) -> None:
    (quote,) = venue.parse(fixture_frames("binance")[3], RECEIPT).events
    assert isinstance(quote, Quote)
    assert (quote.base, quote.bid, quote.price_multiplier) == ("PEPE", Decimal("0.0112031"), Decimal(1000))
    assert quote.bid_size == Decimal("125000000")  # 125000 contracts of 1000 PEPE
    assert quote.ask_size == Decimal("98000000")


def test_mark_price_funding(venue: Binance) -> None:
    (funding,) = venue.parse(fixture_frames("binance")[2], RECEIPT).events
    assert funding == Funding(
        instrument_id="BTC-USDT-PERP@binance",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="binance",
        native_symbol="BTCUSDT",
        base="BTC",
        rate=Decimal("0.00008125"),
        interval_h=8,
        next_funding_ts_ns=1790524800000_000_000,
        mark=Decimal("86408.81234567"),
        index=Decimal("86399.10000000"),
        exchange_ts_ns=1790516466000_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_mark_price_array_stream(venue: Binance) -> None:
    frame = (
        '[{"e":"markPriceUpdate","E":1,"s":"ETHUSDT","p":"3200.5","P":"3200","i":"3199.9","r":"-0.0001","T":0},'
        '{"e":"markPriceUpdate","E":1,"s":"NOTTRACKED","p":"1","P":"1","i":"1","r":"0","T":2}]'
    )
    (funding,) = venue.parse(frame, RECEIPT).events
    assert isinstance(funding, Funding)
    assert (funding.native_symbol, funding.rate, funding.next_funding_ts_ns) == ("ETHUSDT", Decimal("-0.0001"), None)


def test_control_frames_produce_no_events(venue: Binance) -> None:
    frames = fixture_frames("binance")
    ack = venue.parse(frames[0], RECEIPT)
    assert ack.subscribed and not ack.events
    error = venue.parse(frames[4], RECEIPT)
    assert error.error == "code 2: Invalid request: unknown property" and not error.events


def test_subscribe_messages_batched_and_routed(venue: Binance) -> None:
    plans = venue.connections("wss://fstream.binance.com")
    assert [p.url for p in plans] == [
        "wss://fstream.binance.com/public/stream",
        "wss://fstream.binance.com/market/stream",
    ]
    assert plans[0].topics[0] == "btcusdt@bookTicker" and plans[1].topics == ("!markPrice@arr@1s",)
    (message,) = venue.subscribe_messages(plans[0].topics)
    assert message == (
        '{"method":"SUBSCRIBE","params":["btcusdt@bookTicker","ethusdt@bookTicker",'
        '"solusdt@bookTicker","1000pepeusdt@bookTicker"],"id":1}'
    )


@pytest.mark.parametrize("frame", ['{"stream":"x","data":{"e":"bookTicker","s":"BTCUSDT"}}', "[1,2]", "nope"])
def test_malformed_frames_raise_frame_error(venue: Binance, frame: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


# -- whole market: funding intervals, volumes, limits, generated listings -----


def _bundled() -> dict[str, object]:
    listing = load_json((BUNDLED_DIR / "binance.json").read_bytes())
    assert isinstance(listing, dict)
    return listing


def test_funding_interval_from_funding_info_and_8h_for_unlisted_symbols() -> None:
    listing = {EXCHANGE_INFO: _bundled()[EXCHANGE_INFO]} | {
        FUNDING_INFO: load_json(
            '[{"symbol":"SOLUSDT","adjustedFundingRateCap":"0.03000000","adjustedFundingRateFloor":"-0.03000000",'
            '"fundingIntervalHours":4,"disclaimer":false},'
            '{"symbol":"1000PEPEUSDT","adjustedFundingRateCap":"0.02000000","adjustedFundingRateFloor":"-0.02000000",'
            '"fundingIntervalHours":1,"disclaimer":false},'
            '{"symbol":"DELISTEDUSDT","adjustedFundingRateCap":"0.02","adjustedFundingRateFloor":"-0.02",'
            '"fundingIntervalHours":4,"disclaimer":false}]'
        ),
        TICKER_24H: load_json('[{"symbol":"BTCUSDT","quoteVolume":"12190517315.42","lastPrice":"86412.3"}]'),
    }
    instruments = {i.native_symbol: i for i in Binance.parse_instruments(listing)}
    assert {s: i.funding_interval_h for s, i in instruments.items()} == {
        "BTCUSDT": 8,
        "ETHUSDT": 8,
        "SOLUSDT": 4,
        "1000PEPEUSDT": 1,
    }
    assert instruments["BTCUSDT"].volume_24h_quote == Decimal("12190517315.42")
    assert instruments["ETHUSDT"].volume_24h_quote is None
    # The mark-price stream has no interval: the Funding takes the listing's, so the APR is right.
    venue = Binance(list(instruments.values()))
    frame = (
        '{"stream":"!markPrice@arr@1s","data":[{"e":"markPriceUpdate","E":1790516466000,"s":"SOLUSDT",'
        '"p":"180.1","P":"180","i":"180.05","r":"0.0001","T":1790524800000},{"e":"markPriceUpdate",'
        '"E":1790516466000,"s":"1000PEPEUSDT","p":"0.0112","P":"0.0112","i":"0.0112","r":"0.0001","T":1790517600000}]}'
    )
    sol, pepe = venue.parse(frame, RECEIPT).events
    assert isinstance(sol, Funding) and isinstance(pepe, Funding)
    assert (sol.interval_h, pepe.interval_h) == (4, 1)
    assert sol.interval_h is not None and pepe.interval_h is not None
    assert funding_apr(sol.rate or Decimal(0), sol.interval_h) == Decimal("0.2190")  # 0.0001 x 6 x 365
    assert funding_apr(pepe.rate or Decimal(0), pepe.interval_h) == Decimal("0.8760")  # 0.0001 x 24 x 365


def test_old_listing_without_funding_info_or_tickers_still_loads_at_8h() -> None:
    listing = {EXCHANGE_INFO: _bundled()[EXCHANGE_INFO]}  # as cached before these paths were fetched
    instruments = Binance.parse_instruments(listing)
    assert {i.funding_interval_h for i in instruments} == {8}
    assert {i.volume_24h_quote for i in instruments} == {None}
    with pytest.raises(FrameError):
        Binance.parse_instruments(listing | {FUNDING_INFO: {"code": -1121, "msg": "Invalid symbol."}})


def test_whole_market_connection_plan_stays_inside_the_limits() -> None:
    instruments = round_trip(BinanceSim, Binance, specs(700))
    venue = Binance(instruments)
    plans = venue.connections("wss://fstream.binance.com")
    public = [p for p in plans if p.url.endswith("/public/stream")]
    assert sum(len(p.topics) for p in public) == len(instruments) > 1024  # every symbol's book, once
    assert all(len(p.topics) <= 1024 for p in plans)  # documented: 1024 streams per connection
    assert [p.topics for p in plans if p.url.endswith("/market/stream")] == [("!markPrice@arr@1s",)]
    frames = venue.subscribe_messages(public[0].topics)
    assert len(frames) == 11 and all(len(orjson.loads(f)["params"]) <= 100 for f in frames)
    # 10 incoming messages/s per connection are allowed; the runner paces at 1/0.3 s.
    assert 1 / Binance.subscribe_interval_s <= 5


def test_generated_listing_round_trip_covers_prefixes_groups_and_intervals() -> None:
    spec_list = specs(420)
    instruments = round_trip(BinanceSim, Binance, spec_list)
    assert len(instruments) > 500
    assert {i.quote for i in instruments} == {"USDT", "USDC"}  # no inverse on USDⓈ-M
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}
    pepe = next(i for i in instruments if i.native_symbol == "1000PEPEUSDT")
    assert (pepe.base, pepe.price_multiplier, pepe.contract_size) == ("PEPE", Decimal(1000), Decimal(1000))
    btc = next(i for i in instruments if i.native_symbol == "BTCUSDT")
    assert (btc.tick_size, btc.volume_24h_quote) == (Decimal("0.1"), Decimal(10_000))
    assert BinanceSim.list_instrument(ListingSpec("BTC", "USD-inverse", 1, 8, Decimal(86400))) is None
    assert BinanceSim.list_instrument(ListingSpec("PEPE", "USDT", 7, 8, Decimal("0.00001"))) is None


def test_sim_serves_the_all_market_mark_stream() -> None:
    instruments = round_trip(BinanceSim, Binance, specs(30))
    sim, venue = BinanceSim(instruments), Binance(instruments)
    session = SimSession("binance", "/market/stream", {})
    (ack,) = sim.on_message(session, venue.subscribe_messages(("!markPrice@arr@1s",))[0])
    assert venue.parse(ack, RECEIPT).subscribed
    assert session.subscriptions == {(FUNDING, i.native_symbol) for i in instruments}
    assert not any(kind == BOOK for kind, _ in session.subscriptions)
    hourly = next(i for i in instruments if i.funding_interval_h == 1)
    funding = SimFunding(Decimal("0.0002"), Decimal("1.5"), Decimal("1.5"), 1_790_517_600_000, 1_790_516_466_000)
    (event,) = venue.parse(sim.funding_frames(session, hourly, funding)[0], RECEIPT).events
    assert isinstance(event, Funding)
    assert (event.instrument_id, event.rate, event.interval_h) == (hourly.instrument_id, Decimal("0.0002"), 1)
    assert wire(sim.listing(instruments))[FUNDING_INFO]  # the 1 h and 4 h symbols are listed there


@pytest.mark.parametrize("failing", [TICKER_24H, FUNDING_INFO])
async def test_a_failed_ticker_costs_volumes_only_a_failed_funding_info_the_listing(failing: str) -> None:
    listing = _bundled()

    def route(path: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(_request: web.Request) -> web.Response:
            if path == failing:
                return web.Response(status=503)
            return web.Response(body=orjson.dumps(orjson.loads((BUNDLED_DIR / "binance.json").read_bytes())[path]))

        return serve

    app = web.Application()
    for path in listing:
        app.router.add_get(path, route(path))
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        base = str(server.make_url("")).rstrip("/")
        if failing == FUNDING_INFO:  # intervals set the APR: fall back to the cache rather than guess 8 h
            with pytest.raises(RetryableError, match="fundingInfo: HTTP 503"):
                await Binance.fetch_listing(http, base)
            return
        instruments = Binance.parse_instruments(load_json(await Binance.fetch_listing(http, base)))
    assert [i.native_symbol for i in instruments] == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "1000PEPEUSDT"]
    assert {i.volume_24h_quote for i in instruments} == {None}
