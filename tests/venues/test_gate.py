"""Gate USDT futures: documented frames in, exact values out."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from ingest.instruments import load_venue_instruments
from ingest.simulator.base import BOOK, FUNDING, ListingSpec, SimSession
from ingest.simulator.venues.gate import GateSim
from ingest.venues.base import FrameError, Parsed
from ingest.venues.gate import TICKERS_PATH, Gate
from schemas.market import ContractKind, Funding, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.listing_specs import generated_specs, listed, round_trip, served_round_trip

RECEIPT = 1_790_516_465_130_000_000
FRAMES = fixture_frames("gate")


@pytest.fixture
def venue() -> Gate:
    return Gate(load_venue_instruments("gate"))


def test_instruments_from_contracts_listing() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("gate")}
    assert set(instruments) == {"BTC_USDT", "ETH_USDT", "SOL_USDT", "PEPE_USDT"}  # delisting + prelaunch dropped
    btc = instruments["BTC_USDT"]
    assert (btc.instrument_id, btc.base, btc.quote, btc.settle, btc.kind) == (
        "BTC-USDT-PERP@gate",
        "BTC",
        "USDT",
        "USDT",
        ContractKind.LINEAR,
    )
    assert (btc.contract_size, btc.tick_size, btc.funding_interval_h) == (Decimal("0.0001"), Decimal("0.1"), 8)
    pepe = instruments["PEPE_USDT"]
    assert (pepe.instrument_id, pepe.price_multiplier, pepe.contract_size, pepe.funding_interval_h) == (
        "PEPE-USDT-PERP@gate",
        Decimal(1),
        Decimal(10_000_000),
        4,
    )
    assert instruments["ETH_USDT"].contract_size == Decimal("0.01")


def test_prefixed_name_counts_prefixed_units() -> None:
    row = {"name": "1000RATS_USDT", "type": "direct", "quanto_multiplier": "10", "funding_interval": 3600}
    (inst,) = Gate.parse_instruments({Gate.instrument_paths[0]: [row]})
    assert (inst.base, inst.price_multiplier, inst.contract_size, inst.funding_interval_h) == (
        "RATS",
        Decimal(1000),
        Decimal(10_000),
        1,
    )


def test_book_ticker_integer_sizes(venue: Gate) -> None:
    (quote,) = venue.parse(FRAMES[3], RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USDT-PERP@gate",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="gate",
        native_symbol="BTC_USDT",
        base="BTC",
        bid=Decimal("86410.2"),
        bid_size=Decimal("3.8211"),
        ask=Decimal("86410.3"),
        ask_size=Decimal("0.5120"),
        exchange_ts_ns=1790516465088_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=28814420117,
    )


def test_book_ticker_decimal_string_sizes_in_base_units(venue: Gate) -> None:
    (quote,) = venue.parse(FRAMES[4], RECEIPT).events
    assert quote == Quote(
        instrument_id="PEPE-USDT-PERP@gate",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="gate",
        native_symbol="PEPE_USDT",
        base="PEPE",
        bid=Decimal("0.00001121"),
        bid_size=Decimal("125000000"),
        ask=Decimal("0.00001122"),
        ask_size=Decimal("70000000"),
        exchange_ts_ns=1790516465137_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=9310447821,
    )


def test_book_ticker_empty_side_is_none_not_zero(venue: Gate) -> None:
    (quote,) = venue.parse(FRAMES[5], RECEIPT).events
    assert quote == Quote(
        instrument_id="ETH-USDT-PERP@gate",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="gate",
        native_symbol="ETH_USDT",
        base="ETH",
        bid=Decimal("3201.41"),
        bid_size=Decimal("15.20"),
        ask=None,
        ask_size=None,
        exchange_ts_ns=1790516465149_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=17220345567,
    )


def test_book_ticker_without_t_uses_envelope_time(venue: Gate) -> None:
    frame = '{"time":1790516465,"time_ms":1790516465777,"channel":"futures.book_ticker","event":"update",'
    frame += '"result":{"t":0,"u":"5","s":"SOL_USDT","b":"180.1","B":3,"a":"180.2","A":4}}'
    (quote,) = venue.parse(frame, RECEIPT).events
    assert isinstance(quote, Quote)
    assert (quote.exchange_ts_ns, quote.exchange_ts_missing, quote.sequence) == (1790516465777_000_000, False, 5)
    assert (quote.bid_size, quote.ask_size) == (Decimal(3), Decimal(4))


def test_tickers_funding_with_next_apply_and_interval(venue: Gate) -> None:
    (funding,) = venue.parse(FRAMES[6], RECEIPT).events
    assert funding == Funding(
        instrument_id="BTC-USDT-PERP@gate",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="gate",
        native_symbol="BTC_USDT",
        base="BTC",
        rate=Decimal("0.000081"),
        interval_h=8,
        next_funding_ts_ns=1790524800_000_000_000,
        predicted_rate=Decimal("0.000081"),
        mark=Decimal("86408.81"),
        index=Decimal("86399.1"),
        exchange_ts_ns=1790516466004_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_tickers_documented_shape_skips_untracked(venue: Gate) -> None:
    (funding,) = venue.parse(FRAMES[7], RECEIPT).events  # DOGE_USDT is not tracked
    assert funding == Funding(
        instrument_id="ETH-USDT-PERP@gate",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="gate",
        native_symbol="ETH_USDT",
        base="ETH",
        rate=Decimal("-0.000012"),
        interval_h=8,
        next_funding_ts_ns=None,
        predicted_rate=Decimal("-0.000012"),
        mark=Decimal("3201.42"),
        index=Decimal("3200.87"),
        exchange_ts_ns=1790516467021_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_tickers_interval_from_frame(venue: Gate) -> None:
    (funding,) = venue.parse(FRAMES[9], RECEIPT).events
    assert funding == Funding(
        instrument_id="PEPE-USDT-PERP@gate",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="gate",
        native_symbol="PEPE_USDT",
        base="PEPE",
        rate=Decimal("-0.000042"),
        interval_h=4,
        next_funding_ts_ns=1790524800_000_000_000,
        predicted_rate=Decimal("-0.000042"),
        mark=Decimal("0.00001121"),
        index=Decimal("0.0000112"),
        exchange_ts_ns=1790516470333_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_zero_next_apply_is_unknown(venue: Gate) -> None:
    frame = '{"time":1790516466,"time_ms":1790516466000,"channel":"futures.tickers","event":"update","result":'
    frame += '[{"contract":"SOL_USDT","funding_rate":"0.0001","funding_next_apply":0,"funding_interval":0}]}'
    (funding,) = venue.parse(frame, RECEIPT).events
    assert isinstance(funding, Funding)
    assert (funding.next_funding_ts_ns, funding.interval_h) == (None, 8)  # 0 means unknown; interval from listing
    assert (funding.mark, funding.predicted_rate) == (None, None)


def test_control_frames_produce_no_events(venue: Gate) -> None:
    for index in (0, 8):
        ack = venue.parse(FRAMES[index], RECEIPT)
        assert ack.subscribed and not ack.events and ack.error is None
    pong = venue.parse(FRAMES[1], RECEIPT)
    assert not pong.events and not pong.subscribed and pong.error is None and not pong.replies
    error = venue.parse(FRAMES[2], RECEIPT)
    assert error.error == "code 2: unknown currency pair DOGE2_USDT" and not error.events and not error.subscribed
    unsub = '{"time":1,"time_ms":1000,"channel":"futures.tickers","event":"unsubscribe","result":{"status":"success"}}'
    assert venue.parse(unsub, RECEIPT) == Parsed()  # acknowledged, but not a subscription
    assert venue.parse('{"channel":"futures.candlesticks","event":"update","result":[]}', RECEIPT) == Parsed()


def test_connection_headers_and_subscribe_messages(venue: Gate) -> None:
    assert Gate.ws_headers == {"X-Gate-Size-Decimal": "1"}
    (plan,) = venue.connections("wss://fx-ws.gateio.ws")
    assert (plan.label, plan.url) == ("gate-usdt-0", "wss://fx-ws.gateio.ws/v4/ws/usdt")
    assert plan.topics[:2] == ("futures.book_ticker:BTC_USDT", "futures.tickers:BTC_USDT")
    assert venue.subscribe_messages(plan.topics, now_s=1790516465) == [
        '{"time":1790516465,"channel":"futures.book_ticker","event":"subscribe",'
        '"payload":["BTC_USDT","ETH_USDT","SOL_USDT","PEPE_USDT"]}',
        '{"time":1790516465,"channel":"futures.tickers","event":"subscribe",'
        '"payload":["BTC_USDT","ETH_USDT","SOL_USDT","PEPE_USDT"]}',
    ]


def test_subscribe_batches_contracts(venue: Gate) -> None:
    topics = [f"futures.book_ticker:C{n}_USDT" for n in range(120)]
    frames = [orjson.loads(f) for f in venue.subscribe_messages(topics)]
    assert [len(f["payload"]) for f in frames] == [50, 50, 20]
    assert all(isinstance(f["time"], int) and f["event"] == "subscribe" for f in frames)


def test_ping_is_answered_by_pong() -> None:
    instruments = load_venue_instruments("gate")
    venue, sim = Gate(instruments), GateSim(instruments)
    ping = venue.ping_message()
    assert ping is not None
    assert set(orjson.loads(ping)) == {"time", "channel"} and orjson.loads(ping)["channel"] == "futures.ping"
    (pong,) = sim.on_message(SimSession("gate", "/v4/ws/usdt", {}), ping)
    assert orjson.loads(pong)["channel"] == "futures.pong"
    assert venue.parse(pong, RECEIPT).events == []


def test_simulator_acks_errors_and_silent_other_family() -> None:
    instruments = load_venue_instruments("gate")
    venue, sim = Gate(instruments), GateSim(instruments)
    session = SimSession("gate", "/v4/ws/usdt", {})
    bad = '{"time":1,"channel":"futures.book_ticker","event":"subscribe","payload":["NOPE_USDT"]}'
    (reply,) = sim.on_message(session, bad)
    assert venue.parse(reply, RECEIPT).error == "code 2: unknown currency pair NOPE_USDT"
    other = '{"time":1,"channel":"futures.tickers","event":"subscribe","payload":["BTC_USD","ETH_USDT"]}'
    (reply,) = sim.on_message(session, other)
    assert venue.parse(reply, RECEIPT).subscribed
    assert session.subscriptions == {(FUNDING, "ETH_USDT")}
    assert (BOOK, "ETH_USDT") not in session.subscriptions


@pytest.mark.parametrize(
    "frame",
    [
        "nope",
        "[1,2]",
        '{"channel":"futures.book_ticker","event":"update","result":{"t":1,"u":1,"b":"1","B":1,"a":"2","A":1}}',
        '{"channel":"futures.book_ticker","event":"update","result":[1]}',
        '{"channel":"futures.book_ticker","event":"update","result":{"t":1,"u":1,"s":"BTC_USDT","b":"x","B":1,"a":"2","A":1}}',
        '{"channel":"futures.book_ticker","event":"update","result":{"t":1,"u":"u","s":"BTC_USDT","b":"1","B":1,"a":"2","A":1}}',
        '{"channel":"futures.tickers","event":"update","result":[{"funding_rate":"0.1"}]}',
        '{"channel":"futures.tickers","event":"update","result":["BTC_USDT"]}',
        '{"channel":"futures.tickers","event":"update","result":[{"contract":"BTC_USDT","funding_rate":true}]}',
    ],
)
def test_malformed_frames_raise_frame_error(venue: Gate, frame: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


def test_volume_from_the_tickers_endpoint_and_tolerated_absence() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("gate")}
    assert instruments["BTC_USDT"].volume_24h_quote == Decimal("2422348201")
    assert instruments["SOL_USDT"].volume_24h_quote is None  # not in the tickers response
    row = {"name": "BTC_USDT", "type": "direct", "quanto_multiplier": "0.0001", "funding_interval": 28800}
    (old_file,) = Gate.parse_instruments({Gate.instrument_paths[0]: [row]})  # cached before tickers were fetched
    assert old_file.volume_24h_quote is None and Gate.instrument_paths[1] == TICKERS_PATH
    with pytest.raises(FrameError):
        Gate.parse_instruments({Gate.instrument_paths[0]: [row], TICKERS_PATH: [{"last": "1"}]})


def test_open_interest_from_total_size_contracts_at_the_mark() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("gate")}
    # BTC_USDT tickers row: total_size 51233806 contracts of 0.0001 BTC, mark_price 86408.8.
    assert instruments["BTC_USDT"].open_interest_quote == Decimal("442705169.58928")
    assert instruments["SOL_USDT"].open_interest_quote is None  # no tickers row: never guessed
    row = {"name": "BTC_USDT", "type": "direct", "quanto_multiplier": "0.0001", "funding_interval": 28800}
    ticker = {"contract": "BTC_USDT", "volume_24h_quote": "1", "total_size": "10"}  # no mark: unknown
    (no_mark,) = Gate.parse_instruments({Gate.instrument_paths[0]: [row], TICKERS_PATH: [ticker]})
    assert (no_mark.volume_24h_quote, no_mark.open_interest_quote) == (Decimal(1), None)
    with pytest.raises(FrameError):
        Gate.parse_instruments({Gate.instrument_paths[0]: [row], TICKERS_PATH: [{**ticker, "total_size": "x"}]})


def test_generated_listing_round_trip() -> None:
    specs = generated_specs()
    instruments = round_trip(GateSim, Gate, specs)
    by_symbol = {i.native_symbol: i for i in instruments}
    assert len(instruments) == len({s.base for s in specs if s.group == "USDT"}) > 350
    assert {i.quote_group for i in instruments} == {"USDT"}  # no inverse on the usdt socket, no USDC
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}
    assert by_symbol["BTC_USDT"].contract_size == Decimal("0.0001")
    pepe = by_symbol["1000PEPE_USDT"]
    # 1000PEPE at 0.0112: 100 "1000PEPE" per contract, i.e. 100,000 PEPE ($1.12).
    assert (pepe.base, pepe.price_multiplier, pepe.contract_size) == ("PEPE", Decimal(1000), Decimal(100_000))
    assert by_symbol["BONK_USDT"].contract_size == Decimal(100_000)
    assert sum(i.volume_24h_quote is None for i in instruments) > 0
    assert all((i.open_interest_quote is None) == (i.volume_24h_quote is None) for i in instruments)
    assert GateSim.list_instrument(ListingSpec("BTC", "USD-inverse", 1, 8, Decimal(86000))) is None


def test_generated_listing_rows_look_like_gate() -> None:
    (inst,) = listed(GateSim, [ListingSpec("SOL", "USDT", 1, 4, Decimal("180.41"), Decimal("123456789"))])
    listing = GateSim([inst]).listing([inst])
    (contract,) = listing[Gate.instrument_paths[0]]
    (ticker,) = listing[TICKERS_PATH]
    assert (contract["name"], contract["quanto_multiplier"]) == ("SOL_USDT", "0.01")
    assert contract["funding_interval"] == 14400
    assert (contract["order_price_round"], contract["status"], contract["in_delisting"]) == ("0.001", "trading", False)
    assert (ticker["contract"], ticker["volume_24h_quote"]) == ("SOL_USDT", "123456789")
    # A quarter of the day's volume (30864197.25) in whole contracts of 0.01 SOL at the row's mark, 300.
    assert (ticker["total_size"], ticker["mark_price"]) == ("10288065", "300")
    assert inst.open_interest_quote == Decimal("30864195")


def test_whole_market_connection_plan() -> None:
    instruments = listed(GateSim, generated_specs())
    venue = Gate(instruments)
    plans = venue.connections("wss://fx-ws.gateio.ws")
    assert all(len(p.topics) <= 150 for p in plans) and len(plans) == -(-2 * len(instruments) // 150)
    frames = [orjson.loads(f) for f in venue.subscribe_messages(plans[0].topics, now_s=1)]
    assert [(f["channel"], len(f["payload"])) for f in frames] == [
        ("futures.book_ticker", 50),
        ("futures.book_ticker", 25),
        ("futures.tickers", 50),
        ("futures.tickers", 25),
    ]


async def test_generated_listing_served_over_http_and_fetched_by_the_venue() -> None:
    parsed = await served_round_trip("gate", generated_specs(tail=120))
    assert len(parsed) > 100 and "BTC" in {i.base for i in parsed}
