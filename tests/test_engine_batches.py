"""The engine reads per-symbol batches of ticks: a record is applied whole and in order, conflation
reaches across records and within one, recent ticks only rebuild quotes, old single-tick records
are still read."""

from __future__ import annotations

from decimal import Decimal

from schemas.arbitrage import SymbolState
from schemas.market import Funding, encode, encode_ticks
from tests.test_engine import MS, T0, Rec, dislocation, engine, quote


def test_a_record_s_ticks_are_applied_in_order_and_count_one_offset() -> None:
    ticks = dislocation(T0)
    e = engine()
    out = e.apply_batch("BTC", [Rec(4, b"BTC", encode_ticks(ticks), T0 // MS)], {}, T0 // MS)
    assert [a.event_id for a in out.alerts] == [f"BTC:binance->okx:{T0 + MS}"]
    assert [c.ticks for c in out.closed] == [2]
    assert (e.counters.processed, e.slots["BTC"].state.applied_offset) == (4, 4)
    # At least once: the same record again only refreshes quotes.
    again = e.apply_batch("BTC", [Rec(4, b"BTC", encode_ticks(ticks), T0 // MS)], {}, T0 // MS)
    assert (again.alerts, again.closed, e.counters.rebuilt) == ([], [], 4)


def test_conflation_reaches_across_records_and_within_one() -> None:
    binance = [quote("binance", str(100 + i), str(100.1 + i), T0 + i * MS) for i in range(3)]
    okx = quote("okx", "100", "100.1", T0 + 3 * MS)
    funding = Funding(
        instrument_id="BTC-USDT-PERP@okx",
        venue="okx",
        native_symbol="BTC-USDT-SWAP",
        base="BTC",
        rate=Decimal("0.0001"),
        interval_h=8,
        exchange_ts_ns=T0,
        receipt_ts_ns=T0,
    )
    stamp = T0 // MS
    recs = [
        Rec(0, b"BTC", encode_ticks([binance[0], funding, binance[1]]), stamp),
        Rec(1, b"BTC", encode_ticks([okx, binance[2]]), stamp),
    ]
    e = engine(conflate_after_ms=100)
    e.apply_batch("BTC", recs, {}, stamp + 500)
    # binance's first two quotes are superseded by its third; funding is never conflated.
    assert (e.counters.conflated, e.counters.processed) == (2, 3)
    assert e.slots["BTC"].state.quotes["BTC-USDT-PERP@binance"] == binance[2]
    assert e.slots["BTC"].state.applied_offset == 1


def test_rebuild_refills_quotes_of_the_last_seconds_without_evaluating_them() -> None:
    e = engine()
    e.load("BTC", SymbolState(), applied_floor=9)
    recent = dislocation(T0)[:3]  # would alert if evaluated
    e.rebuild("BTC", [*recent, quote("binance", "1", "2", T0, base="ETH")])  # another symbol's tick is ignored
    slot = e.slots["BTC"]
    assert set(slot.state.quotes) == {"BTC-USDT-PERP@binance", "BTC-USDT-PERP@okx"}
    assert (slot.state.episodes, e.counters.rebuilt, e.counters.processed) == ({}, 3, 0)


def test_records_written_before_batching_are_still_read() -> None:
    q = quote("binance", "100", "100.01", T0)
    e = engine()
    e.apply_batch("BTC", [Rec(0, q.instrument_id.encode(), encode(q), T0 // MS)], {}, T0 // MS)
    assert (e.counters.processed, e.slots["BTC"].state.quotes) == (1, {q.instrument_id: q})
