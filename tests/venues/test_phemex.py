"""Phemex COIN-M (scaled integers) and hedged USDT-M (decimal strings): documented frames in, exact values out."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest

from ingest.instruments import load_venue_instruments
from ingest.simulator.base import BOOK, FUNDING, ListingSpec, SimSession
from ingest.simulator.market import SimFunding, SimQuote
from ingest.simulator.venues.phemex import PhemexSim
from ingest.venues.base import FrameError, Parsed, make_instrument
from ingest.venues.phemex import BOOK_FRESH_NS, BOOK_SEEN, SCALES, TICKERS_PATH, Phemex, Scales
from plumbing.errors import ConfigError
from schemas.market import ContractKind, Funding, Instrument, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.listing_specs import generated_specs, listed, round_trip, served_round_trip

RECEIPT = 1_790_516_465_130_000_000
FRAMES = fixture_frames("phemex")
ACK, PONG, REFUSED = 0, 1, 2
COIN_SNAPSHOT, COIN_DELTA, COIN_BACKWARDS = 3, 4, 5
HEDGED_SNAPSHOT, HEDGED_DELTA, PEPE_SNAPSHOT = 6, 7, 8
COIN_TICKER, HEDGED_PACK, TICK, LIMIT, PRICED_PACK = 9, 10, 11, 12, 13
NEXT_8H = 1_790_524_800_000_000_000  # 2026-09-28 00:00 UTC, the settlement after the frames' times


@pytest.fixture
def venue() -> Phemex:
    return Phemex(load_venue_instruments("phemex"))


@pytest.fixture(autouse=True)
def _no_books_seen() -> Iterator[None]:
    """The books-seen registry is process-wide: each test starts without one."""
    BOOK_SEEN.clear()
    yield
    BOOK_SEEN.clear()


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
        volume_24h_quote=Decimal("10113220.51"),
        open_interest_quote=Decimal("3374.5706722"),  # openInterestRv 301220 (1000PEPE units) x markRp 0.01120301
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
            quote="USD", kind=ContractKind.INVERSE,
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
                           "base": "BTC", "quote": "USDT", "kind": ContractKind.LINEAR}  # fmt: skip
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
            quote="USDT", kind=ContractKind.LINEAR,
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
            quote="USD", kind=ContractKind.INVERSE,
            rate=Decimal("-0.00003125"), interval_h=8, next_funding_ts_ns=NEXT_8H,
            predicted_rate=Decimal("0.0000221"), mark=Decimal("86407.1234"), index=Decimal("86401.1532"),
            exchange_ts_ns=1790516465900001200, receipt_ts_ns=RECEIPT,
        )
    ]  # fmt: skip


def test_hedged_pack_funding_skips_untracked(venue: Phemex) -> None:
    (parsed,) = feed(venue, HEDGED_PACK)
    common: dict[str, Any] = {"interval_h": 8, "next_funding_ts_ns": NEXT_8H, "exchange_ts_ns": 1790516466000547000,
              "receipt_ts_ns": RECEIPT, "quote": "USDT", "kind": ContractKind.LINEAR}  # fmt: skip
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


def test_pack_prices_quote_symbols_without_a_streaming_book(venue: Phemex) -> None:
    (parsed,) = feed(venue, PRICED_PACK)
    quotes = [e for e in parsed.events if isinstance(e, Quote)]
    assert [(q.native_symbol, q.bid, q.ask, q.bid_size, q.ask_size) for q in quotes] == [
        ("BTCUSDT", Decimal("86410.2"), Decimal("86410.3"), None, None),  # the pack has no sizes
        ("u1000PEPEUSDT", Decimal("0.0112011"), Decimal("0.0112022"), None, None),
    ]
    assert quotes[1].price_multiplier == 1000 and quotes[0].exchange_ts_ns == 1790516467000547000
    assert sum(isinstance(e, Funding) for e in parsed.events) == 2


def test_a_streaming_book_silences_the_pack_prices_on_every_socket(venue: Phemex) -> None:
    book_socket = Phemex(load_venue_instruments("phemex"))  # books and the pack ride on different sockets
    book_socket.parse(FRAMES[HEDGED_SNAPSHOT], RECEIPT)  # BTCUSDT's book
    (parsed,) = feed(venue, PRICED_PACK)
    assert [e.native_symbol for e in parsed.events if isinstance(e, Quote)] == ["u1000PEPEUSDT"]
    later = venue.parse(FRAMES[PRICED_PACK], RECEIPT + BOOK_FRESH_NS + 1)  # the book went quiet
    assert [e.native_symbol for e in later.events if isinstance(e, Quote)] == ["BTCUSDT", "u1000PEPEUSDT"]
    replayed = venue.parse(FRAMES[PRICED_PACK], RECEIPT - 1)  # a replay from before that book frame
    assert [e.native_symbol for e in replayed.events if isinstance(e, Quote)] == ["BTCUSDT", "u1000PEPEUSDT"]


def test_volume_from_the_all_tickers_listing() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("phemex")}
    assert instruments["BTCUSDT"].volume_24h_quote == Decimal("762103311.2231")
    assert instruments["ETHUSDT"].volume_24h_quote is None and instruments["BTCUSD"].volume_24h_quote is None
    # openInterestRv is BTC (ccxt's sample beside volumeRq), valued at markRp.
    assert instruments["BTCUSDT"].open_interest_quote == Decimal("109638879.939334367499443")
    assert instruments["ETHUSDT"].open_interest_quote is None and instruments["BTCUSD"].open_interest_quote is None
    assert Phemex.instrument_paths == ("/public/products", TICKERS_PATH)
    with pytest.raises(FrameError):
        Phemex.parse_instruments(
            {"/public/products": {"code": 0, "data": {"products": []}}, TICKERS_PATH: {"result": [{"x": 1}]}}
        )


def test_whole_market_fits_five_sockets_of_twenty() -> None:
    instruments = round_trip(PhemexSim, Phemex, generated_specs(), ordered=False)  # parsing loads the scales
    plans = Phemex(instruments).connections("wss://ws.phemex.com")
    assert [len(p.topics) for p in plans] == [20] * 5  # 5 connections per client, 20 subscriptions each
    topics = [t for p in plans for t in p.topics]
    assert set(topics[:2]) == {"market24h", "perp_market24h_pack_p"} and len(set(topics)) == 100
    books = {t.partition(":")[2] for t in topics if ":" in t}
    coin_m = {i.native_symbol for i in instruments if i.kind is ContractKind.INVERSE}
    assert coin_m <= books  # every COIN-M book first: the pack has no COIN-M prices
    by_volume = sorted(
        (i for i in instruments if i.kind is ContractKind.LINEAR and i.volume_24h_quote is not None),
        key=lambda i: -(i.volume_24h_quote or 0),
    )
    assert {i.native_symbol for i in by_volume[: 98 - len(coin_m)]} == books - coin_m


def test_generated_listing_round_trip() -> None:
    specs = generated_specs()
    instruments = round_trip(PhemexSim, Phemex, specs, ordered=False)  # COIN-M products, then hedged
    by_symbol = {i.native_symbol: i for i in instruments}
    assert len(instruments) > 400
    assert {i.quote_group for i in instruments} == {"USDT", "USDC", "USD-inverse"}
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}
    assert {i.native_symbol for i in instruments if i.kind is ContractKind.INVERSE} == {
        "BTCUSD", "cETHUSD", "cSOLUSD", "cXRPUSD", "cDOGEUSD",
    }  # fmt: skip
    assert by_symbol["cXRPUSD"].tick_size == Decimal("0.0001")  # COIN-M prices are multiples of 10^-4
    pepe = by_symbol["u1000PEPEUSDT"]
    assert (pepe.base, pepe.price_multiplier, pepe.contract_size) == ("PEPE", Decimal(1000), Decimal(1000))
    assert by_symbol["BONKUSDT"].price_multiplier == 1 and SCALES["cSOLUSD"] == Scales(price=4, ratio=8)


def test_generated_products_look_like_phemex() -> None:
    specs = [ListingSpec("PEPE", "USDT", 1000, 4, Decimal("0.0000112"), Decimal(777))]
    (inst,) = listed(PhemexSim, specs)
    listing = PhemexSim([inst]).listing([inst])
    (row,) = listing["/public/products"]["data"]["perpProductsV2"]
    assert (row["symbol"], row["baseCurrency"], row["tickSize"], row["fundingInterval"]) == (
        "u1000PEPEUSDT", "1000 PEPE", "0.0000001", 14400,
    )  # fmt: skip
    assert listing[TICKERS_PATH]["result"][0]["turnoverRv"] == "777"


def test_simulator_pack_carries_prices_of_symbols_without_books() -> None:
    instruments = load_venue_instruments("phemex")
    venue, sim = Phemex(instruments), PhemexSim(instruments)
    session = SimSession("phemex", "/", {})
    for message in venue.subscribe_messages(["perp_market24h_pack_p", "orderbook_p:BTCUSDT"]):
        sim.on_message(session, message)
    eth, btc = (next(i for i in instruments if i.native_symbol == s) for s in ("ETHUSDT", "BTCUSDT"))
    quote = SimQuote(Decimal("3201.4"), Decimal("3201.5"), Decimal(1), Decimal(2), 1_000)
    assert sim.book_frames(session, eth, quote) == []  # no funding seen yet: no complete pack row
    (ticker,) = sim.funding_frames(session, eth, SimFunding(Decimal("0.0001"), Decimal(3201), Decimal(3200), 0, 1_000))
    (row,) = orjson.loads(ticker)["data"]
    assert row[-2:] == ["3201.4", "3201.5"]
    later = SimQuote(Decimal("3202.4"), Decimal("3202.5"), Decimal(1), Decimal(2), 2_000)
    (pack,) = sim.book_frames(session, eth, later)
    assert sim.book_frames(session, eth, later) == []  # once a second per symbol
    (priced,) = [e for e in venue.parse(pack, RECEIPT).events if isinstance(e, Quote)]
    assert (priced.bid, priced.ask, priced.bid_size) == (Decimal("3202.4"), Decimal("3202.5"), None)
    (book,) = sim.book_frames(session, btc, quote)
    assert "orderbook_p" in orjson.loads(book)  # a subscribed book streams as a book


async def test_generated_listing_served_over_http_and_fetched_by_the_venue() -> None:
    parsed = await served_round_trip("phemex", generated_specs(tail=120))
    assert len(parsed) > 100 and "BTC" in {i.base for i in parsed}
