"""The float pre-filter's own rules: what it caches per quote and which pairs it lets through.

``tests/test_engine.py`` proves the pre-filter never changes an outcome on random markets near
the thresholds; these pin its parts on the cases random prices around 100 never reach: price
multipliers, sub-unit prices, one-sided books, quotes dropped from the cache.
"""

from __future__ import annotations

from decimal import Decimal

from processors.arbitrage import INF, ArbConfig, FastBook, fast_quote, prefiltered_pairs, process_quote
from schemas.arbitrage import Episode, SymbolState
from schemas.market import Quote

T0 = 1_790_000_000_000_000_000
MS = 1_000_000
FEES = {"binance": Decimal("0.0005"), "okx": Decimal("0.0004")}
CONFIG = ArbConfig(taker_fees=FEES, default_fee=Decimal("0.002"), min_ticks=1)


def quote(venue: str, bid: str | None, ask: str | None, inst: str | None = None, mult: str = "1") -> Quote:
    return Quote(
        instrument_id=inst or f"PEPE-USDT-PERP@{venue}",
        venue=venue,
        native_symbol="X",
        base="PEPE",
        bid=None if bid is None else Decimal(bid),
        bid_size=Decimal("5"),
        ask=None if ask is None else Decimal(ask),
        ask_size=Decimal("5"),
        price_multiplier=Decimal(mult),
        exchange_ts_ns=T0,
        receipt_ts_ns=T0,
    )


def test_fast_quote_holds_per_base_prices_group_and_fee() -> None:
    thousand = quote("binance", "0.0111", "0.0112", inst="PEPE-USDT-PERP@binance", mult="1000")
    assert fast_quote(thousand, CONFIG) == (0.0111 / 1000, 0.0112 / 1000, "binance", "USDT", 0.0005)
    sub_unit = quote("gate", "0.5", "0.6", inst="PEPE-USD-INV-PERP@gate")
    assert fast_quote(sub_unit, CONFIG) == (0.5, 0.6, "gate", "USD-inverse", 0.002)  # default fee
    bridged = ArbConfig(taker_fees=FEES, quote_bridges={"USDC": "USD*"})
    assert fast_quote(quote("okx", "1", "2", inst="PEPE-USDC-PERP@okx"), bridged)[3] == "USD*"


def test_fast_quote_turns_missing_or_non_positive_sides_into_infinities() -> None:
    assert fast_quote(quote("okx", None, None), CONFIG)[:2] == (-INF, INF)
    assert fast_quote(quote("okx", "0", "0"), CONFIG)[:2] == (-INF, INF)
    assert fast_quote(quote("okx", "-1", "-1"), CONFIG)[:2] == (-INF, INF)


def test_fast_book_put_and_drop_keep_the_group_indexes_in_step() -> None:
    book = FastBook()
    a = fast_quote(quote("binance", "1", "2"), CONFIG)
    b = fast_quote(quote("okx", "3", "4"), CONFIG)
    book.put("a", a)
    book.put("b", b)
    assert (book.bids, book.asks) == ({"USDT": {"a": 1.0, "b": 3.0}}, {"USDT": {"a": 2.0, "b": 4.0}})
    book.drop("a")
    book.drop("never-cached")
    assert (book.quotes, book.bids, book.asks) == ({"b": b}, {"USDT": {"b": 3.0}}, {"USDT": {"b": 4.0}})


def test_a_dropped_quote_is_recached_from_the_state() -> None:
    state = SymbolState()
    book = FastBook()
    binance, okx = quote("binance", "0.00001", "0.0000101"), quote("okx", "0.0000102", "0.0000103")
    state.quotes = {binance.instrument_id: binance, okx.instrument_id: okx}
    book.sync(state, CONFIG)
    assert set(book.quotes) == set(state.quotes)
    book.drop(okx.instrument_id)
    book.sync(state, CONFIG)
    assert book.quotes[okx.instrument_id] == fast_quote(okx, CONFIG)


def pairs(state: SymbolState, changed: Quote, book: FastBook) -> list[tuple[str, str]]:
    state.quotes[changed.instrument_id] = changed
    return [(b.venue, s.venue) for b, s in prefiltered_pairs(state, changed.instrument_id, book, CONFIG)]


def test_sub_unit_prices_pass_the_filter_in_the_direction_that_crosses() -> None:
    # Buy okx at 0.00001000 per PEPE, sell binance (1000PEPE) at 0.0102 per 1000: 2 % gross.
    state, book = SymbolState(), FastBook()
    okx = quote("okx", "0.0000099", "0.0000100")
    assert pairs(state, okx, book) == []
    thousand = quote("binance", "0.0102", "0.0103", inst="1000PEPE-USDT-PERP@binance", mult="1000")
    assert pairs(state, thousand, book) == [("okx", "binance")]
    assert pairs(state, okx, book) == [("okx", "binance")]


def test_the_buy_side_on_a_multiplied_contract_passes_too() -> None:
    state, book = SymbolState(), FastBook()
    thousand = quote("binance", "0.0097", "0.0098", inst="1000PEPE-USDT-PERP@binance", mult="1000")
    assert pairs(state, thousand, book) == []
    okx = quote("okx", "0.0000100", "0.0000101")
    assert pairs(state, okx, book) == [("binance", "okx")]
    assert pairs(state, thousand, book) == [("binance", "okx")]


def test_below_the_threshold_nothing_passes_but_an_existing_episode_always_does() -> None:
    state, book = SymbolState(), FastBook()
    assert pairs(state, quote("binance", "0.0000100", "0.0000101"), book) == []
    assert pairs(state, quote("okx", "0.0000101", "0.0000102"), book) == []  # 0 gross after fees
    key = "PEPE-USDT-PERP@okx|PEPE-USDT-PERP@binance"
    state.episodes[key] = Episode(buy_instrument_id="x", sell_instrument_id="y", start_ts_ns=T0)
    assert pairs(state, quote("okx", "0.0000101", "0.0000102"), book) == [("okx", "binance")]
    assert pairs(state, quote("binance", "0.0000100", "0.0000101"), book) == [("okx", "binance")]


def test_other_quote_groups_and_the_same_venue_never_pair() -> None:
    # okx's inverse bid crosses every ask; only gate's inverse contract may pair with it.
    state, book = SymbolState(), FastBook()
    pairs(state, quote("binance", "0.0000100", "0.0000101"), book)
    pairs(state, quote("binance", "0.0000100", "0.0000101", inst="PEPE-USD-INV-PERP@binance"), book)
    pairs(state, quote("gate", "0.0000100", "0.0000101", inst="PEPE-USD-INV-PERP@gate"), book)
    okx = quote("okx", "0.0000200", "0.0000201", inst="PEPE-USD-INV-PERP@okx")
    assert pairs(state, okx, book) == [("binance", "okx"), ("gate", "okx")]
    buys = [b.instrument_id for b, _ in prefiltered_pairs(state, okx.instrument_id, book, CONFIG)]
    assert buys == ["PEPE-USD-INV-PERP@binance", "PEPE-USD-INV-PERP@gate"]  # never binance's USDT contract
    okx_usdt = quote("okx", "0.0000050", "0.0000051", inst="PEPE-USDT-PERP@okx")
    assert pairs(state, okx_usdt, book) == [("okx", "binance")]


def test_with_and_without_the_cache_the_same_alert_on_a_multiplied_dislocation() -> None:
    okx = quote("okx", "0.0000099", "0.0000100")
    thousand = quote("binance", "0.0102", "0.0103", inst="1000PEPE-USDT-PERP@binance", mult="1000")
    outcomes = []
    for book in (None, FastBook()):
        state = SymbolState()
        process_quote("PEPE", state, okx, {}, T0, CONFIG, book)
        outcomes.append(process_quote("PEPE", state, thousand, {}, T0 + MS, CONFIG, book).alerts)
    assert outcomes[0] == outcomes[1] and [a.net_spread for a in outcomes[0]] == [Decimal("0.0191")]
