"""Phemex COIN-M (scaled integers) and hedged USDT-M (decimal strings): documented frames in, exact values out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from arbstream.errors import ConfigError
from ingest.instruments import load_venue_instruments
from ingest.simulator.base import BOOK, FUNDING, SimSession
from ingest.simulator.market import SimFunding, SimQuote
from ingest.simulator.venues.phemex import PhemexSim
from ingest.venues.base import FrameError, Parsed, make_instrument
from ingest.venues.phemex import SCALES, Phemex, Scales
from schemas.market import ContractKind, Funding, Instrument, Quote
from tests.venues.conftest import fixture_frames

RECEIPT = 1_790_516_465_130_000_000
FRAMES = fixture_frames("phemex")
ACK, PONG, REFUSED = 0, 1, 2
COIN_SNAPSHOT, COIN_DELTA, COIN_BACKWARDS = 3, 4, 5
HEDGED_SNAPSHOT, HEDGED_DELTA, PEPE_SNAPSHOT = 6, 7, 8
COIN_TICKER, HEDGED_PACK, TICK, LIMIT = 9, 10, 11, 12
NEXT_8H = 1_790_524_800_000_000_000  # 2026-09-28 00:00 UTC, the settlement after the frames' times


@pytest.fixture
def venue() -> Phemex:
    return Phemex(load_venue_instruments("phemex"))


def feed(venue: Phemex, *indices: int) -> list[Parsed]:
    return [venue.parse(FRAMES[i], RECEIPT) for i in indices]


def test_instruments_from_products() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("phemex")}
    # Dropped: ETHUSD (old USD-settled model, Delisted), sBTCUSDT (Spot), LSKUSDT (Delisted).
    assert set(instruments) == {"BTCUSD", "cETHUSD", "BTCUSDT", "ETHUSDT", "SOLUSDT", "u1000PEPEUSDT"}
    assert instruments["BTCUSD"] == Instrument(
        instrument_id="BTC-USD-INV-PERP@phemex", venue="phemex", native_symbol="BTCUSD", base="BTC", quote="USD",
        settle="BTC", kind=ContractKind.INVERSE, contract_size=Decimal(1), tick_size=Decimal("0.5"),
        funding_interval_h=8,
    )  # fmt: skip
    assert instruments["cETHUSD"].instrument_id == "ETH-USD-INV-PERP@phemex"
    assert instruments["u1000PEPEUSDT"] == Instrument(
        instrument_id="PEPE-USDT-PERP@phemex", venue="phemex", native_symbol="u1000PEPEUSDT", base="PEPE",
        quote="USDT", settle="USDT", kind=ContractKind.LINEAR, price_multiplier=Decimal(1000),
        contract_size=Decimal(1000), tick_size=Decimal("0.0000001"), funding_interval_h=8,
    )  # fmt: skip
    assert SCALES["BTCUSD"] == Scales(price=4, ratio=8)
    assert "BTCUSDT" not in SCALES  # hedged prices are unscaled strings


def test_funding_interval_is_seconds() -> None:
    row = {"symbol": "XUSDT", "type": "PerpetualV2", "status": "Listed", "baseCurrency": "X",
           "quoteCurrency": "USDT", "settleCurrency": "USDT", "tickSize": "0.1", "fundingInterval": 14400}  # fmt: skip
    listing = {"/public/products": {"code": 0, "data": {"ratioScale": 8, "products": [], "perpProductsV2": [row]}}}
    (inst,) = Phemex.parse_instruments(listing)
    assert (inst.base, inst.funding_interval_h) == ("X", 4)


def test_control_frames(venue: Phemex) -> None:
    ack, pong, refused, tick, limit = feed(venue, ACK, PONG, REFUSED, TICK, LIMIT)
    assert ack == Parsed(subscribed=True)
    assert pong == Parsed()
    assert refused == Parsed(error="code 6001: invalid argument")
    assert limit == Parsed(error="code 6015: subscription limit exceeded")
    assert tick == Parsed()  # an unsubscribed channel is not an error


def test_coin_m_snapshot_is_scaled_and_inverse(venue: Phemex) -> None:
    (parsed,) = feed(venue, COIN_SNAPSHOT)
    bid, ask = Decimal("86406"), Decimal("86406.5")  # priceEp / 10^4
    assert parsed.events == [
        Quote(
            instrument_id="BTC-USD-INV-PERP@phemex", venue="phemex", native_symbol="BTCUSD", base="BTC",
            bid=bid, bid_size=Decimal(48200) / bid, ask=ask, ask_size=Decimal(21500) / ask,
            exchange_ts_ns=1790516465005118402, receipt_ts_ns=RECEIPT, sequence=1308844120,
        )
    ]  # fmt: skip


def test_coin_m_increment_merges_into_the_book(venue: Phemex) -> None:
    _, delta = feed(venue, COIN_SNAPSHOT, COIN_DELTA)
    (quote,) = delta.events
    assert isinstance(quote, Quote)
    # The best ask (qty 0) is deleted; a bid joins at the old ask price; sequences may jump.
    assert (quote.bid, quote.bid_size) == (Decimal("86406.5"), Decimal(1200) / Decimal("86406.5"))
    assert (quote.ask, quote.ask_size) == (Decimal("86407"), Decimal(9300) / Decimal("86407"))
    assert (quote.sequence, quote.exchange_ts_ns) == (1308844127, 1790516465025730117)


def test_sequence_going_backwards_is_a_gap(venue: Phemex) -> None:
    *_, backwards = feed(venue, COIN_SNAPSHOT, COIN_DELTA, COIN_BACKWARDS)
    assert backwards.gap == "BTCUSD: sequence 1308844119 after 1308844127" and not backwards.events
    # The book is dropped: further increments wait for the next snapshot.
    assert feed(venue, COIN_DELTA) == [Parsed()]
    assert feed(venue, COIN_SNAPSHOT)[0].events


def test_increment_before_snapshot_is_ignored(venue: Phemex) -> None:
    assert feed(venue, HEDGED_DELTA, COIN_DELTA) == [Parsed(), Parsed()]


def test_hedged_snapshot_and_increment(venue: Phemex) -> None:
    snapshot, delta = feed(venue, HEDGED_SNAPSHOT, HEDGED_DELTA)
    btc: dict[str, Any] = {"instrument_id": "BTC-USDT-PERP@phemex", "venue": "phemex", "native_symbol": "BTCUSDT",
                           "base": "BTC"}  # fmt: skip
    assert snapshot.events == [
        Quote(**btc, bid=Decimal("86406.5"), bid_size=Decimal("3.417"), ask=Decimal("86406.6"),
              ask_size=Decimal("0.576"), exchange_ts_ns=1790516465660305085, receipt_ts_ns=RECEIPT,
              sequence=68604886383)
    ]  # fmt: skip
    assert delta.events == [
        Quote(**btc, bid=Decimal("86406.5"), bid_size=Decimal("2.36"), ask=Decimal("86407.1"),
              ask_size=Decimal("0.902"), exchange_ts_ns=1790516465694330491, receipt_ts_ns=RECEIPT,
              sequence=68604886406)
    ]  # fmt: skip


def test_thousand_prefixed_sizes_in_base_units(venue: Phemex) -> None:
    (parsed,) = feed(venue, PEPE_SNAPSHOT)
    assert parsed.events == [
        Quote(
            instrument_id="PEPE-USDT-PERP@phemex", venue="phemex", native_symbol="u1000PEPEUSDT", base="PEPE",
            bid=Decimal("0.0112031"), bid_size=Decimal("38744000"), ask=Decimal("0.0112040"),
            ask_size=Decimal("98000000"), price_multiplier=Decimal(1000), exchange_ts_ns=1790516465709125004,
            receipt_ts_ns=RECEIPT, sequence=61110114007,
        )
    ]  # fmt: skip


def test_book_is_trimmed_to_depth(venue: Phemex) -> None:
    frame = {"depth": 2, "orderbook_p": {"asks": [["11", "1"], ["12", "1"], ["13", "1"]], "bids": [["9", "1"]]},
             "sequence": 5, "symbol": "ETHUSDT", "timestamp": 1, "type": "snapshot"}  # fmt: skip
    venue.parse(orjson.dumps(frame), RECEIPT)
    frame |= {"orderbook_p": {"asks": [["11", "0"], ["12", "0"]], "bids": []}, "sequence": 6, "type": "incremental"}
    (quote,) = venue.parse(orjson.dumps(frame), RECEIPT).events
    assert isinstance(quote, Quote)
    assert (quote.bid, quote.ask, quote.ask_size) == (Decimal(9), None, None)  # 13 fell out of the window


def test_coin_m_ticker_funding(venue: Phemex) -> None:
    (parsed,) = feed(venue, COIN_TICKER)
    assert parsed.events == [
        Funding(
            instrument_id="BTC-USD-INV-PERP@phemex", venue="phemex", native_symbol="BTCUSD", base="BTC",
            rate=Decimal("-0.00003125"), interval_h=8, next_funding_ts_ns=NEXT_8H,
            predicted_rate=Decimal("0.0000221"), mark=Decimal("86407.1234"), index=Decimal("86401.1532"),
            exchange_ts_ns=1790516465900001200, receipt_ts_ns=RECEIPT,
        )
    ]  # fmt: skip


def test_hedged_pack_funding_skips_untracked(venue: Phemex) -> None:
    (parsed,) = feed(venue, HEDGED_PACK)
    common: dict[str, Any] = {"interval_h": 8, "next_funding_ts_ns": NEXT_8H, "exchange_ts_ns": 1790516466000547000,
              "receipt_ts_ns": RECEIPT}  # fmt: skip
    assert parsed.events == [
        Funding(instrument_id="BTC-USDT-PERP@phemex", venue="phemex", native_symbol="BTCUSDT", base="BTC",
                rate=Decimal("0.00008125"), predicted_rate=Decimal("0.0001"), mark=Decimal("86408.81234567"),
                index=Decimal("86401.1532"), **common),
        Funding(instrument_id="PEPE-USDT-PERP@phemex", venue="phemex", native_symbol="u1000PEPEUSDT", base="PEPE",
                rate=Decimal("-0.00012"), predicted_rate=Decimal("-0.00009"), mark=Decimal("0.01120301"),
                index=Decimal("0.01120288"), price_multiplier=Decimal(1000), **common),
    ]  # fmt: skip  # LSKUSDT is not tracked


def test_connection_plan_subscribe_and_ping(venue: Phemex) -> None:
    (plan,) = venue.connections("wss://ws.phemex.com")
    assert plan.url == "wss://ws.phemex.com/"
    assert plan.topics == (
        "market24h", "perp_market24h_pack_p", "orderbook:BTCUSD", "orderbook:cETHUSD", "orderbook_p:BTCUSDT",
        "orderbook_p:ETHUSDT", "orderbook_p:SOLUSDT", "orderbook_p:u1000PEPEUSDT",
    )  # fmt: skip
    messages = venue.subscribe_messages(plan.topics[:3])
    assert messages == [
        '{"id":1,"method":"market24h.subscribe","params":[]}',
        '{"id":2,"method":"perp_market24h_pack_p.subscribe","params":[]}',
        '{"id":3,"method":"orderbook.subscribe","params":["BTCUSD"]}',
    ]
    assert venue.ping_message() == '{"id":4,"method":"server.ping","params":[]}'


def test_connections_respect_the_subscription_cap() -> None:
    listed = [make_instrument("phemex", f"C{n}USDT", f"C{n}", "USDT", "USDT", ContractKind.LINEAR) for n in range(25)]
    plans = Phemex(listed).connections("ws://sim/phemex")
    assert [len(p.topics) for p in plans] == [20, 6]
    assert sum(t == "perp_market24h_pack_p" for p in plans for t in p.topics) == 1


def test_inverse_instrument_without_scales_is_a_config_error() -> None:
    stray = make_instrument("phemex", "NOSCALEUSD", "NOSCALE", "USD", "NOSCALE", ContractKind.INVERSE)
    with pytest.raises(ConfigError):
        Phemex([stray])


@pytest.mark.parametrize(
    "frame",
    [
        "nope",
        "[1,2]",
        '{"book":{"asks":[[864065000]],"bids":[]},"sequence":1,"symbol":"BTCUSD","timestamp":1,"type":"snapshot"}',
        '{"orderbook_p":{"asks":"x","bids":[]},"sequence":1,"symbol":"BTCUSDT","timestamp":1,"type":"snapshot"}',
        '{"orderbook_p":{"asks":[],"bids":[]},"sequence":1,"symbol":"BTCUSDT","timestamp":1,"type":"other"}',
        '{"orderbook_p":{"asks":[["1","2"]],"bids":[]},"symbol":"BTCUSDT","timestamp":1,"type":"snapshot"}',
        '{"market24h":{"symbol":"BTCUSD","fundingRate":1},"timestamp":1}',
        '{"data":[["BTCUSDT","1"]],"fields":["symbol","openRp","x"],"method":"perp_market24h_pack_p.update",'
        '"timestamp":1}',
        '{"error":"boom","id":1,"result":null}',
    ],
)
def test_malformed_frames_raise_frame_error(venue: Phemex, frame: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


def test_simulator_speaks_the_protocol() -> None:
    instruments = load_venue_instruments("phemex")
    venue, sim = Phemex(instruments), PhemexSim(instruments)
    session = SimSession("phemex", "/", {})
    replies = [r for m in venue.subscribe_messages(["orderbook:BTCUSD", "orderbook_p:BTCUSD", "market24h"])
               for r in sim.on_message(session, m)]  # fmt: skip
    assert [venue.parse(r, RECEIPT) for r in replies] == [
        Parsed(subscribed=True), Parsed(error="code 6001: invalid argument"), Parsed(subscribed=True),
    ]  # fmt: skip
    assert session.subscriptions == {(BOOK, "BTCUSD"), (FUNDING, "BTCUSD"), (FUNDING, "cETHUSD")}
    (pong,) = sim.on_message(session, venue.ping_message() or "")
    assert orjson.loads(pong) == {"error": None, "id": 4, "result": "pong"}
    inst = next(i for i in instruments if i.native_symbol == "BTCUSD")
    frames = [
        orjson.loads(f)
        for bid in ("86400", "86399.5", "86402")
        for f in sim.book_frames(session, inst, SimQuote(Decimal(bid), Decimal(bid) + 1, Decimal(1), Decimal(2), 1))
    ]
    assert [f["type"] for f in frames] == ["snapshot", "incremental", "incremental"]
    assert frames[0]["book"]["bids"][0] == [864000000, 86400]  # priceEp, whole USD contracts
    assert [f["sequence"] for f in frames] == [68604886001, 68604886002, 68604886003]
    quotes = [e for f in frames for e in venue.parse(orjson.dumps(f), RECEIPT).events if isinstance(e, Quote)]
    assert [(q.bid, q.ask) for q in quotes] == [(Decimal(b), Decimal(b) + 1) for b in ("86400", "86399.5", "86402")]
    (ticker,) = sim.funding_frames(session, inst, SimFunding(Decimal("0.0001"), Decimal(86400), Decimal(86399), 0, 1))
    assert orjson.loads(ticker)["market24h"]["fundingRate"] == 10000  # Er at ratioScale 8
