"""Deribit: documented JSON-RPC frames in, exact values out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingest.instruments import load_venue_instruments
from ingest.simulator.base import ListingSpec, SimSession
from ingest.simulator.market import SimQuote
from ingest.simulator.venues.deribit import DeribitSim
from ingest.venues.base import FrameError
from ingest.venues.deribit import Deribit
from schemas.market import ContractKind, Funding, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.generated_specs import round_trip, specs

RECEIPT = 1_790_516_465_130_000_000
FRAMES = fixture_frames("deribit")
ACK, SUB_ACK, HEARTBEAT, TEST_REQUEST, TEST_RESULT, ERROR = FRAMES[:6]
BTC_QUOTE, BTC_TICKER, SOL_QUOTE, SOL_TICKER, ETH_QUOTE = FRAMES[6:11]


@pytest.fixture
def venue() -> Deribit:
    return Deribit(load_venue_instruments("deribit"))


def _quote_frame(instrument: str, bid: str, bid_amount: str, ask: str, ask_amount: str) -> str:
    return (
        f'{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"quote.{instrument}","data":'
        f'{{"timestamp":1790516465061,"instrument_name":"{instrument}","best_bid_price":{bid},'
        f'"best_bid_amount":{bid_amount},"best_ask_price":{ask},"best_ask_amount":{ask_amount}}}}}}}'
    )


def test_instruments_from_get_instruments() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("deribit")}
    # BTC-25DEC26 (settlement_period "month") is dropped.
    assert set(instruments) == {
        "BTC-PERPETUAL",
        "ETH-PERPETUAL",
        "BTC_USDC-PERPETUAL",
        "ETH_USDC-PERPETUAL",
        "SOL_USDC-PERPETUAL",
    }
    btc, btc_usdc = instruments["BTC-PERPETUAL"], instruments["BTC_USDC-PERPETUAL"]
    assert (btc.instrument_id, btc.quote, btc.settle, btc.kind) == (
        "BTC-USD-INV-PERP@deribit",
        "USD",
        "BTC",
        ContractKind.INVERSE,
    )
    assert (btc_usdc.instrument_id, btc_usdc.quote, btc_usdc.settle, btc_usdc.kind) == (
        "BTC-USDC-PERP@deribit",
        "USDC",
        "USDC",
        ContractKind.LINEAR,
    )
    # Amounts on the wire are already USD (inverse) or base coin (linear).
    assert {i.contract_size for i in instruments.values()} == {Decimal(1)}
    assert (btc.tick_size, btc_usdc.tick_size, instruments["SOL_USDC-PERPETUAL"].tick_size) == (
        Decimal("0.5"),
        Decimal(1),
        Decimal("0.01"),
    )
    assert {i.funding_interval_h for i in instruments.values()} == {8}


def test_connect_heartbeat_and_batched_subscribe(venue: Deribit) -> None:
    (plan,) = venue.connections("wss://www.deribit.com")
    assert plan.url == "wss://www.deribit.com/ws/api/v2"
    assert plan.topics[:2] == ("quote.BTC-PERPETUAL", "ticker.BTC-PERPETUAL.100ms")
    assert venue.on_connect() == ['{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":10}}']
    (message,) = venue.subscribe_messages(plan.topics)
    assert message.startswith(
        '{"jsonrpc":"2.0","id":2,"method":"public/subscribe","params":{"channels":'
        '["quote.BTC-PERPETUAL","ticker.BTC-PERPETUAL.100ms","quote.ETH-PERPETUAL",'
    )
    assert len(plan.topics) == 10
    many = [f"quote.X{n}" for n in range(250)]
    assert len(venue.subscribe_messages(many)) == 3  # 100 channels per request


def test_acks_and_results_produce_no_events(venue: Deribit) -> None:
    for frame in (ACK, TEST_RESULT):  # set_heartbeat "ok", public/test version
        assert venue.parse(frame, RECEIPT) == venue.parse(HEARTBEAT, RECEIPT)
    ack = venue.parse(SUB_ACK, RECEIPT)
    assert ack.subscribed and not ack.events and ack.error is None


def test_ack_missing_channels_is_reported(venue: Deribit) -> None:
    venue.subscribe_messages(["quote.BTC-PERPETUAL", "quote.NOPE-PERPETUAL"])  # request id 1
    parsed = venue.parse('{"jsonrpc":"2.0","id":1,"result":["quote.BTC-PERPETUAL"]}', RECEIPT)
    assert parsed.subscribed and parsed.error == "not subscribed: quote.NOPE-PERPETUAL"
    venue.subscribe_messages(["quote.BTC-PERPETUAL"])  # id 2, forgotten on reconnect
    venue.reset()
    assert venue.parse('{"jsonrpc":"2.0","id":2,"result":[]}', RECEIPT).error is None


def test_heartbeats(venue: Deribit) -> None:
    plain = venue.parse(HEARTBEAT, RECEIPT)
    assert not plain.events and not plain.replies and plain.error is None and not plain.subscribed
    answer = venue.parse(TEST_REQUEST, RECEIPT)
    assert not answer.events
    assert answer.replies == ['{"jsonrpc":"2.0","id":1,"method":"public/test","params":{}}']


def test_error_response(venue: Deribit) -> None:
    parsed = venue.parse(ERROR, RECEIPT)
    assert parsed.error == "code -32602: Invalid params (wrong format)"
    assert not parsed.events and not parsed.subscribed
    bare = venue.parse('{"jsonrpc":"2.0","id":9,"error":{"code":10028,"message":"too_many_requests"}}', RECEIPT)
    assert bare.error == "code 10028: too_many_requests"


def test_inverse_quote_amounts_are_usd(venue: Deribit) -> None:
    (quote,) = venue.parse(BTC_QUOTE, RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USD-INV-PERP@deribit",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="deribit",
        native_symbol="BTC-PERPETUAL",
        base="BTC",
        bid=Decimal("86401.5"),
        bid_size=Decimal(148270) / Decimal("86401.5"),
        ask=Decimal("86402"),
        ask_size=Decimal(30) / Decimal("86402"),
        exchange_ts_ns=1790516465061_000_000,
        receipt_ts_ns=RECEIPT,
    )
    assert quote.bid_size == Decimal("1.716058170286395490819025133")  # 148270 USD at 86401.5


def test_inverse_eth_quote(venue: Deribit) -> None:
    (quote,) = venue.parse(ETH_QUOTE, RECEIPT).events
    assert quote == Quote(
        instrument_id="ETH-USD-INV-PERP@deribit",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="deribit",
        native_symbol="ETH-PERPETUAL",
        base="ETH",
        bid=Decimal("3201.15"),
        bid_size=Decimal(25000) / Decimal("3201.15"),
        ask=Decimal("3201.2"),
        ask_size=Decimal(1200) / Decimal("3201.2"),
        exchange_ts_ns=1790516465300_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_linear_quote_amounts_are_base_coin(venue: Deribit) -> None:
    (quote,) = venue.parse(SOL_QUOTE, RECEIPT).events
    assert quote == Quote(
        instrument_id="SOL-USDC-PERP@deribit",
        quote="USDC",
        kind=ContractKind.LINEAR,
        venue="deribit",
        native_symbol="SOL_USDC-PERPETUAL",
        base="SOL",
        bid=Decimal("180.12"),
        bid_size=Decimal("52.3"),
        ask=Decimal("180.13"),
        ask_size=Decimal("4.1"),
        exchange_ts_ns=1790516465230_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_ticker_funding_is_the_8h_rate(venue: Deribit) -> None:
    (funding,) = venue.parse(BTC_TICKER, RECEIPT).events
    assert funding == Funding(
        instrument_id="BTC-USD-INV-PERP@deribit",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="deribit",
        native_symbol="BTC-PERPETUAL",
        base="BTC",
        rate=Decimal("0.0000211"),
        interval_h=8,
        next_funding_ts_ns=None,  # continuous accrual
        mark=Decimal("86404.51"),
        index=Decimal("86399.64"),
        exchange_ts_ns=1790516466000_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_ticker_exponent_rate_is_exact(venue: Deribit) -> None:
    (funding,) = venue.parse(SOL_TICKER, RECEIPT).events
    assert funding == Funding(
        instrument_id="SOL-USDC-PERP@deribit",
        quote="USDC",
        kind=ContractKind.LINEAR,
        venue="deribit",
        native_symbol="SOL_USDC-PERPETUAL",
        base="SOL",
        rate=Decimal("-0.000012"),
        interval_h=8,
        mark=Decimal("180.125"),
        index=Decimal("180.1187"),
        exchange_ts_ns=1790516466100_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_empty_book_side_is_absent(venue: Deribit) -> None:
    frame = _quote_frame("BTC_USDC-PERPETUAL", "null", "0", "86420", "0.25")
    (quote,) = venue.parse(frame, RECEIPT).events
    assert isinstance(quote, Quote)
    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size) == (None, None, Decimal(86420), Decimal("0.25"))
    frame = _quote_frame("BTC-PERPETUAL", "86401.5", "0", "0", "0")
    (quote,) = venue.parse(frame, RECEIPT).events
    assert isinstance(quote, Quote)
    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size) == (None, None, None, None)


@pytest.mark.parametrize(
    "frame",
    [
        _quote_frame("BTC-25DEC26", "86500", "10", "86502.5", "20"),  # not tracked
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"platform_state","data":{"locked":false}}}',
        '{"jsonrpc":"2.0","method":"some_notice","params":{}}',
    ],
)
def test_untracked_and_unknown_frames_are_skipped(venue: Deribit, frame: str) -> None:
    parsed = venue.parse(frame, RECEIPT)
    assert not parsed.events and parsed.error is None and not parsed.subscribed


@pytest.mark.parametrize(
    "frame",
    [
        "nope",
        "[1,2]",
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"quote.BTC-PERPETUAL"}}',
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"quote.BTC-PERPETUAL","data":[1]}}',
        '{"jsonrpc":"2.0","method":"subscription","params":{"data":{"instrument_name":"BTC-PERPETUAL"}}}',
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"quote.BTC-PERPETUAL",'
        '"data":{"instrument_name":"BTC-PERPETUAL","best_bid_price":1}}}',
        _quote_frame("BTC-PERPETUAL", '"abc"', "10", "2", "10"),
        _quote_frame("BTC-PERPETUAL", "true", "10", "2", "10"),
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms",'
        '"data":{"instrument_name":"BTC-PERPETUAL","funding_8h":0.0001,"timestamp":null}}}',
        '{"jsonrpc":"2.0","method":"heartbeat"}',
        '{"jsonrpc":"2.0","id":1,"error":"boom"}',
    ],
)
def test_malformed_frames_raise_frame_error(venue: Deribit, frame: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


def test_simulator_heartbeat_and_subscribe_rules() -> None:
    instruments = load_venue_instruments("deribit")
    venue, sim = Deribit(instruments), DeribitSim(instruments)
    session = SimSession("deribit", "/ws/api/v2", {})
    (ok,) = sim.on_message(session, venue.on_connect()[0])
    assert venue.parse(ok, RECEIPT) == venue.parse(HEARTBEAT, RECEIPT)
    (frame,) = venue.subscribe_messages(["quote.BTC-PERPETUAL", "ticker.BTC-PERPETUAL.raw", "quote.NOPE"])
    (ack,) = sim.on_message(session, frame)
    parsed = venue.parse(ack, RECEIPT)  # raw needs auth; unknown instruments are not subscribed
    assert parsed.subscribed and parsed.error == "not subscribed: quote.NOPE, ticker.BTC-PERPETUAL.raw"
    inst = venue.instrument("BTC-PERPETUAL")
    assert inst is not None
    quote = SimQuote(Decimal("86400"), Decimal("86400.5"), Decimal("1.5"), Decimal("0.25"), 1_790_516_465_000)
    assert len(sim.book_frames(session, inst, quote)) == 1  # the first test_request is due after 10 s
    later = SimQuote(quote.bid, quote.ask, quote.bid_size, quote.ask_size, quote.ts_ms + 10_000)
    probe, book = sim.book_frames(session, inst, later)
    (reply,) = venue.parse(probe, RECEIPT).replies
    assert venue.parse(sim.on_message(session, reply)[0], RECEIPT).error is None
    assert book == (
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"quote.BTC-PERPETUAL","data":'
        '{"timestamp":1790516475000,"instrument_name":"BTC-PERPETUAL","best_bid_price":86400,'
        '"best_bid_amount":129600,"best_ask_price":86400.5,"best_ask_amount":21600}}}'
    )


def test_generated_listing_round_trip_inverse_btc_eth_and_usdc_linear() -> None:
    instruments = round_trip(DeribitSim, Deribit, specs(420, cheap_multiplier=1))
    inverse = sorted(i.native_symbol for i in instruments if i.kind is ContractKind.INVERSE)
    assert inverse == ["BTC-PERPETUAL"]  # ETH has no inverse spec in the generated set; no other coin has one
    assert {i.quote_group for i in instruments} == {"USDC", "USD-inverse"}  # no USDT perpetuals
    assert len(instruments) > 250
    assert {i.funding_interval_h for i in instruments} == {8}  # continuous funding, reported per 8 h
    assert {i.contract_size for i in instruments} == {Decimal(1)}
    assert {i.volume_24h_quote for i in instruments} == {None}
    btc = next(i for i in instruments if i.native_symbol == "BTC-PERPETUAL")
    assert (btc.tick_size, btc.settle) == (Decimal("0.5"), "BTC")
    eth = DeribitSim.list_instrument(ListingSpec("ETH", "USD-inverse", 1, 8, Decimal("3200.25")))
    assert eth is not None and (eth.native_symbol, eth.tick_size) == ("ETH-PERPETUAL", Decimal("0.05"))
    assert DeribitSim.list_instrument(ListingSpec("SOL", "USD-inverse", 1, 8, Decimal(180))) is None
    assert DeribitSim.list_instrument(ListingSpec("PEPE", "USDC", 1000, 8, Decimal("0.0000112"))) is None


def test_whole_market_plan_is_one_connection_and_few_requests() -> None:
    instruments = round_trip(DeribitSim, Deribit, specs(420, cheap_multiplier=1))
    venue = Deribit(instruments[:40])  # more than Deribit lists
    (plan,) = venue.connections("wss://www.deribit.com")
    frames = venue.subscribe_messages(plan.topics)
    assert len(frames) == 1 and len(plan.topics) == 80
    # A subscribe costs 3,000 of 30,000 credits refilled at ~3.3/s: two a second at most.
    assert Deribit.subscribe_interval_s >= 0.5
