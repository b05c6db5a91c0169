"""Bybit v5 linear + inverse: documented frames in, exact values out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ingest.instruments import BUNDLED_DIR, load_venue_instruments
from ingest.simulator.base import BOOK, FUNDING, ListingSpec, SimSession
from ingest.simulator.market import SimFunding, SimQuote
from ingest.simulator.venues.bybit import BybitSim
from ingest.venues.base import FrameError, Parsed, load_json
from ingest.venues.bybit import INVERSE_LISTING, INVERSE_TICKERS, LINEAR_LISTING, LINEAR_TICKERS, Bybit, pack
from schemas.market import ContractKind, Funding, Quote
from tests.venues.conftest import fixture_frames
from tests.venues.generated_specs import round_trip, specs
from tests.venues.listing_specs import listed

RECEIPT = 1_790_516_465_130_000_000
FRAMES = fixture_frames("bybit")
ACK, PONG, REFUSED, ALREADY = 0, 1, 2, 3
BTC_SNAPSHOT, BTC_ASK_DELTA, BTC_BID_MOVED, BTC_GAP = 4, 5, 6, 7
TICKER_SNAPSHOT, TICKER_MARK_DELTA, TICKER_OTHER_DELTA = 8, 9, 10
PEPE_SNAPSHOT, INVERSE_BOOK, INVERSE_TICKER, UNTRACKED, RESTART, ARGS_TOO_MANY = 11, 12, 13, 14, 15, 16


@pytest.fixture
def venue() -> Bybit:
    return Bybit(load_venue_instruments("bybit"))


def feed(venue: Bybit, *indices: int) -> list[Parsed]:
    return [venue.parse(FRAMES[i], RECEIPT) for i in indices]


def btc_quote(**fields: object) -> Quote:
    base: dict[str, object] = {
        "instrument_id": "BTC-USDT-PERP@bybit",
        "venue": "bybit",
        "native_symbol": "BTCUSDT",
        "base": "BTC",
        "quote": "USDT",
        "kind": ContractKind.LINEAR,
        "receipt_ts_ns": RECEIPT,
    }
    return Quote(**(base | fields))  # type: ignore[arg-type]


def test_instruments_linear_and_inverse() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("bybit")}
    # BTCUSDT-25DEC26 (LinearFutures) is dropped.
    assert set(instruments) == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "1000PEPEUSDT", "BTCUSD", "ETHUSD"}
    pepe = instruments["1000PEPEUSDT"]
    assert (pepe.instrument_id, pepe.base, pepe.price_multiplier, pepe.contract_size, pepe.funding_interval_h) == (
        "PEPE-USDT-PERP@bybit",
        "PEPE",
        Decimal(1000),
        Decimal(1000),
        4,
    )
    btcusd = instruments["BTCUSD"]
    assert (btcusd.instrument_id, btcusd.kind, btcusd.quote, btcusd.settle, btcusd.contract_size) == (
        "BTC-USD-INV-PERP@bybit",
        ContractKind.INVERSE,
        "USD",
        "BTC",
        Decimal(1),
    )
    assert (btcusd.tick_size, btcusd.funding_interval_h) == (Decimal("0.50"), 8)
    assert instruments["BTCUSDT"].tick_size == Decimal("0.10")


def test_book_snapshot(venue: Bybit) -> None:
    (parsed,) = feed(venue, BTC_SNAPSHOT)
    assert parsed.events == [
        btc_quote(
            bid=Decimal("86410.10"),
            bid_size=Decimal("2.184"),
            ask=Decimal("86410.20"),
            ask_size=Decimal("0.511"),
            exchange_ts_ns=1790516465011_000_000,
            sequence=4419201,
        )
    ]


def test_delta_with_an_empty_side_keeps_it(venue: Bybit) -> None:
    _, parsed = feed(venue, BTC_SNAPSHOT, BTC_ASK_DELTA)
    assert parsed.gap is None
    assert parsed.events == [
        btc_quote(
            bid=Decimal("86410.10"),
            bid_size=Decimal("2.184"),
            ask=Decimal("86410.20"),
            ask_size=Decimal("0.740"),
            exchange_ts_ns=1790516465021_000_000,
            sequence=4419202,
        )
    ]


def test_delta_zero_size_deletes_the_moved_level(venue: Bybit) -> None:
    *_, parsed = feed(venue, BTC_SNAPSHOT, BTC_ASK_DELTA, BTC_BID_MOVED)
    assert parsed.events == [
        btc_quote(
            bid=Decimal("86410.00"),
            bid_size=Decimal("3.002"),
            ask=Decimal("86410.20"),
            ask_size=Decimal("0.740"),
            exchange_ts_ns=1790516465031_000_000,
            sequence=4419203,
        )
    ]


def test_sequence_skip_resyncs_that_symbol_only_until_both_sides_are_fresh(venue: Bybit) -> None:
    *_, gap = feed(venue, BTC_SNAPSHOT, BTC_ASK_DELTA, BTC_BID_MOVED, BTC_GAP)
    # Not a connection gap: hundreds of other symbols ride the socket.
    assert (gap.gap, gap.resyncs) == (None, ["BTCUSDT"])
    assert gap.events == []  # the bid may be stale: no quote from half a book
    (pepe,) = venue.parse(FRAMES[PEPE_SNAPSHOT], RECEIPT).events  # another symbol is unaffected
    assert isinstance(pepe, Quote) and pepe.native_symbol == "1000PEPEUSDT"
    delta = '{"topic":"orderbook.1.BTCUSDT","type":"delta","ts":1790516465061,"data":{"s":"BTCUSDT","b":[["86410.10","0.5"]],"a":[],"u":4419206,"seq":1}}'  # noqa: E501
    assert venue.parse(delta, RECEIPT).events == [
        btc_quote(
            bid=Decimal("86410.10"),
            bid_size=Decimal("0.5"),
            ask=Decimal("86410.30"),
            ask_size=Decimal("1.250"),
            exchange_ts_ns=1790516465061_000_000,
            sequence=4419206,
        )
    ]


def test_update_id_one_overwrites_the_book(venue: Bybit) -> None:
    *_, restart = feed(venue, BTC_SNAPSHOT, BTC_ASK_DELTA, RESTART)
    assert restart.gap is None
    assert restart.events == [
        btc_quote(
            bid=Decimal("86398.40"),
            bid_size=Decimal("0.904"),
            ask=Decimal("86398.50"),
            ask_size=Decimal("2.117"),
            exchange_ts_ns=1790516466003_000_000,
            sequence=1,
        )
    ]


def test_repeated_snapshot_with_the_same_update_id_is_not_a_gap(venue: Bybit) -> None:
    first, again = feed(venue, BTC_SNAPSHOT, BTC_SNAPSHOT)
    assert again.gap is None and again.events == first.events


def test_multiplied_symbol_sizes_in_base_units(venue: Bybit) -> None:
    (quote,) = venue.parse(FRAMES[PEPE_SNAPSHOT], RECEIPT).events
    assert quote == Quote(
        instrument_id="PEPE-USDT-PERP@bybit",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="bybit",
        native_symbol="1000PEPEUSDT",
        base="PEPE",
        bid=Decimal("0.0112031"),
        bid_size=Decimal("125000000"),
        ask=Decimal("0.0112040"),
        ask_size=Decimal("98000000"),
        price_multiplier=Decimal(1000),
        exchange_ts_ns=1790516465203_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=1773040,
    )


def test_inverse_sizes_are_usd_contracts(venue: Bybit) -> None:
    (quote,) = venue.parse(FRAMES[INVERSE_BOOK], RECEIPT).events
    assert quote == Quote(
        instrument_id="BTC-USD-INV-PERP@bybit",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="bybit",
        native_symbol="BTCUSD",
        base="BTC",
        bid=Decimal("86405.50"),
        bid_size=Decimal(152300) / Decimal("86405.50"),
        ask=Decimal("86406.00"),
        ask_size=Decimal(48210) / Decimal("86406.00"),
        exchange_ts_ns=1790516465220_000_000,
        receipt_ts_ns=RECEIPT,
        sequence=9930112,
    )
    assert quote.bid_size is not None and quote.bid_size == Decimal(
        "1.762619277708016272112307666"
    )  # 152300 USD / price


def test_ticker_snapshot_funding(venue: Bybit) -> None:
    (funding,) = venue.parse(FRAMES[TICKER_SNAPSHOT], RECEIPT).events
    assert funding == Funding(
        instrument_id="BTC-USDT-PERP@bybit",
        quote="USDT",
        kind=ContractKind.LINEAR,
        venue="bybit",
        native_symbol="BTCUSDT",
        base="BTC",
        rate=Decimal("0.0001"),
        interval_h=8,
        next_funding_ts_ns=1790524800000_000_000,
        mark=Decimal("86408.95"),
        index=Decimal("86399.27"),
        exchange_ts_ns=1790516465100_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_ticker_delta_merges_omitted_fields(venue: Bybit) -> None:
    _, delta, other = feed(venue, TICKER_SNAPSHOT, TICKER_MARK_DELTA, TICKER_OTHER_DELTA)
    assert delta.events == [
        Funding(
            instrument_id="BTC-USDT-PERP@bybit",
            quote="USDT",
            kind=ContractKind.LINEAR,
            venue="bybit",
            native_symbol="BTCUSDT",
            base="BTC",
            rate=Decimal("0.0001"),
            interval_h=8,
            next_funding_ts_ns=1790524800000_000_000,
            mark=Decimal("86409.02"),
            index=Decimal("86399.27"),
            exchange_ts_ns=1790516465150_000_000,
            receipt_ts_ns=RECEIPT,
        )
    ]
    assert other.events == []  # open interest / volume only: nothing funding-related changed


def test_inverse_ticker_with_interval_from_the_frame(venue: Bybit) -> None:
    frame = FRAMES[INVERSE_TICKER].replace('"fundingIntervalHour":"8"', '"fundingIntervalHour":"4"')
    (funding,) = venue.parse(frame, RECEIPT).events
    assert funding == Funding(
        instrument_id="ETH-USD-INV-PERP@bybit",
        quote="USD",
        kind=ContractKind.INVERSE,
        venue="bybit",
        native_symbol="ETHUSD",
        base="ETH",
        rate=Decimal("-0.000043"),
        interval_h=4,
        next_funding_ts_ns=1790524800000_000_000,
        mark=Decimal("3201.62"),
        index=Decimal("3200.91"),
        exchange_ts_ns=1790516465231_000_000,
        receipt_ts_ns=RECEIPT,
    )


def test_control_frames_produce_no_events(venue: Bybit) -> None:
    ack, pong, refused, already, untracked, too_many = feed(
        venue, ACK, PONG, REFUSED, ALREADY, UNTRACKED, ARGS_TOO_MANY
    )
    assert ack == Parsed(subscribed=True)
    assert already == Parsed(subscribed=True)  # the first subscription keeps streaming
    assert pong == Parsed() and untracked == Parsed()
    assert refused == Parsed(error="subscribe refused: error:handler not found,topic:orderbook.30.BTCUSDT")
    assert too_many == Parsed(error="subscribe refused: args size >10")
    assert venue.parse('{"args":["1672916271846"],"op":"pong"}', RECEIPT) == Parsed()


def test_connections_route_by_kind_and_batch_ten_args(venue: Bybit) -> None:
    linear, inverse = venue.connections("wss://stream.bybit.com")
    assert (linear.url, inverse.url) == (
        "wss://stream.bybit.com/v5/public/linear",
        "wss://stream.bybit.com/v5/public/inverse",
    )
    assert inverse.topics == ("orderbook.1.BTCUSD", "tickers.BTCUSD", "orderbook.1.ETHUSD", "tickers.ETHUSD")
    assert len(linear.topics) == 8
    topics = [f"tickers.S{n}USDT" for n in range(23)]
    frames = [orjson.loads(f) for f in venue.subscribe_messages(topics)]
    assert [len(f["args"]) for f in frames] == [10, 10, 3]
    assert frames[0] == {"req_id": "sub-1", "op": "subscribe", "args": topics[:10]}
    assert orjson.loads(venue.ping_message() or "") == {"req_id": "ping-4", "op": "ping"}


def test_snapshot_after_a_skip_restores_the_quote(venue: Bybit) -> None:
    *_, gap = feed(venue, BTC_SNAPSHOT, BTC_ASK_DELTA, BTC_BID_MOVED, BTC_GAP)
    assert gap.resyncs == ["BTCUSDT"]
    # The venue re-sends an unchanged level-1 book as a snapshot after 3 s.
    again = FRAMES[BTC_SNAPSHOT].replace('"u":4419201', '"u":4419205')
    (quote,) = venue.parse(again, RECEIPT).events
    assert isinstance(quote, Quote) and (quote.bid, quote.ask, quote.sequence) == (
        Decimal("86410.10"),
        Decimal("86410.20"),
        4419205,
    )


def test_open_interest_value_linear_and_usd_contracts_inverse() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("bybit")}
    assert instruments["BTCUSDT"].open_interest_quote == Decimal("4771094812.20")  # openInterestValue, USDT
    assert instruments["BTCUSD"].open_interest_quote == Decimal(612003318)  # openInterest, 1-USD contracts
    (inst,) = listed(BybitSim, [ListingSpec("SOL", "USD-inverse", 1, 8, Decimal("180.41"), Decimal(4_000_000))])
    (row,) = BybitSim([inst]).listing([inst])[INVERSE_TICKERS]["result"]["list"]
    assert (row["openInterest"], inst.open_interest_quote) == ("1000000", Decimal(1_000_000))  # a quarter of 4M USD


def test_listing_volumes_from_tickers_and_old_files_without_them() -> None:
    instruments = {i.native_symbol: i for i in load_venue_instruments("bybit")}
    assert instruments["BTCUSDT"].volume_24h_quote == Decimal("6120438221.9412")  # turnover24h, USDT
    assert instruments["BTCUSD"].volume_24h_quote == Decimal("173912224")  # volume24h, USD contracts
    listing = load_json((BUNDLED_DIR / "bybit.json").read_bytes())
    old = {path: listing[path] for path in (LINEAR_LISTING, INVERSE_LISTING)}
    assert [i.volume_24h_quote for i in Bybit.parse_instruments(old)] == [None] * 6
    assert [i.open_interest_quote for i in Bybit.parse_instruments(old)] == [None] * 6
    assert [i.funding_interval_h for i in Bybit.parse_instruments(old)] == [8, 8, 8, 4, 8, 8]
    with pytest.raises(FrameError, match="retCode 10001"):
        Bybit.parse_instruments(old | {LINEAR_TICKERS: {"retCode": 10001, "retMsg": "params error"}})


def test_whole_market_connections_pack_topics_under_both_caps() -> None:
    instruments = round_trip(BybitSim, Bybit, specs(700))
    venue = Bybit(instruments)
    plans = venue.connections("wss://stream.bybit.com")
    for plan in plans:
        assert len(plan.topics) <= 500 and sum(len(t) for t in plan.topics) <= 21_000
        kind = ContractKind.INVERSE if plan.url.endswith("/inverse") else ContractKind.LINEAR
        natives = {t.rpartition(".")[2] for t in plan.topics}
        assert all(venue.by_native[n].kind is kind for n in natives)
        assert sorted(plan.topics) == sorted(t for n in natives for t in venue.topics(venue.by_native[n]))
    assert sum(len(p.topics) for p in plans) == 2 * len(instruments)
    assert all(len(orjson.loads(f)["args"]) <= 10 for p in plans for f in venue.subscribe_messages(p.topics))
    assert pack([["a" * 6, "b" * 6]] * 3, 500, 24) == [("a" * 6, "b" * 6) * 2, ("a" * 6, "b" * 6)]


def test_generated_listing_round_trip_covers_prefixes_groups_and_intervals() -> None:
    instruments = round_trip(BybitSim, Bybit, specs(420))
    assert len(instruments) > 800
    assert {i.quote_group for i in instruments} == {"USDT", "USDC", "USD-inverse"}
    assert {i.funding_interval_h for i in instruments} == {1, 4, 8}
    by_native = {i.native_symbol: i for i in instruments}
    pepe = by_native["1000PEPEUSDT"]
    assert (pepe.base, pepe.price_multiplier, pepe.contract_size) == ("PEPE", Decimal(1000), Decimal(1000))
    assert (by_native["BTCPERP"].quote, by_native["BTCUSD"].kind) == ("USDC", ContractKind.INVERSE)
    assert by_native["BTCUSDT"].tick_size == Decimal("0.1")
    assert BybitSim.list_instrument(ListingSpec("PEPE", "USD-inverse", 1000, 8, Decimal("0.00001"))) is None
    assert BybitSim.list_instrument(ListingSpec("BTC", "EUR", 1, 8, Decimal(86400))) is None


@pytest.mark.parametrize(
    "frame",
    [
        '{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT","b":[],"u":5}}',
        '{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT","b":[["1"]],"a":[],"u":5}}',
        '{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1,"data":{"b":[["x","1"]],"a":[],"u":5}}',
        '{"topic":"orderbook.1.BTCUSDT","type":"partial","ts":1,"data":{"b":[],"a":[],"u":5}}',
        '{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":[]}',
        '{"topic":"tickers.BTCUSDT","type":"snapshot","ts":"later","data":{"fundingRate":"0.1"}}',
        '{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":{"nextFundingTime":"soon"}}',
        '{"topic":7}',
        "[1,2]",
        "nope",
    ],
)
def test_malformed_frames_raise_frame_error(venue: Bybit, frame: str) -> None:
    with pytest.raises(FrameError):
        venue.parse(frame, RECEIPT)


# -- simulator side of the protocol ----------------------------------------


def _sim_session(path: str = "/v5/public/linear") -> tuple[BybitSim, SimSession]:
    return BybitSim(load_venue_instruments("bybit")), SimSession("bybit", path, {})


def test_sim_answers_ping_and_refuses_like_the_venue(venue: Bybit) -> None:
    sim, session = _sim_session()
    (pong,) = sim.on_message(session, '{"req_id":"ping-1","op":"ping"}')
    assert orjson.loads(pong) | {"conn_id": ""} == {
        "success": True,
        "ret_msg": "pong",
        "conn_id": "",
        "req_id": "ping-1",
        "op": "ping",
    }
    (wrong_socket,) = sim.on_message(session, '{"req_id":"s","op":"subscribe","args":["orderbook.1.BTCUSD"]}')
    assert (
        venue.parse(wrong_socket, RECEIPT).error
        == "subscribe refused: error:handler not found,topic:orderbook.1.BTCUSD"
    )
    eleven = orjson.dumps({"op": "subscribe", "args": ["tickers.BTCUSDT"] * 11}).decode()
    assert venue.parse(sim.on_message(session, eleven)[0], RECEIPT).error == "subscribe refused: args size >10"
    sub = '{"op":"subscribe","args":["orderbook.1.BTCUSDT","tickers.BTCUSDT"]}'
    assert venue.parse(sim.on_message(session, sub)[0], RECEIPT).subscribed
    assert session.subscriptions == {(BOOK, "BTCUSDT"), (FUNDING, "BTCUSDT")}
    assert venue.parse(sim.on_message(session, sub)[0], RECEIPT) == Parsed(subscribed=True)  # already subscribed
    inst = venue.instrument("BTCUSDT")
    assert inst is not None
    quote = SimQuote(Decimal("86400"), Decimal("86400.1"), Decimal("1"), Decimal("1"), 1_790_516_465_000)
    types = [orjson.loads(sim.book_frames(session, inst, quote)[0])["type"] for _ in range(2)]
    sim.on_message(session, '{"op":"unsubscribe","args":["orderbook.1.BTCUSDT"]}')
    assert session.subscriptions == {(FUNDING, "BTCUSDT")}
    sim.on_message(session, '{"op":"subscribe","args":["orderbook.1.BTCUSDT"]}')
    types.append(orjson.loads(sim.book_frames(session, inst, quote)[0])["type"])
    assert types == ["snapshot", "delta", "snapshot"]  # a new subscription starts with a snapshot


def test_sim_sends_snapshot_then_deltas_with_empty_sides(venue: Bybit) -> None:
    sim, session = _sim_session()
    inst = venue.instrument("BTCUSDT")
    assert inst is not None
    sent: list[dict[str, Any]] = []
    for step in range(6):
        bid = Decimal("86400.0") + Decimal("0.1") * step  # moves less than the spread
        market = SimQuote(bid, bid + Decimal("0.5"), Decimal("1.5") + step, Decimal("2.5") + step, 1_790_516_465_000)
        (frame,) = sim.book_frames(session, inst, market)
        sent.append(orjson.loads(frame))
        (quote,) = venue.parse(frame, RECEIPT).events
        # The decoded quote is exactly the book the simulator has published so far.
        (bid_px, bid_qty), (ask_px, ask_qty) = session.state["books"]["BTCUSDT"]
        assert quote == btc_quote(
            bid=Decimal(bid_px),
            bid_size=Decimal(bid_qty),
            ask=Decimal(ask_px),
            ask_size=Decimal(ask_qty),
            exchange_ts_ns=1_790_516_465_000_000_000,
            sequence=sent[-1]["data"]["u"],
        )
    assert [f["type"] for f in sent] == ["snapshot"] + ["delta"] * 5
    assert any(f["data"]["b"] == [] for f in sent[1:]) and any(f["data"]["a"] == [] for f in sent[1:])
    assert ["86400.0", "0"] in sent[2]["data"]["b"]  # a moved level is deleted


def test_sim_gap_injection_is_detected(venue: Bybit) -> None:
    sim, session = _sim_session()
    inst = venue.instrument("ETHUSDT")
    assert inst is not None
    quote = SimQuote(Decimal("3200.10"), Decimal("3200.20"), Decimal("4"), Decimal("5"), 1_790_516_465_000)
    venue.parse(sim.book_frames(session, inst, quote)[0], RECEIPT)
    session.skip_sequence = True
    (frame,) = sim.book_frames(session, inst, quote)
    skipped = venue.parse(frame, RECEIPT)
    assert (skipped.gap, skipped.resyncs, skipped.events) == (None, ["ETHUSDT"], [])


def test_sim_ticker_deltas_carry_only_changes(venue: Bybit) -> None:
    sim, session = _sim_session("/v5/public/inverse")
    inst = venue.instrument("BTCUSD")
    assert inst is not None
    first = SimFunding(Decimal("0.0001"), Decimal("86400.5"), Decimal("86399"), 1_790_524_800_000, 1_790_516_466_000)
    second = SimFunding(Decimal("0.0001"), Decimal("86401"), Decimal("86399"), 1_790_524_800_000, 1_790_516_467_000)
    (snapshot,) = sim.funding_frames(session, inst, first)
    (delta,) = sim.funding_frames(session, inst, second)
    assert orjson.loads(delta)["data"] == {"symbol": "BTCUSD", "markPrice": "86401"}
    venue.parse(snapshot, RECEIPT)
    (funding,) = venue.parse(delta, RECEIPT).events
    assert isinstance(funding, Funding)
    assert (funding.rate, funding.mark, funding.index, funding.interval_h) == (
        Decimal("0.0001"),
        Decimal("86401"),
        Decimal("86399"),
        8,
    )


async def test_listing_pages_are_followed_and_optional_tickers_may_fail() -> None:
    listing = load_json((BUNDLED_DIR / "bybit.json").read_bytes())
    linear = listing[LINEAR_LISTING]
    first = {**linear, "result": {**linear["result"], "list": linear["result"]["list"][:2], "nextPageCursor": "c=2"}}
    second = {**linear, "result": {**linear["result"], "list": linear["result"]["list"][2:], "nextPageCursor": ""}}
    asked: list[str] = []

    async def instruments(request: web.Request) -> web.Response:
        asked.append(request.query_string)
        category = request.query["category"]
        body = (second if request.query.get("cursor") == "c=2" else first) if category == "linear" else None
        return web.Response(body=_wire(body or listing[INVERSE_LISTING]), content_type="application/json")

    async def tickers(_request: web.Request) -> web.Response:
        return web.Response(status=503)  # volumes only: the listing does without them

    app = web.Application()
    app.router.add_get("/v5/market/instruments-info", instruments)
    app.router.add_get("/v5/market/tickers", tickers)
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        raw = await Bybit.fetch_listing(http, str(server.make_url("")).rstrip("/"))
    assert "category=linear&limit=1000&cursor=c%3D2" in asked
    fetched = Bybit.parse_instruments(load_json(raw))
    expected = Bybit.parse_instruments({p: listing[p] for p in (LINEAR_LISTING, INVERSE_LISTING)})
    assert fetched == expected and len(fetched) == 6


def _wire(body: object) -> bytes:
    return msgspec.json.Encoder(decimal_format="number").encode(body)
