"""MEXC contract: documented frames in, exact values out."""

from __future__ import annotations

import gzip
from decimal import Decimal
from typing import Any

import pytest

from ingest.instruments import load_venue_instruments
from ingest.simulator.base import ListingSpec
from ingest.simulator.venues.mexc import MexcSim
from ingest.venues.base import FrameError
from ingest.venues.mexc import TICKER_PATH, Mexc
from schemas.market import ContractKind, Funding, Instrument, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.listing_specs import generated_specs, listed, round_trip, served_round_trip

RECEIPT = 1_790_516_465_130_000_000
FRAMES = fixture_frames("mexc")
ACK, BTC_BOOK, BTC_FUNDING, BTC_TICKER, BTC_BOOK_EXP, PEPE_BOOK, INVERSE_BOOK = FRAMES[:7]
PONG, ERROR, ETH_FUNDING, UNTRACKED_BOOK, ACK_STRING_TS = FRAMES[7:12]


@pytest.fixture
def venue() -> Mexc:
    return Mexc(load_venue_instruments("mexc"))


def _one(venue: Mexc, frame: str | bytes) -> Quote | Funding:
    (event,) = venue.parse(frame, RECEIPT).events
    return event


def test_instruments_from_contract_detail() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("mexc")}
    assert set(instruments) == {"BTC_USDT", "ETH_USDT", "SOL_USDT", "PEPE_USDT", "BTC_USD"}  # offline MATIC dropped
    assert instruments["BTC_USDT"] == Instrument(
        instrument_id="BTC-USDT-PERP@mexc",
        venue="mexc",
        native_symbol="BTC_USDT",
        base="BTC",
        quote="USDT",
        settle="USDT",
        kind=ContractKind.LINEAR,
        contract_size=Decimal("0.0001"),
        tick_size=Decimal("0.1"),
        funding_interval_h=8,
        volume_24h_quote=Decimal("5322813307.2215"),
        open_interest_quote=Decimal("847790146.31638"),  # holdVol 98112731 x 0.0001 BTC x fairPrice 86409.8
        funding_cap=Decimal("0.0018"),  # contract/funding_rate maxFundingRate / minFundingRate
        funding_floor=Decimal("-0.0018"),
    )
    # PEPE is scaled by contract size only (10M PEPE a contract), priced per coin.
    pepe = instruments["PEPE_USDT"]
    assert (pepe.base, pepe.price_multiplier, pepe.contract_size, pepe.tick_size) == (
        "PEPE",
        Decimal(1),
        Decimal(10_000_000),
        Decimal("1E-10"),
    )
    assert instruments["BTC_USD"] == Instrument(
        instrument_id="BTC-USD-INV-PERP@mexc",
        venue="mexc",
        native_symbol="BTC_USD",
        base="BTC",
        quote="USD",
        settle="BTC",
        kind=ContractKind.INVERSE,
        contract_size=Decimal(100),
        tick_size=Decimal("0.1"),
        funding_interval_h=8,
        volume_24h_quote=Decimal(120_441_100),
        open_interest_quote=Decimal(22_034_100),  # holdVol 220341 contracts of 100 USD
        funding_cap=Decimal("0.003"),
        funding_floor=Decimal("-0.003"),
    )


def _row(symbol: str, base: str, **extra: Any) -> dict[str, Any]:
    row = {"symbol": symbol, "baseCoin": base, "quoteCoin": "USDT", "settleCoin": "USDT", "futureType": 1}
    return row | {"contractSize": Decimal(1), "priceUnit": Decimal("0.000001"), "state": 0} | extra


def test_instruments_filter_daily_and_disabled_and_read_funding_cycle() -> None:
    listing = {
        "/api/v1/contract/detail": {
            "data": [
                _row("1000BONK_USDT", "1000BONK"),
                _row("SOL_USDT", "SOL", futureType=2),  # a daily future, not perpetual
                _row("XYZ_USDT", "XYZ", state=4),  # paused
            ]
        },
        "/api/v1/contract/funding_rate": {"data": [{"symbol": "1000BONK_USDT", "collectCycle": 4}]},
    }
    (bonk,) = Mexc.parse_instruments(listing)
    assert (bonk.instrument_id, bonk.base, bonk.price_multiplier) == ("BONK-USDT-PERP@mexc", "BONK", Decimal(1000))
    assert (bonk.contract_size, bonk.funding_interval_h) == (Decimal(1000), 4)  # one contract = 1 x 1000BONK
    del listing["/api/v1/contract/funding_rate"]
    assert Mexc.parse_instruments(listing)[0].funding_interval_h == 8  # default when the cycle is unknown


@pytest.mark.parametrize(
    "listing",
    [{}, {"/api/v1/contract/detail": {"data": [{"symbol": "X", "futureType": 1, "state": 0}]}}],
)
def test_bad_listing_raises_frame_error(listing: dict[str, Any]) -> None:
    with pytest.raises(FrameError):
        Mexc.parse_instruments(listing)


def test_depth_full_best_levels_in_base_units(venue: Mexc) -> None:
    assert _one(venue, BTC_BOOK) == Quote(
        instrument_id="BTC-USDT-PERP@mexc",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="mexc",
        native_symbol="BTC_USDT",
        base="BTC",
        bid=Decimal("86410.5"),
        bid_size=Decimal("6.1052"),
        ask=Decimal("86410.6"),
        ask_size=Decimal("2.3118"),
        exchange_ts_ns=1790516465300_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=41912338210,
    )


def test_exponent_prices_and_engine_time(venue: Mexc) -> None:
    quote = _one(venue, BTC_BOOK_EXP)
    assert quote == Quote(
        instrument_id="BTC-USDT-PERP@mexc",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="mexc",
        native_symbol="BTC_USDT",
        base="BTC",
        bid=Decimal("86410.9"),
        bid_size=Decimal("0.0120"),
        ask=Decimal("86411"),
        ask_size=Decimal("0.4410"),
        exchange_ts_ns=1790516465412_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=41912338301,
    )
    assert isinstance(quote, Quote) and str(quote.ask) == "86411"  # 8.6411E+4 written out


def test_contract_sized_symbol_in_base_units(venue: Mexc) -> None:
    quote = _one(venue, PEPE_BOOK)
    assert isinstance(quote, Quote)
    assert (quote.base, quote.bid, quote.ask, quote.price_multiplier) == (
        "PEPE",
        Decimal("0.0000112031"),
        Decimal("0.0000112040"),
        Decimal(1),
    )
    assert (quote.bid_size, quote.ask_size) == (Decimal(1_250_000_000), Decimal(980_000_000))  # x 10M PEPE


def test_inverse_contracts_are_usd(venue: Mexc) -> None:
    assert _one(venue, INVERSE_BOOK) == Quote(
        instrument_id="BTC-USD-INV-PERP@mexc",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="mexc",
        native_symbol="BTC_USD",
        base="BTC",
        bid=Decimal("86398.5"),
        bid_size=Decimal(125_000) / Decimal("86398.5"),
        ask=Decimal("86400.0"),
        ask_size=Decimal(310_000) / Decimal("86400.0"),
        exchange_ts_ns=1790516465500_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=7730012234,
    )


def test_empty_side_has_no_price(venue: Mexc) -> None:
    frame = '{"symbol":"ETH_USDT","data":{"asks":[],"bids":[[3200.5,10,1]],"version":5},"channel":"push.depth.full"}'
    quote = _one(venue, frame)
    assert isinstance(quote, Quote)
    assert (quote.bid_size, quote.ask, quote.ask_size) == (Decimal("0.10"), None, None)
    assert quote.exchange_ts_missing and quote.exchange_ts_ns == RECEIPT


def _btc_funding(**fields: Any) -> Funding:
    base = {"instrument_id": "BTC-USDT-PERP@mexc", "venue": "mexc", "native_symbol": "BTC_USDT", "base": "BTC"}
    identity = {"quote": "USDT", "kind": ContractKind.LINEAR}
    return Funding(**(base | identity | {"interval_h": 8, "receipt_ts_ns": RECEIPT} | fields))


def test_funding_rate_then_ticker_merge(venue: Mexc) -> None:
    assert _one(venue, BTC_FUNDING) == _btc_funding(
        rate=Decimal("0.000064"), next_funding_ts_ns=1790524800000_000_000, exchange_ts_ns=1790516470000_000_000
    )
    # The ticker adds fair (mark) and index price and keeps the next settlement.
    assert _one(venue, BTC_TICKER) == _btc_funding(
        rate=Decimal("0.000064"),
        next_funding_ts_ns=1790524800000_000_000,
        mark=Decimal("86409.8"),
        index=Decimal("86402.3"),
        exchange_ts_ns=1790516471003_000_000,
    )
    # ...and a later funding push keeps the ticker's mark and index.
    later = _one(venue, BTC_FUNDING)
    assert isinstance(later, Funding) and (later.mark, later.index) == (Decimal("86409.8"), Decimal("86402.3"))


def test_ticker_alone_has_no_next_settlement(venue: Mexc) -> None:
    funding = _one(venue, BTC_TICKER)
    assert isinstance(funding, Funding)
    assert (funding.rate, funding.next_funding_ts_ns, funding.mark) == (Decimal("0.000064"), None, Decimal("86409.8"))


def test_passed_settlement_is_not_carried(venue: Mexc) -> None:
    venue.parse(BTC_FUNDING, RECEIPT)
    frame = BTC_TICKER.replace('"ts":1790516471003', '"ts":1790524800001')
    funding = _one(venue, frame)
    assert isinstance(funding, Funding) and funding.next_funding_ts_ns is None


def test_reset_forgets_merged_state(venue: Mexc) -> None:
    venue.parse(BTC_FUNDING, RECEIPT)
    venue.reset()
    funding = _one(venue, BTC_TICKER)
    assert isinstance(funding, Funding) and funding.next_funding_ts_ns is None


def test_documented_funding_rate_key(venue: Mexc) -> None:
    funding = _one(venue, ETH_FUNDING)
    assert funding == Funding(
        instrument_id="ETH-USDT-PERP@mexc",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="mexc",
        native_symbol="ETH_USDT",
        base="ETH",
        rate=Decimal("-0.000021"),
        interval_h=8,
        next_funding_ts_ns=1790524800000_000_000,
        exchange_ts_ns=1790516472000_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_control_frames_produce_no_events(venue: Mexc) -> None:
    for ack in (ACK, ACK_STRING_TS):
        parsed = venue.parse(ack, RECEIPT)
        assert parsed.subscribed and not parsed.events and parsed.error is None
    pong = venue.parse(PONG, RECEIPT)
    assert not pong.events and not pong.subscribed and pong.error is None and not pong.replies
    error = venue.parse(ERROR, RECEIPT)
    assert error.error == "Contract [NOPE_USDT] not exists" and not error.events
    untracked = venue.parse(UNTRACKED_BOOK, RECEIPT)
    assert not untracked.events and untracked.error is None
    assert not venue.parse('{"channel":"push.kline","data":{"c":1},"symbol":"BTC_USDT"}', RECEIPT).events


def test_gzip_frames_are_decoded(venue: Mexc) -> None:
    assert _one(venue, gzip.compress(BTC_BOOK.encode())) == _one(venue, BTC_BOOK)


def test_subscribe_one_contract_per_frame(venue: Mexc) -> None:
    (plan,) = venue.connections("wss://contract.mexc.com")
    assert plan.url == "wss://contract.mexc.com/edge"
    assert plan.topics[:3] == ("depth.full:BTC_USDT", "funding.rate:BTC_USDT", "ticker:BTC_USDT")
    assert len(plan.topics) == 15
    assert venue.subscribe_messages(plan.topics[:3]) == [
        '{"method":"sub.depth.full","param":{"symbol":"BTC_USDT","limit":5}}',
        '{"method":"sub.funding.rate","param":{"symbol":"BTC_USDT"}}',
        '{"method":"sub.ticker","param":{"symbol":"BTC_USDT"}}',
    ]
    assert venue.ping_message() == '{"method":"ping"}'
    assert venue.ping_interval_s is not None and 10 <= venue.ping_interval_s <= 20
    assert 0 < venue.subscribe_interval_s < 1 and venue.topics_per_subscribe == 1


@pytest.mark.parametrize(
    "frame",
    [
        "nope",
        "[1,2]",
        '{"data":"success"}',
        '{"channel":"push.depth.full","symbol":"BTC_USDT","data":[1]}',
        '{"channel":"push.depth.full","symbol":"BTC_USDT","data":{"asks":[],"bids":[]}}',
        '{"channel":"push.depth.full","symbol":"BTC_USDT","data":{"asks":{},"bids":[],"version":1}}',
        '{"channel":"push.depth.full","symbol":"BTC_USDT","data":{"asks":[[1]],"bids":[],"version":1}}',
        '{"channel":"push.depth.full","symbol":"BTC_USDT","data":{"asks":[["x",1,1]],"bids":[],"version":1}}',
        '{"channel":"push.depth.full","symbol":["BTC_USDT"],"data":{"asks":[],"bids":[],"version":1}}',
        '{"channel":"push.funding.rate","symbol":"BTC_USDT","data":{"symbol":"BTC_USDT"}}',
        '{"channel":"push.funding.rate","symbol":"BTC_USDT","data":{"rate":0.1,"nextSettleTime":"soon"}}',
        '{"channel":"push.ticker","symbol":"BTC_USDT","data":{"fairPrice":true}}',
        b"\x1f\x8b not really gzip",
        gzip.compress(b'{"channel":"pong","data":1}')[:-4],  # truncated: no length trailer
        gzip.compress(b'{"channel":"pong","data":1}') + b"junk",  # bytes after the member
        gzip.compress(b'{"channel":"pong","data":1}', mtime=0)[:-5] + b"\x00" * 5,  # CRC-32 and length wrong
    ],
)
def test_malformed_frames_raise_frame_error(venue: Mexc, frame: str | bytes) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


def test_volume_from_the_bulk_ticker() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("mexc")}
    assert instruments["BTC_USDT"].volume_24h_quote == Decimal("5322813307.2215")  # amount24
    assert instruments["BTC_USD"].volume_24h_quote == Decimal(120_441_100)  # 1,204,411 contracts of 100 USD
    assert instruments["ETH_USDT"].volume_24h_quote is None  # no ticker row
    assert instruments["ETH_USDT"].open_interest_quote is None
    assert Mexc.instrument_paths == ("/api/v1/contract/detail", "/api/v1/contract/funding_rate", TICKER_PATH)


def test_generated_listing_round_trip() -> None:
    specs = generated_specs()
    instruments = round_trip(MexcSim, Mexc, specs)
    by_symbol = {i.native_symbol: i for i in instruments}
    assert len(instruments) > 400
    assert {i.quote_group for i in instruments} == {"USDT", "USDC", "USD-inverse"}
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}
    inverse = [i for i in instruments if i.kind is ContractKind.INVERSE]
    assert {i.native_symbol for i in inverse} == {"BTC_USD", "ETH_USD", "SOL_USD", "XRP_USD", "DOGE_USD"}
    assert by_symbol["BTC_USD"].contract_size == 100 and by_symbol["ETH_USD"].contract_size == 10
    mog = by_symbol["1000000MOG_USDT"]
    assert (mog.base, mog.price_multiplier, mog.contract_size) == ("MOG", Decimal(1_000_000), Decimal(1_000_000))
    assert by_symbol["1000PEPE_USDC"].base == "PEPE" and by_symbol["BONK_USDT"].price_multiplier == 1
    assert sum(i.volume_24h_quote is None for i in instruments) > 0
    assert all((i.open_interest_quote is None) == (i.volume_24h_quote is None) for i in instruments)


def test_generated_listing_carries_the_collect_cycle() -> None:
    spec = ListingSpec("SOL", "USDT", 1, 4, Decimal("180.41"), Decimal("7654321.5"))
    (inst,) = listed(MexcSim, [spec])
    listing = MexcSim([inst]).listing([inst])
    (detail,) = listing["/api/v1/contract/detail"]["data"]
    (funding,) = listing["/api/v1/contract/funding_rate"]["data"]
    (ticker,) = listing[TICKER_PATH]["data"]
    assert (detail["symbol"], detail["contractSize"], detail["priceUnit"], detail["priceScale"]) == (
        "SOL_USDT",
        Decimal("0.01"),
        Decimal("0.001"),
        3,
    )
    assert (funding["collectCycle"], ticker["amount24"]) == (4, Decimal("7654321.5"))
    assert MexcSim.list_instrument(ListingSpec("SHIB", "USD-inverse", 1, 8, Decimal("0.00002"))) is None


def test_whole_market_connection_plan() -> None:
    instruments = listed(MexcSim, generated_specs())
    plans = Mexc(instruments).connections("wss://contract.mexc.com")
    assert all(len(p.topics) <= 150 for p in plans) and len(plans) == -(-3 * len(instruments) // 150)
    assert len(Mexc(instruments).subscribe_messages(plans[0].topics)) == 150  # one contract and channel a frame


async def test_generated_listing_served_over_http_and_fetched_by_the_venue() -> None:
    parsed = await served_round_trip("mexc", generated_specs(tail=120))
    assert len(parsed) > 100 and "BTC" in {i.base for i in parsed}
