"""The engine's own rules at their boundaries: which numbers are insane, when conflation starts,
which flags tell the host to write the row, what a rebuild refills, what the changelog row holds."""

from __future__ import annotations

import decimal
import logging
from decimal import Decimal

import msgspec
import pytest

from processors.engine import MAX_EXPONENT, insane, persisted, superseded
from schemas.arbitrage import Episode, SymbolState
from schemas.market import Funding, Quote, encode, encode_ticks
from tests.test_engine import MS, T0, Rec, dislocation, engine, quote


def funding(rate: str = "0.0001", ts: int = T0, base: str = "BTC") -> Funding:
    return Funding(
        instrument_id=f"{base}-USDT-PERP@okx",
        venue="okx",
        native_symbol="X",
        base=base,
        rate=Decimal(rate),
        interval_h=8,
        exchange_ts_ns=ts,
        receipt_ts_ns=ts,
    )


GOOD = quote("binance", "100", "100.01", T0)


@pytest.mark.parametrize("field", ["bid", "ask", "bid_size", "ask_size", "price_multiplier"])
def test_every_quote_number_is_checked(field: str) -> None:
    huge = Decimal(f"1E+{MAX_EXPONENT + 1}")
    assert insane(msgspec.structs.replace(GOOD, **{field: huge})) == f"unusable number {huge}"
    assert insane(msgspec.structs.replace(GOOD, **{field: Decimal("NaN")})) == "unusable number NaN"
    assert insane(msgspec.structs.replace(GOOD, **{field: Decimal(f"9.9E+{MAX_EXPONENT}")})) is None


@pytest.mark.parametrize("field", ["rate", "mark", "index", "price_multiplier"])
def test_every_funding_number_is_checked(field: str) -> None:
    bad = msgspec.structs.replace(funding(), **{field: Decimal("-Infinity")})
    assert insane(bad) == "unusable number -Infinity"
    assert insane(msgspec.structs.replace(funding(), **{field: Decimal("1E+30")})) is None


def test_missing_numbers_are_fine_and_a_multiplier_must_be_positive() -> None:
    assert insane(msgspec.structs.replace(GOOD, bid=None, bid_size=None)) is None
    assert insane(msgspec.structs.replace(funding(), rate=None)) is None
    assert insane(msgspec.structs.replace(GOOD, price_multiplier=Decimal(0))) == "non-positive price multiplier"
    assert insane(msgspec.structs.replace(funding(), price_multiplier=Decimal(-1))) == "non-positive price multiplier"
    assert insane(msgspec.structs.replace(GOOD, price_multiplier=Decimal("0.001"))) is None


def test_conflation_starts_only_when_the_first_record_is_older_than_the_limit() -> None:
    q = [quote("binance", "100", "100.1", T0 + i * MS) for i in range(2)]
    batch = [(1_000, [q[0]]), (1_050, [q[1]])]
    assert superseded(batch, 1_100, 100) == set()  # exactly at the limit: not behind
    assert superseded(batch, 1_101, 100) == {(0, 0)}
    assert superseded(batch, 1_151, 100) == {(0, 0)}  # the newest is never superseded
    assert superseded([], 5_000, 100) == set()
    within: list[tuple[int, list[Quote | Funding]]] = [(1_000, [q[0], funding(), q[1]])]
    assert superseded(within, 1_101, 100) == {(0, 0)}


def test_only_records_older_than_the_cutoff_are_conflated() -> None:
    q = [quote("binance", "100", "100.1", T0 + i * MS) for i in range(3)]
    batch = [(1_000, [q[0]]), (1_100, [q[1]]), (1_101, [q[2]])]
    # now 1_200, limit 100: cutoff 1_100; record 1 (at the cutoff) is young enough to keep.
    assert superseded(batch, 1_200, 100) == {(0, 0)}


def test_flags_tell_the_host_what_to_write() -> None:
    e = engine()
    stamp = T0 // MS
    e.apply_batch("BTC", [Rec(0, b"BTC", encode(GOOD), stamp)], {}, stamp)
    slot = e.slots["BTC"]
    assert (slot.urgent, slot.dirty, slot.quotes_changed) == (False, False, True)
    e.apply_batch("BTC", [Rec(1, b"BTC", encode(funding()), stamp)], {}, stamp)
    assert (slot.urgent, slot.dirty) == (False, True)  # funding changed: within the flush interval
    assert slot.state.funding["BTC-USDT-PERP@okx"] == funding()
    out = e.apply_batch("BTC", [Rec(2, b"BTC", encode(funding("0.01", T0 + MS)), stamp)], {}, stamp)
    assert [a.symbol for a in out.funding] == [] and slot.urgent is False  # one venue: no pair yet


def test_an_episode_makes_the_row_urgent_and_keeps_it_dirty() -> None:
    e = engine()
    stamp = T0 // MS
    ticks = dislocation(T0)
    e.apply_batch("BTC", [Rec(0, b"BTC", encode_ticks(ticks[:2]), stamp)], {}, stamp)
    slot = e.slots["BTC"]
    assert (slot.urgent, slot.dirty, len(slot.state.episodes)) == (True, True, 1)
    slot.urgent = slot.dirty = False
    e.apply_batch("BTC", [Rec(1, b"BTC", encode_ticks(ticks[2:3]), stamp)], {}, stamp)
    assert (slot.urgent, slot.dirty) == (True, True)  # opened (and alerted)
    slot.urgent = slot.dirty = False
    e.apply_batch(
        "BTC", [Rec(2, b"BTC", encode(msgspec.structs.replace(ticks[2], receipt_ts_ns=T0 + 9 * MS)), stamp)], {}, stamp
    )
    assert (slot.urgent, slot.dirty) == (False, True)  # an open episode's counters moved


def test_a_funding_alert_makes_the_row_urgent() -> None:
    e = engine()
    stamp = T0 // MS
    other = msgspec.structs.replace(funding("0.001"), instrument_id="BTC-USDT-PERP@binance", venue="binance")
    out = e.apply_batch("BTC", [Rec(0, b"BTC", encode_ticks([funding("0"), other]), stamp)], {}, stamp)
    assert len(out.funding) == 1 and e.slots["BTC"].urgent


def test_rebuild_skips_insane_ticks_and_refills_funding() -> None:
    e = engine()
    e.load("BTC", None, applied_floor=3)
    nan = msgspec.structs.replace(GOOD, ask=Decimal("NaN"))
    e.rebuild("BTC", [nan, funding()])
    slot = e.slots["BTC"]
    assert (slot.state.quotes, slot.state.funding) == ({}, {"BTC-USDT-PERP@okx": funding()})
    assert (e.counters.rebuilt, slot.state.applied_offset) == (1, 3)


def test_a_rebuilt_quote_replaces_the_cached_float_copy() -> None:
    e = engine()
    stamp = T0 // MS
    e.apply_batch("BTC", [Rec(5, b"BTC", encode(GOOD), stamp)], {}, stamp)
    slot = e.slots["BTC"]
    assert GOOD.instrument_id in slot.fast.quotes
    slot.quotes_changed = False  # as after the symbol's prices record
    newer = quote("binance", "90", "90.01", T0 + MS)
    e.apply_batch("BTC", [Rec(5, b"BTC", encode(newer), stamp)], {}, stamp)  # offset already applied
    assert GOOD.instrument_id not in slot.fast.quotes and slot.state.quotes[GOOD.instrument_id] == newer
    assert slot.quotes_changed


def test_load_keeps_the_higher_of_the_row_and_the_committed_offset_and_drop_forgets() -> None:
    e = engine()
    e.load("BTC", SymbolState(applied_offset=7), applied_floor=3)
    e.load("ETH", SymbolState(applied_offset=2), applied_floor=5)
    assert (e.slots["BTC"].state.applied_offset, e.slots["ETH"].state.applied_offset) == (7, 5)
    assert e.drop("BTC") is not None and "BTC" not in e.slots and e.drop("BTC") is None


def test_the_changelog_row_keeps_everything_but_quotes() -> None:
    episode = Episode(buy_instrument_id="a", sell_instrument_id="b", start_ts_ns=T0)
    state = SymbolState(
        quotes={GOOD.instrument_id: GOOD},
        funding={"f": funding()},
        episodes={"a|b": episode},
        last_alert_ts_ns=T0,
        applied_offset=4,
    )
    row = persisted(state)
    assert row == SymbolState(
        funding={"f": funding()}, episodes={"a|b": episode}, last_alert_ts_ns=T0, applied_offset=4
    )
    assert state.quotes == {GOOD.instrument_id: GOOD}  # the live state keeps its quotes


def test_a_quote_of_another_symbol_is_rejected_with_its_offset_counted_applied() -> None:
    e = engine()
    stamp = T0 // MS
    eth: Quote = quote("okx", "1", "2", T0, base="ETH")
    e.apply_batch("BTC", [Rec(3, b"BTC", encode(eth), stamp)], {}, stamp)
    assert (e.counters.rejected, e.counters.processed, e.slots["BTC"].state.applied_offset) == (1, 0, 3)


def test_conflation_with_out_of_order_timestamps_waits_for_the_first_record() -> None:
    # Kafka timestamps need not grow with offsets: a later record may carry an older one.
    q = [quote("binance", "100", "100.1", T0 + i * MS) for i in range(3)]
    batch = [(1_000, [q[0]]), (900, [q[1]]), (1_000, [q[2]])]
    assert superseded(batch, 1_100, 100) == set()  # the first record is not behind yet
    assert superseded(batch, 1_101, 100) == {(0, 0), (1, 0)}
    assert superseded([(1_000, [q[0]]), (1_001, [q[1]])], 1_100, 1) == {(0, 0)}  # a 1 ms limit still conflates


def test_counters_and_outputs_accumulate_over_ticks_and_batches() -> None:
    e = engine(conflate_after_ms=100)
    stamp = T0 // MS
    binance = [quote("binance", "100", "100.1", T0 + i * MS) for i in range(3)]
    e.apply_batch("BTC", [Rec(i, b"BTC", encode(q), stamp) for i, q in enumerate(binance)], {}, stamp + 500)
    later = [quote("binance", "100", "100.1", T0 + (3 + i) * MS) for i in range(3)]
    e.apply_batch("BTC", [Rec(3 + i, b"BTC", encode(q), stamp) for i, q in enumerate(later)], {}, stamp + 500)
    assert (e.counters.conflated, e.counters.processed) == (4, 2)  # 2 + 2 conflated, 1 + 1 processed
    two_closes = [
        *dislocation(T0 + 10 * MS),
        quote("okx", "101", "101.01", T0 + 20 * MS),
        quote("okx", "101", "101.01", T0 + 21 * MS),
        quote("okx", "100", "100.01", T0 + 22 * MS),
    ]
    fresh = engine()
    out = fresh.apply_batch("BTC", [Rec(0, b"BTC", encode_ticks(two_closes), stamp)], {}, stamp)
    assert [c.ticks for c in out.closed] == [2, 2] and len(out.alerts) == 1  # the second is in cooldown


def test_funding_alerts_of_one_batch_all_come_out_with_their_symbol() -> None:
    e = engine()
    stamp = T0 // MS
    binance = msgspec.structs.replace(funding("0.001"), instrument_id="BTC-USDT-PERP@binance", venue="binance")
    gate = msgspec.structs.replace(funding("0.002"), instrument_id="BTC-USDT-PERP@gate", venue="gate")
    out = e.apply_batch("BTC", [Rec(0, b"BTC", encode_ticks([funding("0"), binance, gate]), stamp)], {}, stamp)
    # Three funding episodes open; the per-symbol cooldown lets the first alert and the second
    # (twice the first's net APR breaks it), not the third (processors.funding).
    assert [(a.symbol, a.long.venue, a.short.venue, a.cooldown_broken) for a in out.funding] == [
        ("BTC", "okx", "binance", False),
        ("BTC", "okx", "gate", True),
    ]
    assert len(e.slots["BTC"].state.funding_episodes) == 3


def test_every_reject_is_logged_with_symbol_offset_and_reason_then_throttled(caplog: pytest.LogCaptureFixture) -> None:
    e = engine()
    stamp = T0 // MS
    with caplog.at_level(logging.ERROR, logger="processors.engine"):
        e.apply_batch("BTC", [Rec(3, b"BTC", None, stamp)], {}, stamp)
        e.apply_batch("BTC", [Rec(4, b"BTC", encode(quote("okx", "1", "2", T0, base="ETH")), stamp)], {}, stamp)
    assert [r.getMessage() for r in caplog.records] == [
        "rejected tick BTC@3: undecodable: Input data was truncated (1 rejected so far)",
        "rejected tick BTC@4: base 'ETH' on 'BTC''s topic (2 rejected so far)",
    ]
    caplog.clear()
    bad = encode(GOOD).replace(b'"bid":"100"', b'"bid":"NaN"')
    with caplog.at_level(logging.ERROR, logger="processors.engine"):
        for offset in range(5, 14):  # rejects 3..11: the 11th is past the first ten, not logged
            e.apply_batch("BTC", [Rec(offset, b"BTC", bad, stamp)], {}, stamp)
        e.counters.rejected = 9_999
        e.apply_batch("BTC", [Rec(14, b"BTC", bad, stamp)], {}, stamp)  # the 10,000th is logged
        e.apply_batch("BTC", [Rec(15, b"BTC", bad, stamp)], {}, stamp)
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 9 and logged[-1] == "rejected tick BTC@14: unusable number NaN (10000 rejected so far)"
    assert logged[0] == "rejected tick BTC@5: unusable number NaN (3 rejected so far)"


def test_a_failing_step_is_rejected_with_the_exception_named(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Decode-time checks leave no known input that makes the arithmetic raise: force one.
    def boom(*_: object, **__: object) -> None:
        raise decimal.DivisionByZero("division by zero")

    e = engine()
    stamp = T0 // MS
    monkeypatch.setattr("processors.engine.process_quote", boom)
    with caplog.at_level(logging.ERROR, logger="processors.engine"):
        e.apply_batch("BTC", [Rec(7, b"BTC", encode(GOOD), stamp)], {}, stamp)
    assert [r.getMessage() for r in caplog.records] == [
        "rejected tick BTC@7: DivisionByZero: division by zero (1 rejected so far)"
    ]
    assert (e.counters.rejected, e.counters.processed, e.slots["BTC"].state.applied_offset) == (1, 0, 7)
