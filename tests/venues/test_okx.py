"""OKX v5 SWAP: documented frames in, exact values out."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
import orjson
import pytest

from ingest.instruments import BUNDLED_DIR, load_venue_instruments
from ingest.simulator.base import BOOK, FUNDING, ListingSpec, SimSession
from ingest.simulator.market import SimFunding
from ingest.simulator.venues.okx import OkxSim
from ingest.venues.base import FrameError, load_json
from ingest.venues.okx import FUNDING_RATES, INSTRUMENTS, OPEN_INTEREST, Okx
from schemas.market import ContractKind, Funding, Instrument, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.generated_specs import round_trip, specs

RECEIPT = 1_790_516_465_130_000_000
ACK, PONG, ERROR, BTC_BBO, BTC_INV_BBO, PEPE_BBO, BTC_FUNDING, BTC_MARK, NOTICE, SOL_FUNDING, DOGE_BBO, ETH_INV_BBO = (
    range(12)
)


@pytest.fixture
def venue() -> Okx:
    return Okx(load_venue_instruments("okx"))


def frame(index: int) -> str:
    return fixture_frames("okx")[index]


def _btc_funding(**changes: object) -> Funding:
    fields: dict[str, object] = {
        "instrument_id": "BTC-USDT-PERP@okx",
        "venue": "okx",
        "native_symbol": "BTC-USDT-SWAP",
        "base": "BTC",
        "quote": "USDT",
        "kind": ContractKind.LINEAR,
        "rate": Decimal("0.0000734215067712"),
        "interval_h": 8,
        "next_funding_ts_ns": 1790524800000_000_000,
        "exchange_ts_ns": 1790516467000_000_000,
        "receipt_ts_ns": RECEIPT,
        "rate_cap": Decimal("0.00375"),  # the channel's maxFundingRate / minFundingRate
        "rate_floor": Decimal("-0.00375"),
    }
    fields.update(changes)
    return Funding(**fields)  # type: ignore[arg-type]


# -- instruments ---------------------------------------------------------------
def test_instruments_from_listing() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("okx")}
    assert set(instruments) == {
        "BTC-USDT-SWAP",
        "ETH-USDT-SWAP",
        "SOL-USDT-SWAP",
        "PEPE-USDT-SWAP",
        "BTC-USD-SWAP",
        "ETH-USD-SWAP",
    }  # the pre-open MON-USDT-SWAP is dropped
    assert instruments["BTC-USDT-SWAP"] == Instrument(
        instrument_id="BTC-USDT-PERP@okx",
        venue="okx",
        native_symbol="BTC-USDT-SWAP",
        base="BTC",
        quote="USDT",
        settle="USDT",
        kind=ContractKind.LINEAR,
        contract_size=Decimal("0.01"),
        tick_size=Decimal("0.1"),
        funding_interval_h=8,
        volume_24h_quote=Decimal("128319.2012") * Decimal("86411.3"),  # volCcy24h x last
        funding_cap=Decimal("0.00375"),  # public/funding-rate maxFundingRate / minFundingRate
        funding_floor=Decimal("-0.00375"),
    )
    assert instruments["BTC-USD-SWAP"] == Instrument(
        instrument_id="BTC-USD-INV-PERP@okx",
        venue="okx",
        native_symbol="BTC-USD-SWAP",
        base="BTC",
        quote="USD",
        settle="BTC",
        kind=ContractKind.INVERSE,
        contract_size=Decimal(100),
        tick_size=Decimal("0.1"),
        funding_interval_h=8,
        volume_24h_quote=Decimal(412_033_100),
        funding_cap=Decimal("0.00375"),
        funding_floor=Decimal("-0.00375"),
    )
    pepe = instruments["PEPE-USDT-SWAP"]
    assert (pepe.instrument_id, pepe.base, pepe.price_multiplier, pepe.contract_size) == (
        "PEPE-USDT-PERP@okx",
        "PEPE",
        Decimal(1),
        Decimal(10_000_000),
    )
    assert instruments["ETH-USD-SWAP"].contract_size == Decimal(10)
    assert instruments["ETH-USDT-SWAP"].contract_size == Decimal("0.1")


def test_listing_error_and_foreign_contract_value() -> None:
    with pytest.raises(FrameError):
        Okx.parse_instruments({Okx.instrument_paths[0]: {"code": "50011", "msg": "Too Many Requests", "data": []}})
    odd = {
        "instType": "SWAP",
        "instId": "BTC-USDT-SWAP",
        "instFamily": "BTC-USDT",
        "ctType": "linear",
        "ctVal": "10",
        "ctMult": "1",
        "ctValCcy": "USD",
        "settleCcy": "USDT",
        "tickSz": "0.1",
        "state": "live",
    }
    assert Okx.parse_instruments({Okx.instrument_paths[0]: {"code": "0", "msg": "", "data": [odd]}}) == []


# -- books -----------------------------------------------------------------------
def test_linear_bbo_sizes_in_base_units(venue: Okx) -> None:
    (quote,) = venue.parse(frame(BTC_BBO), RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USDT-PERP@okx",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="okx",
        native_symbol="BTC-USDT-SWAP",
        base="BTC",
        bid=Decimal("86411.2"),
        bid_size=Decimal("18.40"),
        ask=Decimal("86411.3"),
        ask_size=Decimal("5.12"),
        exchange_ts_ns=1790516465007_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=50183377120,
    )


def test_inverse_bbo_contracts_of_100_usd(venue: Okx) -> None:
    (quote,) = venue.parse(frame(BTC_INV_BBO), RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USD-INV-PERP@okx",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="okx",
        native_symbol="BTC-USD-SWAP",
        base="BTC",
        bid=Decimal("86405"),
        bid_size=Decimal(4800) * 100 / Decimal("86405"),
        ask=Decimal("86405.1"),
        ask_size=Decimal(2310) * 100 / Decimal("86405.1"),
        exchange_ts_ns=1790516465012_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=31270012345,
    )
    assert quote.bid_size is not None and abs(quote.bid_size - Decimal("5.555234")) < Decimal("0.000001")


def test_inverse_eth_contracts_of_10_usd(venue: Okx) -> None:
    (quote,) = venue.parse(frame(ETH_INV_BBO), RECEIPT).events
    assert quote == Quote(
        instrument_id="ETH-USD-INV-PERP@okx",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="okx",
        native_symbol="ETH-USD-SWAP",
        base="ETH",
        bid=Decimal("3201.36"),
        bid_size=Decimal(1402) * 10 / Decimal("3201.36"),
        ask=Decimal("3201.37"),
        ask_size=Decimal(915) * 10 / Decimal("3201.37"),
        exchange_ts_ns=1790516465044_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=21774300981,
    )


def test_large_contract_value_pepe(venue: Okx) -> None:
    (quote,) = venue.parse(frame(PEPE_BBO), RECEIPT).events
    assert quote == Quote(
        instrument_id="PEPE-USDT-PERP@okx",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="okx",
        native_symbol="PEPE-USDT-SWAP",
        base="PEPE",
        bid=Decimal("0.0000112348"),
        bid_size=Decimal(1_205_000_000),
        ask=Decimal("0.0000112351"),
        ask_size=Decimal(374_000_000),
        exchange_ts_ns=1790516465020_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=9876543210,
    )


def test_empty_book_side_is_none(venue: Okx) -> None:
    text = (
        '{"arg":{"channel":"bbo-tbt","instId":"SOL-USDT-SWAP"},'
        '"data":[{"asks":[],"bids":[["181.2","7","0","2"]],"ts":"5"}]}'
    )
    (quote,) = venue.parse(text, RECEIPT).events
    assert isinstance(quote, Quote)
    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size) == (Decimal("181.2"), Decimal(7), None, None)
    assert (quote.exchange_ts_ns, quote.sequence) == (5_000_000, None)


def test_untracked_instrument_and_channel_are_skipped(venue: Okx) -> None:
    assert venue.parse(frame(DOGE_BBO), RECEIPT).events == []
    other = '{"arg":{"channel":"tickers","instId":"BTC-USDT-SWAP"},"data":[{"last":"1"}]}'
    assert venue.parse(other, RECEIPT).events == []


# -- funding and mark ------------------------------------------------------------
def test_funding_rate(venue: Okx) -> None:
    (funding,) = venue.parse(frame(BTC_FUNDING), RECEIPT).events
    assert funding == _btc_funding()


def test_mark_merges_with_latest_funding(venue: Okx) -> None:
    (mark_only,) = venue.parse(frame(BTC_MARK), RECEIPT).events
    assert mark_only == _btc_funding(
        rate=None,
        next_funding_ts_ns=None,
        mark=Decimal("86408.8"),
        exchange_ts_ns=1790516467200_000_000,
        rate_cap=None,  # no funding push yet
        rate_floor=None,
    )
    venue.parse(frame(BTC_FUNDING), RECEIPT)
    (merged,) = venue.parse(frame(BTC_MARK), RECEIPT).events
    assert merged == _btc_funding(mark=Decimal("86408.8"), exchange_ts_ns=1790516467200_000_000)
    (again,) = venue.parse(frame(BTC_FUNDING), RECEIPT).events
    assert again == _btc_funding(mark=Decimal("86408.8"))  # keeps the latest mark


def test_settled_rate_is_dropped_on_later_mark(venue: Okx) -> None:
    venue.parse(frame(BTC_FUNDING), RECEIPT)
    late = '{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"markPx":"86500","ts":"1790524800001"}]}'
    (funding,) = venue.parse(late, RECEIPT).events
    assert funding == _btc_funding(
        rate=None, next_funding_ts_ns=None, mark=Decimal("86500"), exchange_ts_ns=1790524800001_000_000
    )


def test_funding_interval_from_consecutive_settlements(venue: Okx) -> None:
    (funding,) = venue.parse(frame(SOL_FUNDING), RECEIPT).events
    assert funding == Funding(
        instrument_id="SOL-USDT-PERP@okx",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="okx",
        native_symbol="SOL-USDT-SWAP",
        base="SOL",
        rate=Decimal("-0.0000412"),
        interval_h=4,
        next_funding_ts_ns=1790524800000_000_000,
        exchange_ts_ns=1790516468000_000_000,
        receipt_ts_ns=RECEIPT,
        rate_cap=Decimal("0.015"),
        rate_floor=Decimal("-0.015"),
    )


def test_funding_without_ts_or_next_time(venue: Okx) -> None:
    text = (
        '{"arg":{"channel":"funding-rate","instId":"ETH-USD-SWAP"},'
        '"data":[{"fundingRate":"0.0001","fundingTime":"1790524800000"}]}'
    )
    (funding,) = venue.parse(text, RECEIPT).events
    assert isinstance(funding, Funding)
    assert (funding.interval_h, funding.exchange_ts_ns, funding.exchange_ts_missing) == (8, RECEIPT, True)


# -- control frames --------------------------------------------------------------
def test_control_frames_produce_no_events(venue: Okx) -> None:
    ack = venue.parse(frame(ACK), RECEIPT)
    assert ack.subscribed and not ack.events and ack.error is None
    pong = venue.parse(frame(PONG), RECEIPT)
    assert pong == venue.parse(b"pong", RECEIPT) and not pong.events and not pong.subscribed
    error = venue.parse(frame(ERROR), RECEIPT)
    assert not error.events and error.error == (
        'code 60012: Invalid request: {"op": "subscribe", '
        '"argss":[{ "channel" : "bbo-tbt", "instId" : "BTC-USD-191227"}]}'
    )
    notice = venue.parse(frame(NOTICE), RECEIPT)
    assert not notice.events and notice.error is None and not notice.subscribed and notice.gap is None


def test_heartbeat_is_client_text_ping(venue: Okx) -> None:
    assert venue.ping_message() == "ping"
    assert venue.ping_interval_s is not None and venue.ping_interval_s < 30


# -- connection plan -------------------------------------------------------------
def test_subscribe_message_one_arg_per_topic(venue: Okx) -> None:
    (plan,) = venue.connections("wss://ws.okx.com:8443")
    assert plan.url == "wss://ws.okx.com:8443/ws/v5/public"
    assert plan.topics[:3] == ("bbo-tbt:BTC-USDT-SWAP", "funding-rate:BTC-USDT-SWAP", "mark-price:BTC-USDT-SWAP")
    (message,) = venue.subscribe_messages(plan.topics[:2])
    assert message == (
        '{"id":"1","op":"subscribe","args":[{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},'
        '{"channel":"funding-rate","instId":"BTC-USDT-SWAP"}]}'
    )


def test_many_instruments_batched_and_kept_together() -> None:
    base = load_venue_instruments("okx")[0]
    many = [msgspec.structs.replace(base, native_symbol=f"C{n}-USDT-SWAP") for n in range(450)]
    venue = Okx(many)
    plans = venue.connections("ws://sim/okx")
    assert [len(p.topics) for p in plans] == [600, 600, 150]
    for plan in plans:  # the three channels of one instrument share a socket
        symbols = [t.partition(":")[2] for t in plan.topics]
        assert all(symbols.count(s) == 3 for s in set(symbols))
    messages = venue.subscribe_messages(plans[0].topics)
    assert [len(orjson.loads(m)["args"]) for m in messages] == [200, 200, 200]
    assert [orjson.loads(m)["id"] for m in messages] == ["1", "2", "3"]
    assert max(len(m) for m in messages) < 64 * 1024


@pytest.mark.parametrize(
    "text",
    [
        "nope",
        "[1,2]",
        '{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"}}',
        '{"arg":{"channel":"bbo-tbt"},"data":[]}',
        '{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},"data":[1]}',
        '{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},"data":[{"asks":[],"bids":[]}]}',
        '{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},"data":[{"asks":[[]],"bids":[],"ts":"1"}]}',
        '{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},"data":[{"asks":"x","bids":[],"ts":"1"}]}',
        '{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},"data":[{"asks":[],"bids":[],"ts":"soon"}]}',
        '{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"fundingRate":"abc"}]}',
        '{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"markPx":"1"}]}',
        '{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"markPx":{"px":1},"ts":"1"}]}',
    ],
)
def test_malformed_frames_raise_frame_error(venue: Okx, text: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(text, RECEIPT)


# -- simulator -------------------------------------------------------------------
def test_simulator_protocol() -> None:
    sim = OkxSim(load_venue_instruments("okx"))
    session = SimSession("okx", "/ws/v5/public", {})
    assert sim.on_message(session, "ping") == ["pong"]
    request = (
        '{"id":"7","op":"subscribe","args":[{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},'
        '{"channel":"mark-price","instId":"BTC-USDT-SWAP"},{"channel":"bbo-tbt","instId":"NOPE-USDT-SWAP"}]}'
    )
    ack_funding, ack_mark, error = (orjson.loads(f) for f in sim.on_message(session, request))
    assert (ack_funding["id"], ack_funding["event"], ack_mark["arg"]["channel"]) == ("7", "subscribe", "mark-price")
    assert (error["event"], error["code"]) == ("error", "60018")
    assert session.subscriptions == {(FUNDING, "BTC-USDT-SWAP")}
    inst = sim.by_native["BTC-USDT-SWAP"]
    funding = SimFunding(
        Decimal("0.0001"), Decimal("86400.1"), Decimal("86399.9"), 1_790_524_800_000, 1_790_516_466_000
    )
    first = sim.funding_frames(session, inst, funding)
    assert [orjson.loads(f)["arg"]["channel"] for f in first] == ["funding-rate", "mark-price"]
    data = orjson.loads(first[0])["data"][0]
    assert (data["fundingTime"], data["nextFundingTime"]) == ("1790524800000", "1790553600000")
    later = SimFunding(Decimal("0.0002"), Decimal("86400.2"), Decimal("86400"), 1_790_524_800_000, 1_790_516_467_000)
    assert [orjson.loads(f)["arg"]["channel"] for f in sim.funding_frames(session, inst, later)] == ["mark-price"]
    sim.on_message(session, '{"op":"unsubscribe","args":[{"channel":"mark-price","instId":"BTC-USDT-SWAP"}]}')
    assert session.subscriptions == {(FUNDING, "BTC-USDT-SWAP")}
    assert BOOK not in {kind for kind, _ in session.subscriptions}


# -- whole market: intervals, volumes, frame size, generated listings -----------
def test_listing_intervals_from_funding_any_and_volumes_from_tickers() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("okx")}
    assert {s: i.funding_interval_h for s, i in instruments.items()} == {
        "BTC-USDT-SWAP": 8,
        "ETH-USDT-SWAP": 8,
        "SOL-USDT-SWAP": 8,
        "PEPE-USDT-SWAP": 4,  # fundingTime 02:00, nextFundingTime 06:00
        "BTC-USD-SWAP": 8,
        "ETH-USD-SWAP": 8,
    }
    assert instruments["BTC-USDT-SWAP"].volume_24h_quote == Decimal("128319.2012") * Decimal("86411.3")
    assert instruments["BTC-USD-SWAP"].volume_24h_quote == Decimal(4120331 * 100)  # contracts of 100 USD
    listing = load_json((BUNDLED_DIR / "okx.json").read_bytes())
    old = Okx.parse_instruments({INSTRUMENTS: listing[INSTRUMENTS]})
    assert [(i.funding_interval_h, i.volume_24h_quote) for i in old] == [(8, None)] * 6
    with pytest.raises(FrameError, match="50011"):
        Okx.parse_instruments(listing | {FUNDING_RATES: {"code": "50011", "msg": "Too Many Requests", "data": []}})


def test_open_interest_from_the_one_public_open_interest_call() -> None:
    listing = load_json((BUNDLED_DIR / "okx.json").read_bytes())
    response = load_json((Path(__file__).parents[1] / "fixtures" / "open_interest" / "okx.json").read_bytes())
    instruments = {i.native_symbol: i for i in Okx.parse_instruments(listing | {OPEN_INTEREST: response})}
    # Linear: oi 2871045.12 contracts of 0.01 BTC at the ticker's last 86411.3 (USDT, not oiUsd).
    assert instruments["BTC-USDT-SWAP"].open_interest_quote == Decimal("2480907411.77856")
    assert instruments["BTC-USD-SWAP"].open_interest_quote == Decimal(612_231_000)  # 6122310 contracts of 100 USD
    assert instruments["ETH-USDT-SWAP"].open_interest_quote is None  # empty oi
    assert instruments["SOL-USDT-SWAP"].open_interest_quote is None  # no row
    assert all(i.open_interest_quote is None for i in load_venue_instruments("okx"))  # file without the call
    assert OPEN_INTEREST in Okx.optional_instrument_paths
    with pytest.raises(FrameError, match="50011"):
        Okx.parse_instruments(listing | {OPEN_INTEREST: {"code": "50011", "msg": "Too Many Requests", "data": []}})


def test_subscribe_requests_stay_under_the_frame_size_cap() -> None:
    base = load_venue_instruments("okx")[0]
    long_ids = [msgspec.structs.replace(base, native_symbol=f"{'X' * 120}{n}-USDT-SWAP") for n in range(300)]
    venue = Okx(long_ids)
    (plan, *_rest) = venue.connections("ws://sim/okx")
    messages = venue.subscribe_messages(plan.topics)
    assert all(len(m) < 33 * 1024 for m in messages)  # the args of one request: at most 64 KB
    assert len(messages) > 3 and sum(len(orjson.loads(m)["args"]) for m in messages) == len(plan.topics)
    assert [orjson.loads(m)["args"][0] for m in messages[:1]] == [
        {"channel": "bbo-tbt", "instId": long_ids[0].native_symbol}
    ]


def test_generated_listing_round_trip_covers_groups_and_intervals() -> None:
    assert len(round_trip(OkxSim, Okx, specs(420))) < 700  # 1000x asks are refused
    instruments = round_trip(OkxSim, Okx, specs(420, cheap_multiplier=1))
    assert len(instruments) > 800
    assert {i.quote_group for i in instruments} == {"USDT", "USDC", "USD-inverse"}
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}
    by_native = {i.native_symbol: i for i in instruments}
    assert by_native["BTC-USDT-SWAP"].contract_size == Decimal("0.01")
    assert by_native["PEPE-USDT-SWAP"].contract_size == Decimal(10_000_000)
    inverse = {i.base: i.contract_size for i in instruments if i.kind is ContractKind.INVERSE}
    assert inverse.pop("BTC") == Decimal(100) and set(inverse.values()) == {Decimal(10)}
    assert by_native["BTC-USDT-SWAP"].volume_24h_quote == Decimal(10_000)
    # A quarter of 10,000 USDT in whole contracts of 0.01 BTC at the simulated last (10,000): 25 contracts.
    assert by_native["BTC-USDT-SWAP"].open_interest_quote == Decimal(2500)
    assert OkxSim.list_instrument(ListingSpec("PEPE", "USDT", 1000, 8, Decimal("0.0000112"))) is None
    # The simulated funding pushes carry the listed interval, as the live channel does.
    sim, venue = OkxSim(instruments), Okx(instruments)
    hourly = next(i for i in instruments if i.funding_interval_h == 1)
    session = SimSession("okx", "/ws/v5/public", {})
    sim.on_message(session, venue.subscribe_messages([f"funding-rate:{hourly.native_symbol}"])[0])
    funding = SimFunding(Decimal("0.0001"), Decimal(1), Decimal(1), 1_790_517_600_000, 1_790_516_466_000)
    (event,) = venue.parse(sim.funding_frames(session, hourly, funding)[0], RECEIPT).events
    assert isinstance(event, Funding) and event.interval_h == 1
