"""Event time (issue 13 item 9) and the per-tick guards of items 1 and 3, without Kafka.

Episodes close when their symbol's ticks stop (dated at the leg's expiry, the same record whether
the symbol's next tick or the worker's sweep finds it); health is looked up at each tick's
receipt time; a quote older than the one held is ignored and counted; a failing step leaves
nothing behind; every rejected tick comes out for the dead-letter topic with its reason.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from arbstream.backtest import worker_settings
from arbstream.backtest.run import run_backtest
from processors.arbitrage import ArbConfig, expire_episodes, process_quote
from processors.engine import Emitted, Engine, older
from processors.event_time import EventClock
from processors.health_view import HealthView
from schemas.arbitrage import SymbolState
from schemas.market import Health, HealthState, Quote, encode, encode_ticks
from tests.test_engine import CONFIG, MS, T0, Rec, engine, quote

S = 1_000 * MS
MAX_AGE = CONFIG.max_age_ns("okx")  # 3 s


def opening(ts: int, base: str = "BTC") -> list[Quote]:
    """binance at 100, okx bid 1 % higher twice: an open (alerted) episode, last evaluated at ts + 2 ms."""
    return [
        quote("binance", "99.99", "100", ts, base),
        quote("okx", "101", "101.01", ts + 1 * MS, base),
        quote("okx", "101", "101.01", ts + 2 * MS, base),
    ]


def feed(e: Engine, base: str, quotes: list[Quote], first_offset: int = 0, health: HealthView | None = None) -> Emitted:
    out = Emitted()
    for i, q in enumerate(quotes):
        rec = Rec(first_offset + i, base.encode(), encode(q), q.receipt_ts_ns // MS)
        step = e.apply_batch(base, [rec], health if health is not None else {}, rec.timestamp)
        out.alerts += step.alerts
        out.closed += step.closed
        out.rejected += step.rejected
    return out


# --- episodes close on staleness, dated at the expiry ----------------------------------------


def test_the_sweep_closes_a_silent_symbol_s_episode_exactly_as_its_next_tick_would() -> None:
    swept, ticked = engine(), engine()
    for e in (swept, ticked):
        assert len(feed(e, "BTC", opening(T0)).alerts) == 1
    expiry = T0 + MAX_AGE  # binance's quote (T0) is the older leg
    assert swept.sweep("BTC", expiry).closed == []  # not past the expiry yet
    (by_sweep,) = swept.sweep("BTC", expiry + 1).closed
    assert swept.slots["BTC"].urgent and not swept.slots["BTC"].state.episodes
    # The other engine learns it from the symbol's next tick, 10 s later: binance quotes again.
    (by_tick,) = feed(ticked, "BTC", [quote("binance", "99.99", "100", T0 + 10 * S)], first_offset=3).closed
    assert by_sweep == by_tick
    assert (by_sweep.end_ts_ns, by_sweep.duration_ms, by_sweep.ticks) == (expiry, 3_000 - 1, 2)
    assert by_sweep.close_reason == "stale quote: no binance quote for 3000 ms"
    assert swept.sweep("BTC", expiry + 10 * S).closed == []  # closed once


def test_a_leg_that_goes_silent_then_comes_back_ends_its_episode_at_the_expiry() -> None:
    """Without the expiry before the tick, okx's fresh quote 5 s later would extend the episode
    though binance's leg was stale in between: a sweep would have closed it, so live and backtest
    would differ with the sweep's timing."""
    e = engine()
    feed(e, "BTC", opening(T0))
    later = T0 + 5 * S
    out = feed(e, "BTC", [quote("binance", "99.99", "100", later), quote("okx", "101", "101.01", later + MS)], 3)
    assert [(c.end_ts_ns, c.ticks) for c in out.closed] == [(T0 + MAX_AGE, 2)]
    assert e.slots["BTC"].state.episodes[f"{opening(T0)[0].instrument_id}|{opening(T0)[1].instrument_id}"].ticks == 1


def test_a_pending_episode_expires_silently_and_the_per_venue_age_sets_the_expiry() -> None:
    config = ArbConfig(taker_fees={}, min_ticks=5, max_age_ms_by_venue={"okx": 500})
    state = SymbolState()
    for q in opening(T0):
        process_quote("BTC", state, q, {}, q.receipt_ts_ns, config)
    assert not next(iter(state.episodes.values())).opened
    okx_expiry = T0 + 2 * MS + 500 * MS  # okx's 0.5 s, sooner than binance's 3 s
    assert expire_episodes(state, okx_expiry, config).transitions == 0
    outcome = expire_episodes(state, okx_expiry + 1, config)
    assert (outcome.transitions, outcome.closed, state.episodes) == (1, [], {})


def test_the_backtest_closes_a_silent_symbol_s_episode_by_the_other_symbols_time() -> None:
    """BTC's ticks stop after its dislocation; ETH keeps quoting. The backtest closes BTC's episode at
    its expiry, as the live worker's sweep does, and twice the same way."""
    eth = [q for s in range(12) for q in (quote("binance", "9.99", "10", T0 + s * S, "ETH"),)]
    events = sorted([*opening(T0), *eth], key=lambda q: q.receipt_ts_ns)
    settings = worker_settings({"min_ticks": "2"})
    first, second = run_backtest(events, settings), run_backtest(events, settings)
    assert [(c.symbol, c.end_ts_ns, c.close_reason) for c in first.closed] == [
        ("BTC", T0 + MAX_AGE, "stale quote: no binance quote for 3000 ms")
    ]
    assert first.closed == second.closed and first.still_open == []


def test_the_backtest_leaves_open_what_expires_within_the_grace_of_the_recording_s_end() -> None:
    events = [*opening(T0), quote("binance", "9.99", "10", T0 + MAX_AGE + 500 * MS, "ETH")]
    result = run_backtest(events, worker_settings({"min_ticks": "2"}))  # grace 1 s: 0.5 s past expiry
    assert (result.closed, [o.symbol for o in result.still_open]) == ([], ["BTC"])


# --- the event-time clock ----------------------------------------------------------------------


def test_the_clock_follows_the_newest_tick_and_then_the_wall_clock() -> None:
    wall = [1_000]
    clock = EventClock(lambda: wall[0])
    assert clock.now() is None
    clock.observe(T0)
    wall[0] += 400
    assert clock.now() == T0 + 400
    clock.observe(T0 - S)  # an older tick moves nothing
    assert clock.now() == T0 + 400
    clock.observe(T0 + 100)  # newer tick: the wall-clock part restarts from it
    assert clock.now() == T0 + 100
    wall[0] += 50
    assert clock.now() == T0 + 150


# --- health in event time ---------------------------------------------------------------------


def health(state: HealthState, ts: int, connection: str = "okx-0", venue: str = "okx") -> Health:
    return Health(venue=venue, connection=connection, state=state, exchange_ts_ns=ts, receipt_ts_ns=ts)


def test_health_is_looked_up_at_the_tick_s_receipt_time() -> None:
    view = HealthView()
    view.apply(health(HealthState.STREAMING, T0))
    view.apply(health(HealthState.DISCONNECTED, T0 + 10 * S))
    view.apply(health(HealthState.STREAMING, T0 + 20 * S))
    view.apply(health(HealthState.STREAMING, T0 + 25 * S))  # a periodic report: no new point
    assert "okx" not in view.at(T0 - 1)
    assert view.at(T0 + 10 * S - 1)["okx"].state is HealthState.STREAMING
    assert view.at(T0 + 10 * S)["okx"].state is HealthState.DISCONNECTED
    assert view.at(T0 + 19 * S)["okx"].state is HealthState.DISCONNECTED
    assert view.at(T0 + 30 * S) is view.by_venue and view.by_venue["okx"].receipt_ts_ns == T0 + 25 * S


def test_a_report_read_late_is_placed_at_its_time_and_any_down_connection_counts() -> None:
    view = HealthView()
    view.apply(health(HealthState.STREAMING, T0, "a"))
    view.apply(health(HealthState.STREAMING, T0, "b"))
    view.apply(health(HealthState.GAP, T0 + 20 * S, "a"))
    view.apply(health(HealthState.STALE, T0 + 10 * S, "b"))  # b's partition is read after a's
    view.apply(health(HealthState.STREAMING, T0 + 15 * S, "b"))
    assert view.late == 0  # each connection's own reports came in order
    view.apply(health(HealthState.STREAMING, T0 + 30 * S, "b"))
    view.apply(health(HealthState.ERROR, T0 + 25 * S, "b"))  # this one is late for b itself
    assert view.late == 1
    states = {t: (view.at(T0 + t * S)["okx"].state, view.at(T0 + t * S)["okx"].connection) for t in (9, 12, 16, 21)}
    assert states == {
        9: (HealthState.STREAMING, "b"),
        12: (HealthState.STALE, "b"),
        16: (HealthState.STREAMING, "b"),
        21: (HealthState.GAP, "a"),
    }
    view.apply(health(HealthState.STREAMING, T0 + 40 * S, "a"))
    assert view.at(T0 + 26 * S)["okx"].connection == "a"  # a's gap and b's error: the first down one
    assert view.at(T0 + 41 * S)["okx"].state is HealthState.STREAMING  # b back at 30 s, a at 40 s


def test_old_changes_fold_into_the_first_kept_point() -> None:
    view = HealthView(keep_ns=60 * S)
    view.apply(health(HealthState.DISCONNECTED, T0))
    view.apply(health(HealthState.STREAMING, T0 + 10 * S))
    view.apply(health(HealthState.STALE, T0 + 100 * S))
    view.apply(health(HealthState.STREAMING, T0 + 200 * S))
    assert len(view._times) == 2  # the points older than 60 s behind the newest are folded
    assert view.at(T0 + 150 * S)["okx"].state is HealthState.STALE
    assert view.at(T0)["okx"].state is HealthState.STALE  # before the kept history: its first state


def test_a_tick_received_before_the_venue_went_down_still_counts() -> None:
    """Live order: the worker read okx's disconnect (at T0 + 1 s) before BTC's older ticks. In event
    time those ticks saw a healthy okx: the alert stands; ticks after the disconnect close it."""
    view = HealthView()
    view.apply(health(HealthState.STREAMING, T0 - S))
    view.apply(health(HealthState.DISCONNECTED, T0 + S))
    e = engine()
    assert len(feed(e, "BTC", opening(T0), health=view).alerts) == 1
    out = feed(e, "BTC", [quote("binance", "99.99", "100", T0 + 2 * S)], 3, health=view)
    assert [c.close_reason for c in out.closed] == ["venue disconnected"]


# --- item 3: an older quote never replaces a newer one --------------------------------------


def test_older_is_by_exchange_time_then_sequence_then_sameness() -> None:
    held = msgspec.structs.replace(quote("okx", "100", "100.1", T0), sequence=7)
    assert older(msgspec.structs.replace(held, exchange_ts_ns=T0 - 1, sequence=99), held)
    assert not older(msgspec.structs.replace(held, exchange_ts_ns=T0 + 1, sequence=1), held)  # reset sequence
    assert older(msgspec.structs.replace(held, bid=Decimal("99")), held)  # same time, same sequence
    assert not older(msgspec.structs.replace(held, sequence=8), held)
    unsequenced = quote("okx", "100", "100.1", T0)
    assert older(unsequenced, unsequenced)  # the same quote again (a re-sent record)
    assert not older(msgspec.structs.replace(unsequenced, bid=Decimal("99.9")), unsequenced)


def test_an_older_quote_is_ignored_and_counted_and_cannot_open_an_episode() -> None:
    e = engine()
    feed(e, "BTC", [quote("binance", "99.99", "100", T0), quote("okx", "99.99", "100", T0 + 10 * MS)])
    # okx's dislocated quotes were delayed upstream: their exchange time is before the held one.
    dislocated = quote("okx", "101", "101.01", T0 + 20 * MS)
    late = [msgspec.structs.replace(dislocated, exchange_ts_ns=T0 + i * MS) for i in (5, 6)]
    out = feed(e, "BTC", late, first_offset=2)
    assert (out.alerts, e.slots["BTC"].state.episodes) == ([], {})
    assert (e.counters.out_of_order, e.counters.processed) == (2, 2)
    assert e.slots["BTC"].state.quotes["BTC-USDT-PERP@okx"].bid == Decimal("99.99")


# --- item 1: a failing step leaves nothing behind, every rejection is dead-lettered ------------


def test_a_failing_step_restores_the_held_quote_so_the_symbol_keeps_working(monkeypatch: pytest.MonkeyPatch) -> None:
    e = engine()
    feed(e, "BTC", [quote("binance", "99.99", "100", T0), quote("okx", "99.99", "100", T0 + MS)])
    real = process_quote

    def fails_on_102(symbol: str, state: Any, q: Quote, *args: Any, **kwargs: Any) -> Any:
        out = real(symbol, state, q, *args, **kwargs)
        if q.bid == Decimal("102"):
            raise decimal.InvalidOperation("boom")
        return out

    monkeypatch.setattr("processors.engine.process_quote", fails_on_102)
    out = feed(e, "BTC", [quote("okx", "102", "102.01", T0 + 2 * MS)], first_offset=2)
    assert [r.reason for r in out.rejected] == ["InvalidOperation: boom"]
    assert e.slots["BTC"].state.quotes["BTC-USDT-PERP@okx"].bid == Decimal("99.99")
    assert "BTC-USDT-PERP@okx" not in e.slots["BTC"].fast.quotes
    monkeypatch.setattr("processors.engine.process_quote", real)
    assert len(feed(e, "BTC", opening(T0 + 3 * MS)[1:], first_offset=3).alerts) == 1  # not poisoned


def test_a_number_too_small_for_a_float_is_rejected_before_it_can_poison_the_pre_filter() -> None:
    e = engine()
    tiny = quote("okx", "1E-400", "2E-400", T0 + MS)
    out = feed(e, "BTC", [quote("binance", "99.99", "100", T0), tiny, *opening(T0 + 2 * MS)[1:]])
    assert [r.reason for r in out.rejected] == ["unusable number 1E-400"]
    assert len(out.alerts) == 1


def test_every_rejection_carries_its_offset_reason_and_payload() -> None:
    e = engine()
    nan = quote("okx", "NaN", "100", T0)
    batch = Rec(4, b"BTC", encode_ticks([quote("binance", "99", "100", T0), nan]), T0 // MS)
    garbage = Rec(5, b"BTC", b"\xff{not json", T0 // MS)
    out = e.apply_batch("BTC", [batch, garbage], {}, T0 // MS)
    # In offset order, though the undecodable record is found before any tick is applied.
    assert [(r.offset, r.reason.split(":")[0], r.payload) for r in out.rejected] == [
        (4, "unusable number NaN", encode(nan)),
        (5, "undecodable", b"\xff{not json"),
    ]
    assert (e.counters.rejected, e.counters.processed) == (2, 1)
