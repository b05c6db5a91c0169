"""The engine's own rules at their boundaries: which numbers are insane, when conflation starts,
which flags tell the host to write the row, what a rebuild refills, what the changelog row holds."""

from __future__ import annotations

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
    assert (slot.urgent, slot.dirty, slot.changed_quotes) == (False, False, {GOOD.instrument_id: GOOD})
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
    newer = quote("binance", "90", "90.01", T0 + MS)
    e.apply_batch("BTC", [Rec(5, b"BTC", encode(newer), stamp)], {}, stamp)  # offset already applied
    assert GOOD.instrument_id not in slot.fast.quotes and slot.state.quotes[GOOD.instrument_id] == newer
    assert slot.changed_quotes[GOOD.instrument_id] == newer


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
