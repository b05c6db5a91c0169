"""Binance USDⓈ-M: documented frames in, exact values out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingest.instruments import load_venue_instruments
from ingest.venues.base import FrameError
from ingest.venues.binance import Binance
from schemas.market import Funding, Quote
from tests.venues.conftest import fixture_frames

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


def test_book_ticker(venue: Binance) -> None:
    frames = fixture_frames("binance")
    (quote,) = venue.parse(frames[1], RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USDT-PERP@binance",
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
    assert plans[0].topics[0] == "btcusdt@bookTicker" and plans[1].topics[0] == "btcusdt@markPrice@1s"
    (message,) = venue.subscribe_messages(plans[0].topics)
    assert message == (
        '{"method":"SUBSCRIBE","params":["btcusdt@bookTicker","ethusdt@bookTicker",'
        '"solusdt@bookTicker","1000pepeusdt@bookTicker"],"id":1}'
    )


@pytest.mark.parametrize("frame", ['{"stream":"x","data":{"e":"bookTicker","s":"BTCUSDT"}}', "[1,2]", "nope"])
def test_malformed_frames_raise_frame_error(venue: Binance, frame: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)
