"""Bitget classic v2 (USDT-M + Coin-M): documented frames in, exact values out."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from ingest.instruments import BUNDLED_DIR, load_venue_instruments
from ingest.simulator.base import ListingSpec
from ingest.simulator.venues.bitget import BitgetSim
from ingest.venues.base import FrameError
from ingest.venues.bitget import Bitget, inst_type
from schemas.market import ContractKind, Funding, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.listing_specs import generated_specs, listed, round_trip, served_round_trip

RECEIPT = 1_790_516_465_130_000_000
USDT_LISTING = "/api/v2/mix/market/contracts?productType=USDT-FUTURES"
COIN_LISTING = "/api/v2/mix/market/contracts?productType=COIN-FUTURES"
USDT_TICKERS = "/api/v2/mix/market/tickers?productType=USDT-FUTURES"


@pytest.fixture
def venue() -> Bitget:
    return Bitget(load_venue_instruments("bitget"))


@pytest.fixture
def frames() -> list[str]:
    return fixture_frames("bitget")


def _listing() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((BUNDLED_DIR / "bitget.json").read_text())
    return loaded


def test_instruments_from_every_contract_listing() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("bitget")}
    # BTCUSDZ26 (delivery) is dropped; Coin-M ids are plain on v2 (BTCUSD, not BTCUSD_CM).
    assert set(instruments) == {
        *("BTCUSDT", "ETHUSDT", "SOLUSDT", "PEPEUSDT", "1000BONKUSDT", "BTCUSD", "ETHUSD", "BTCPERP")
    }
    btc = instruments["BTCUSDT"]
    assert (btc.instrument_id, btc.settle, btc.kind, btc.contract_size, btc.tick_size, btc.funding_interval_h) == (
        "BTC-USDT-PERP@bitget",
        "USDT",
        ContractKind.LINEAR,
        Decimal(1),
        Decimal("0.1"),
        8,
    )
    assert instruments["PEPEUSDT"].tick_size == Decimal("1E-10")  # priceEndStep 1 at pricePlace 10
    bonk = instruments["1000BONKUSDT"]
    assert (bonk.instrument_id, bonk.base, bonk.price_multiplier, bonk.contract_size, bonk.funding_interval_h) == (
        "BONK-USDT-PERP@bitget",
        "BONK",
        Decimal(1000),
        Decimal(1000),
        4,
    )
    inverse = instruments["BTCUSD"]
    assert (inverse.instrument_id, inverse.quote, inverse.settle, inverse.kind, inverse.contract_size) == (
        "BTC-USD-INV-PERP@bitget",
        "USD",
        "BTC",
        ContractKind.INVERSE,
        Decimal(1),
    )
    assert instruments["ETHUSD"].settle == "ETH"
    delivery = [r for r in _listing()[COIN_LISTING]["data"] if r["symbolType"] == "delivery"]
    assert [r["symbol"] for r in delivery] == ["BTCUSDZ26"]  # present in the listing, filtered above


def test_listing_filters_status_and_unpublishable_ids() -> None:
    listing = _listing()
    rows = listing[USDT_LISTING]["data"]
    rows.append(dict(copy.deepcopy(rows[0]), symbol="牛来USDT", baseCoin="牛来"))  # real non-ASCII id
    rows.append(dict(copy.deepcopy(rows[0]), symbol="MAINTUSDT", baseCoin="MAINT", symbolStatus="maintain"))
    symbols = {i.native_symbol for i in Bitget.parse_instruments(listing)}
    assert "牛来USDT" not in symbols and "MAINTUSDT" not in symbols and "BTCUSDT" in symbols


def test_inst_type_derived_from_kind_and_settle(venue: Bitget) -> None:
    by_native = venue.by_native
    assert inst_type(by_native["BTCUSDT"]) == "USDT-FUTURES"
    assert inst_type(by_native["BTCUSD"]) == "COIN-FUTURES"
    assert inst_type(msgspec.structs.replace(by_native["BTCUSDT"], settle="USDC")) == "USDC-FUTURES"
    with pytest.raises(ValueError, match="no Bitget product type"):
        inst_type(msgspec.structs.replace(by_native["BTCUSDT"], settle="EUR"))


def test_linear_books1(venue: Bitget, frames: list[str]) -> None:
    (quote,) = venue.parse(frames[3], RECEIPT).events
    assert quote == Quote(
        instrument_id="ETH-USDT-PERP@bitget",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="bitget",
        native_symbol="ETHUSDT",
        base="ETH",
        bid=Decimal("2741.16"),
        bid_size=Decimal("301.02"),
        ask=Decimal("2741.17"),
        ask_size=Decimal("12.44"),
        exchange_ts_ns=1790516465014_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=77120043119,
    )


def test_inverse_books1_sizes_stay_base_coin_and_big_sequence(venue: Bitget, frames: list[str]) -> None:
    (quote,) = venue.parse(frames[5], RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USD-INV-PERP@bitget",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="bitget",
        native_symbol="BTCUSD",
        base="BTC",
        bid=Decimal("86420.1"),
        bid_size=Decimal("0.734"),
        ask=Decimal("86420.5"),
        ask_size=Decimal("1.25"),
        exchange_ts_ns=1790516465120_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=1483653649791156272,
    )
    assert isinstance(quote.sequence, int) and quote.sequence > 2**53  # no float rounding


def test_multiplied_symbol_sizes_in_base_units(venue: Bitget, frames: list[str]) -> None:
    (quote,) = venue.parse(frames[7], RECEIPT).events
    assert quote == Quote(
        instrument_id="BONK-USDT-PERP@bitget",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="bitget",
        native_symbol="1000BONKUSDT",
        base="BONK",
        bid=Decimal("0.0198400"),
        bid_size=Decimal("1203500000"),
        ask=Decimal("0.0198410"),
        ask_size=Decimal("851200000"),
        price_multiplier=Decimal(1000),
        exchange_ts_ns=1790516465230_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=90412270113,
    )


def test_one_sided_book(venue: Bitget, frames: list[str]) -> None:
    (quote,) = venue.parse(frames[8], RECEIPT).events
    assert quote == Quote(
        instrument_id="PEPE-USDT-PERP@bitget",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="bitget",
        native_symbol="PEPEUSDT",
        base="PEPE",
        bid=None,
        bid_size=None,
        ask=Decimal("0.0000112040"),
        ask_size=Decimal("98000000"),
        exchange_ts_ns=1790516465240_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=61022410087,
    )


def test_ticker_funding(venue: Bitget, frames: list[str]) -> None:
    (funding,) = venue.parse(frames[4], RECEIPT).events
    assert funding == Funding(
        instrument_id="BTC-USDT-PERP@bitget",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="bitget",
        native_symbol="BTCUSDT",
        base="BTC",
        rate=Decimal("0.000073"),
        interval_h=8,
        next_funding_ts_ns=1790524800000_000_000,
        mark=Decimal("86408.8"),
        index=Decimal("86402.8"),
        exchange_ts_ns=1790516465305_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_inverse_ticker_funding(venue: Bitget, frames: list[str]) -> None:
    (funding,) = venue.parse(frames[6], RECEIPT).events
    assert funding == Funding(
        instrument_id="BTC-USD-INV-PERP@bitget",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="bitget",
        native_symbol="BTCUSD",
        base="BTC",
        rate=Decimal("-0.000012"),
        interval_h=8,
        next_funding_ts_ns=1790524800000_000_000,
        mark=Decimal("86419.7"),
        index=Decimal("86411.2"),
        exchange_ts_ns=1790516465410_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_interval_comes_from_the_listing_and_missing_times(venue: Bitget) -> None:
    frame = (
        '{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":"1000BONKUSDT"},'
        '"data":[{"instId":"1000BONKUSDT","fundingRate":"0.0001","nextFundingTime":"0","markPrice":"0.01984"}]}'
    )
    (funding,) = venue.parse(frame, RECEIPT).events
    assert isinstance(funding, Funding)
    assert (funding.interval_h, funding.next_funding_ts_ns, funding.index) == (4, None, None)
    assert (funding.exchange_ts_ns, funding.exchange_ts_missing, funding.price_multiplier) == (
        RECEIPT,
        True,
        Decimal(1000),
    )


def test_control_frames_produce_no_events(venue: Bitget, frames: list[str]) -> None:
    for index in (0, 10):
        ack = venue.parse(frames[index], RECEIPT)
        assert ack.subscribed and not ack.events and ack.error is None
    pong = venue.parse(frames[1], RECEIPT)
    assert pong == venue.parse(b"pong", RECEIPT) and not pong.events and not pong.subscribed
    unknown = venue.parse(frames[2], RECEIPT)
    assert unknown.error == (
        "code 30001: instType:USDT-FUTURES,channel:books1,instId:NOPEUSDT,precision:null doesn't exist"
    )
    assert not unknown.events and not unknown.subscribed
    assert venue.parse(frames[9], RECEIPT).error == "code 30016: Param error"
    assert venue.parse('{"event":"unsubscribe","arg":{}}', RECEIPT) == venue.parse("pong", RECEIPT)


def test_untracked_or_misfiled_contracts_are_skipped(venue: Bitget, frames: list[str]) -> None:
    other = frames[3].replace("ETHUSDT", "XRPUSDT")
    misfiled = frames[3].replace("USDT-FUTURES", "COIN-FUTURES")  # same id under another family
    assert not venue.parse(other, RECEIPT).events
    assert not venue.parse(misfiled, RECEIPT).events
    assert not venue.parse(
        '{"action":"snapshot","arg":{"channel":"trade","instId":"ETHUSDT"},"data":[]}', RECEIPT
    ).events


def test_subscribe_messages_carry_the_derived_inst_type(venue: Bitget) -> None:
    (plan,) = venue.connections("wss://ws.bitget.com")
    assert plan.url == "wss://ws.bitget.com/v2/ws/public"
    assert len(plan.topics) == 16
    (message,) = venue.subscribe_messages(plan.topics)
    subscribe = json.loads(message)
    assert subscribe["op"] == "subscribe" and len(subscribe["args"]) == 16
    assert subscribe["args"][:2] == [
        {"instType": "USDT-FUTURES", "channel": "books1", "instId": "BTCUSDT"},
        {"instType": "USDT-FUTURES", "channel": "ticker", "instId": "BTCUSDT"},
    ]
    coin = [a for a in subscribe["args"] if a["instId"] in ("BTCUSD", "ETHUSD")]
    assert {a["instType"] for a in coin} == {"COIN-FUTURES"} and len(coin) == 4
    assert subscribe["args"][-1] == {"instType": "USDC-FUTURES", "channel": "ticker", "instId": "BTCPERP"}
    assert venue.ping_message() == "ping" and venue.ping_interval_s is not None and venue.ping_interval_s < 120


def test_subscribe_frames_stay_within_the_args_budget(venue: Bitget) -> None:
    topics = [f"USDT-FUTURES:books1:COIN{n}USDT" for n in range(50)]
    messages = venue.subscribe_messages(topics)
    assert [len(json.loads(m)["args"]) for m in messages] == [20, 20, 10]
    assert all(len(m.encode()) < 4096 for m in messages)


@pytest.mark.parametrize(
    "frame",
    [
        '{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"books1","instId":"BTCUSDT"},"data":[{}]}',
        '{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"books1","instId":"BTCUSDT"},'
        '"data":[{"asks":[["1"]],"bids":[],"ts":"1"}]}',
        '{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"books1","instId":"BTCUSDT"},'
        '"data":[{"asks":[],"bids":[],"ts":"soon"}]}',
        '{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":"BTCUSDT"},"data":[{}]}',
        '{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":"BTCUSDT"},'
        '"data":[{"fundingRate":"x"}]}',
        '{"action":"snapshot","arg":"BTCUSDT","data":[]}',
        '{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"books1","instId":"BTCUSDT"},"data":[1]}',
        "[1,2]",
        "nope",
    ],
)
def test_malformed_frames_raise_frame_error(venue: Bitget, frame: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


def test_usdc_family_and_volume_from_the_tickers() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("bitget")}
    perp = instruments["BTCPERP"]
    assert (perp.instrument_id, perp.quote, perp.settle, perp.kind, inst_type(perp)) == (
        "BTC-USDC-PERP@bitget",
        "USDC",
        "USDC",
        ContractKind.LINEAR,
        "USDC-FUTURES",
    )
    assert instruments["BTCUSDT"].volume_24h_quote == Decimal("5288431120.7713")
    assert instruments["BTCUSD"].volume_24h_quote == Decimal("157434022.1")
    assert instruments["ETHUSDT"].volume_24h_quote is None and perp.volume_24h_quote is None


def test_open_interest_is_holding_amount_in_base_coin_at_the_mark() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("bitget")}
    # USDT-M: holdingAmount 41230.112 BTC x markPrice 86408.8 USDT.
    assert instruments["BTCUSDT"].open_interest_quote == Decimal("3562644501.7856")
    # COIN-M sizes are base coin too: 2210.3 BTC x 86401.6 USD.
    assert instruments["BTCUSD"].open_interest_quote == Decimal("190973456.48")
    assert instruments["ETHUSDT"].open_interest_quote is None  # no tickers row
    listing = _listing()
    rows = listing[USDT_TICKERS]["data"]
    no_mark = {**listing, USDT_TICKERS: {**listing[USDT_TICKERS], "data": [{**rows[0], "markPrice": None}]}}
    assert {i.native_symbol: i.open_interest_quote for i in Bitget.parse_instruments(no_mark)}["BTCUSDT"] is None


def test_listing_cached_before_usdc_and_tickers_still_parses() -> None:
    listing = {path: response for path, response in _listing().items() if path in (USDT_LISTING, COIN_LISTING)}
    instruments = Bitget.parse_instruments(listing)
    assert len(instruments) == 7 and all(i.volume_24h_quote is None for i in instruments)
    with pytest.raises(FrameError):
        Bitget.parse_instruments({USDT_LISTING: listing[USDT_LISTING]})  # Coin-M is not optional


def test_generated_listing_round_trip() -> None:
    specs = generated_specs()
    instruments = round_trip(BitgetSim, Bitget, specs, ordered=False)  # parsed family by family
    by_symbol = {i.native_symbol: i for i in instruments}
    assert len(instruments) > 400
    assert {i.quote_group for i in instruments} == {"USDT", "USDC", "USD-inverse"}
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}
    assert {i.native_symbol for i in instruments if i.kind is ContractKind.INVERSE} == {
        "BTCUSD",
        "ETHUSD",
        "SOLUSD",
        "XRPUSD",
        "DOGEUSD",
    }
    pepe = by_symbol["1000PEPEPERP"]
    assert (pepe.base, pepe.quote, pepe.price_multiplier, pepe.contract_size) == (
        "PEPE",
        "USDC",
        Decimal(1000),
        Decimal(1000),
    )
    assert by_symbol["BTCUSDT"].tick_size == Decimal("0.1") and by_symbol["BTCUSD"].contract_size == 1
    assert sum(i.volume_24h_quote is None for i in instruments) > 0
    assert all((i.open_interest_quote is None) == (i.volume_24h_quote is None) for i in instruments)


def test_generated_listing_rows_look_like_bitget() -> None:
    spec = ListingSpec("PEPE", "USDT", 1, 1, Decimal("0.0000112"), Decimal("4242"))
    (inst,) = listed(BitgetSim, [spec])
    listing = BitgetSim([inst]).listing([inst])
    (row,) = listing[USDT_LISTING]["data"]
    assert (row["symbol"], row["baseCoin"], row["priceEndStep"], row["pricePlace"], row["fundInterval"]) == (
        "PEPEUSDT",
        "PEPE",
        "1",
        "10",
        "1",
    )
    (ticker,) = listing["/api/v2/mix/market/tickers?productType=USDT-FUTURES"]["data"]
    assert ticker["quoteVolume"] == "4242" and listing[COIN_LISTING]["data"] == []


def test_whole_market_connection_plan() -> None:
    instruments = listed(BitgetSim, generated_specs())
    venue = Bitget(instruments)
    plans = venue.connections("wss://ws.bitget.com")
    assert all(len(p.topics) <= 50 for p in plans) and len(plans) <= 100  # 100 connections per IP
    frames = venue.subscribe_messages(plans[0].topics)
    assert [len(json.loads(f)["args"]) for f in frames] == [20, 20, 10]
    assert max(len(f.encode()) for f in frames) < 4096


async def test_generated_listing_served_over_http_and_fetched_by_the_venue() -> None:
    parsed = await served_round_trip("bitget", generated_specs(tail=120))
    assert len(parsed) > 100 and "BTC" in {i.base for i in parsed}
