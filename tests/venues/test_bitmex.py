"""BitMEX: documented frames in, exact values out."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ingest.instruments import BUNDLED_DIR, load_venue_instruments
from ingest.simulator.base import BOOK, FUNDING, ListingSpec, SimSession
from ingest.simulator.market import SimFunding
from ingest.simulator.venues.bitmex import BitmexSim
from ingest.venues.base import FrameError, Parsed, load_json
from ingest.venues.bitmex import Bitmex
from schemas.market import ContractKind, Funding, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.listing_specs import generated_specs, listed, round_trip, served_round_trip

RECEIPT = 1_790_516_465_130_000_000
FRAMES = fixture_frames("bitmex")


@pytest.fixture
def venue() -> Bitmex:
    return Bitmex(load_venue_instruments("bitmex"))


def test_instruments_from_active_listing() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("bitmex")}
    # ETHUSD (quanto), XBTZ26 (dated future) and .BXBT (index) are dropped.
    assert set(instruments) == {"XBTUSD", "XBTUSDT", "ETHUSDT", "SOLUSDT"}
    xbtusd = instruments["XBTUSD"]
    assert (xbtusd.instrument_id, xbtusd.base, xbtusd.quote, xbtusd.settle, xbtusd.kind) == (
        "BTC-USD-INV-PERP@bitmex",
        "BTC",
        "USD",
        "BTC",
        ContractKind.INVERSE,
    )
    assert (xbtusd.contract_size, xbtusd.tick_size, xbtusd.funding_interval_h) == (Decimal(1), Decimal("0.1"), 8)
    xbtusdt = instruments["XBTUSDT"]
    assert (xbtusdt.instrument_id, xbtusdt.settle, xbtusdt.kind, xbtusdt.contract_size) == (
        "BTC-USDT-PERP@bitmex",
        "USDT",
        ContractKind.LINEAR,
        Decimal("0.000001"),
    )
    assert instruments["ETHUSDT"].contract_size == Decimal("0.00001")
    assert instruments["SOLUSDT"].contract_size == Decimal("0.0001")


def test_subscribe_batches_ten_topics_on_realtime(venue: Bitmex) -> None:
    (plan,) = venue.connections("wss://ws.bitmex.com")
    assert plan.url == "wss://ws.bitmex.com/realtime"
    assert plan.topics[:2] == ("quote:XBTUSD", "instrument:XBTUSD")
    messages = venue.subscribe_messages([f"quote:S{n}" for n in range(12)])
    assert len(messages) == 2
    assert messages[1] == '{"op":"subscribe","args":["quote:S10","quote:S11"]}'
    assert (venue.ping_message(), venue.ping_interval_s, venue.subscribe_after_first_frame) == ("ping", 5.0, True)


def test_control_frames_produce_no_events(venue: Bitmex) -> None:
    welcome, ack, pong, error = (venue.parse(f, RECEIPT) for f in FRAMES[:4])
    assert welcome == Parsed()
    assert ack.subscribed and not ack.events and ack.error is None
    assert pong == Parsed()
    assert venue.parse(b"pong", RECEIPT) == Parsed()
    assert error.error == "status 400: Unknown table: quotes" and not error.events


def test_failed_subscribe_is_an_error(venue: Bitmex) -> None:
    parsed = venue.parse('{"success":false,"subscribe":"quote:NOPE","error":"Unknown symbol","request":{}}', RECEIPT)
    assert parsed.error == "subscribe quote:NOPE failed: Unknown symbol" and not parsed.subscribed


def test_quote_partial_and_insert_inverse_sizes(venue: Bitmex) -> None:
    (partial,) = venue.parse(FRAMES[4], RECEIPT).events
    assert partial == Quote(
        instrument_id="BTC-USD-INV-PERP@bitmex",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="bitmex",
        native_symbol="XBTUSD",
        base="BTC",
        bid=Decimal(86405),
        bid_size=Decimal(388100) / Decimal(86405),
        ask=Decimal("86405.5"),
        ask_size=Decimal(9600) / Decimal("86405.5"),
        exchange_ts_ns=1790516465102_000_000,
        receipt_ts_ns=RECEIPT,
    )
    (insert,) = venue.parse(FRAMES[5], RECEIPT).events
    # Inverse: contracts of 1 USD, so BTC = contracts / price.
    assert insert == Quote(
        instrument_id="BTC-USD-INV-PERP@bitmex",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="bitmex",
        native_symbol="XBTUSD",
        base="BTC",
        bid=Decimal("86405.5"),
        bid_size=Decimal(405300) / Decimal("86405.5"),
        ask=Decimal(86406),
        ask_size=Decimal(12800) / Decimal(86406),
        exchange_ts_ns=1790516465530_000_000,
        receipt_ts_ns=RECEIPT,
    )
    assert isinstance(insert, Quote) and insert.bid_size is not None
    assert insert.bid_size.quantize(Decimal("0.00000001")) == Decimal("4.69067363")  # 405300 USD at 86405.5


def test_linear_quote_sizes_in_btc(venue: Bitmex) -> None:
    (quote,) = venue.parse(FRAMES[6], RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USDT-PERP@bitmex",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="bitmex",
        native_symbol="XBTUSDT",
        base="BTC",
        bid=Decimal("86431.5"),
        bid_size=Decimal("1.5"),
        ask=Decimal(86432),
        ask_size=Decimal("0.2374"),
        exchange_ts_ns=1790516465611_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_untracked_symbol_and_missing_side(venue: Bitmex) -> None:
    assert venue.parse(FRAMES[11], RECEIPT).events == []  # ETHUSD quanto is not tracked
    (quote,) = venue.parse(FRAMES[12], RECEIPT).events
    assert quote == Quote(
        instrument_id="SOL-USDT-PERP@bitmex",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="bitmex",
        native_symbol="SOLUSDT",
        base="SOL",
        bid=Decimal("180.35"),
        bid_size=Decimal("2.5"),
        ask=None,
        ask_size=None,
        exchange_ts_ns=1790516465812_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_instrument_partial_then_merged_updates(venue: Bitmex) -> None:
    (partial,) = venue.parse(FRAMES[7], RECEIPT).events
    assert partial == Funding(
        instrument_id="BTC-USD-INV-PERP@bitmex",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="bitmex",
        native_symbol="XBTUSD",
        base="BTC",
        rate=Decimal("0.0001"),
        interval_h=8,
        next_funding_ts_ns=1790539200_000_000_000,
        predicted_rate=Decimal("0.000087"),
        mark=Decimal("86402.37"),
        index=Decimal("86398.4"),
        exchange_ts_ns=1790516460_000_000_000,
        receipt_ts_ns=RECEIPT,
    )
    (mark,) = venue.parse(FRAMES[8], RECEIPT).events  # only mark/index changed; rates come from the image
    assert mark == Funding(
        instrument_id="BTC-USD-INV-PERP@bitmex",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="bitmex",
        native_symbol="XBTUSD",
        base="BTC",
        rate=Decimal("0.0001"),
        interval_h=8,
        next_funding_ts_ns=1790539200_000_000_000,
        predicted_rate=Decimal("0.000087"),
        mark=Decimal("86404.12"),
        index=Decimal("86400.15"),
        exchange_ts_ns=1790516466_000_000_000,
        receipt_ts_ns=RECEIPT,
    )
    assert venue.parse(FRAMES[9], RECEIPT).events == []  # lastPrice-only update: nothing funding-related
    (rollover,) = venue.parse(FRAMES[10], RECEIPT).events
    assert rollover == Funding(
        instrument_id="BTC-USD-INV-PERP@bitmex",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="bitmex",
        native_symbol="XBTUSD",
        base="BTC",
        rate=Decimal("0.000087"),
        interval_h=8,
        next_funding_ts_ns=1790568000_000_000_000,
        predicted_rate=Decimal("0.000064"),
        mark=Decimal("86404.12"),
        index=Decimal("86400.15"),
        exchange_ts_ns=1790539200_000_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_update_before_partial_and_reset(venue: Bitmex) -> None:
    (funding,) = venue.parse(FRAMES[8], RECEIPT).events
    assert isinstance(funding, Funding)
    assert (funding.rate, funding.mark, funding.next_funding_ts_ns) == (None, Decimal("86404.12"), None)
    venue.parse(FRAMES[7], RECEIPT)
    venue.reset()
    (after_reset,) = venue.parse(FRAMES[8], RECEIPT).events
    assert isinstance(after_reset, Funding) and after_reset.rate is None


def test_simulator_handshake_and_heartbeat() -> None:
    instruments = load_venue_instruments("bitmex")
    sim, venue = BitmexSim(instruments), Bitmex(instruments)
    session = SimSession("bitmex", "/realtime", {})
    assert venue.parse(sim.on_open(session)[0], RECEIPT) == Parsed()
    assert sim.on_message(session, "ping") == ["pong"]
    acks = sim.on_message(session, '{"op":"subscribe","args":["quote:XBTUSD","instrument:XBTUSD","quotes:XBTUSD"]}')
    parsed = [venue.parse(a, RECEIPT) for a in acks]
    assert [p.subscribed for p in parsed] == [True, True, False]
    assert parsed[2].error == "status 400: Unknown table: quotes"
    assert session.subscriptions == {(BOOK, "XBTUSD"), (FUNDING, "XBTUSD")}
    inst = next(i for i in instruments if i.native_symbol == "XBTUSD")
    first = sim.funding_frames(session, inst, SimFunding(Decimal("0.0001"), Decimal(86400), Decimal(86399), 1, 2))
    second = sim.funding_frames(session, inst, SimFunding(Decimal("0.0001"), Decimal(86401), Decimal(86399), 1, 3))
    assert '"action":"partial"' in first[0] and '"action":"update"' in second[0]
    assert "fundingRate" not in second[0]  # only changed fields travel in updates
    venue.parse(first[0], RECEIPT)
    (funding,) = venue.parse(second[0], RECEIPT).events
    assert isinstance(funding, Funding) and (funding.rate, funding.mark) == (Decimal("0.0001"), Decimal(86401))


@pytest.mark.parametrize(
    "frame",
    [
        '{"table":"quote","action":"insert","data":[{"symbol":"XBTUSD","bidPrice":1}]}',  # no timestamp
        '{"table":"quote","action":"insert","data":[{"timestamp":"yesterday","symbol":"XBTUSD"}]}',
        '{"table":"quote","action":"insert","data":[{"timestamp":5,"symbol":"XBTUSD"}]}',
        '{"table":"quote","action":"insert","data":{"symbol":"XBTUSD"}}',
        '{"table":"quote","action":"insert","data":[{"symbol":["XBTUSD"]}]}',
        '{"table":"instrument","action":"update","data":[{"markPrice":1}]}',
        '{"table":"instrument","action":"update","data":[{"symbol":"XBTUSD","markPrice":"abc"}]}',
        '{"table":"quote","action":"insert","data":[1]}',
        "[1,2]",
        "nope",
    ],
)
def test_malformed_frames_raise_frame_error(venue: Bitmex, frame: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


def test_generated_listing_round_trip() -> None:
    specs = generated_specs()
    instruments = round_trip(BitmexSim, Bitmex, specs)
    by_symbol = {i.native_symbol: i for i in instruments}
    # USDT linear for every base, XBTUSD the only inverse, no USDC.
    assert len(instruments) == len({s.base for s in specs if s.group == "USDT"}) + 1 > 350
    assert {i.quote_group for i in instruments} == {"USDT", "USD-inverse"}
    assert by_symbol["XBTUSD"].contract_size == 1 and by_symbol["XBTUSD"].base == "BTC"
    assert by_symbol["XBTUSDT"].contract_size == Decimal("0.000001")
    pepe, mog = by_symbol["1000PEPEUSDT"], by_symbol["1000000MOGUSDT"]
    assert (pepe.base, pepe.price_multiplier, pepe.contract_size) == ("PEPE", Decimal(1000), Decimal(1000))
    assert (mog.base, mog.price_multiplier) == ("MOG", Decimal(1_000_000))
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}
    assert any(i.volume_24h_quote is None for i in instruments)
    assert by_symbol["ETHUSDT"].volume_24h_quote == next(
        s.volume_24h_quote for s in specs if (s.base, s.group) == ("ETH", "USDT")
    )


def test_generated_listing_rows_look_like_bitmex() -> None:
    (xbtusd,) = listed(BitmexSim, [ListingSpec("BTC", "USD-inverse", 1, 8, Decimal("86412.3"), Decimal(9))])
    (row,) = BitmexSim([xbtusd]).listing([xbtusd])["/api/v1/instrument/active"]
    assert (row["typ"], row["multiplier"], row["settlCurrency"], row["fundingInterval"]) == (
        "FFWCSX",
        -100_000_000,
        "XBt",
        "2000-01-01T08:00:00.000Z",
    )
    assert BitmexSim.list_instrument(ListingSpec("ETH", "USD-inverse", 1, 8, Decimal(3200))) is None  # ETHUSD: quanto
    assert BitmexSim.list_instrument(ListingSpec("ETH", "USDC", 1, 8, Decimal(3200))) is None
    assert BitmexSim.list_instrument(ListingSpec("PEPE", "USDT", 7, 8, Decimal("0.00001"))) is None


def test_listing_volume_is_foreign_notional() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("bitmex")}
    assert instruments["XBTUSD"].volume_24h_quote == Decimal("412345678")
    assert instruments["SOLUSDT"].volume_24h_quote is None  # absent from the row


def test_open_interest_counts_contracts() -> None:
    listing = load_json((BUNDLED_DIR / "bitmex.json").read_bytes())
    rows = {row["symbol"]: row for row in listing[Bitmex.instrument_paths[0]]}
    # instrument/active rows as documented: openInterest in contracts, openValue in the settle unit.
    rows["XBTUSDT"] |= {"openInterest": 2210340000, "openValue": 191039951440800}
    rows["XBTUSD"] |= {"openInterest": 412003300, "openValue": 476838190000}
    parsed = {i.native_symbol: i for i in Bitmex.parse_instruments({Bitmex.instrument_paths[0]: list(rows.values())})}
    # XBTUSDT: 2,210,340,000 contracts of 1e-6 XBT at markPrice 86430.12 USDT.
    assert parsed["XBTUSDT"].open_interest_quote == Decimal("191039951.4408")
    assert parsed["XBTUSD"].open_interest_quote == Decimal(412003300)  # contracts of 1 USD
    assert parsed["SOLUSDT"].open_interest_quote is None  # absent from the row


def test_whole_market_connection_plan() -> None:
    instruments = listed(BitmexSim, generated_specs())
    plans = Bitmex(instruments).connections("wss://ws.bitmex.com")
    # 2 topics per symbol, 500 per socket: 387 symbols on 2 sockets (opening sockets is what BitMEX limits).
    assert [len(p.topics) for p in plans] == [500, 2 * len(instruments) - 500]
    messages = Bitmex(instruments).subscribe_messages(plans[0].topics)
    assert len(messages) == 50 and all(len(json.loads(m)["args"]) == 10 for m in messages)


async def test_generated_listing_served_over_http_and_fetched_by_the_venue() -> None:
    parsed = await served_round_trip("bitmex", generated_specs(tail=120))
    assert len(parsed) > 100 and "BTC" in {i.base for i in parsed}
