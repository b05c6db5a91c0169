"""The worker's per-tick path without Kafka: pre-filter, conflation, re-application after a failover,
rejected numbers, and the API read model fed by the ``prices`` topic instead of the changelog."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from api.readmodel import Changes, ReadModel
from processors.arbitrage import ArbConfig, FastBook, process_quote
from processors.engine import Engine, persisted, superseded
from processors.funding import FundingConfig
from processors.settings import DEFAULT_TAKER_FEES
from schemas.arbitrage import SymbolState
from schemas.market import ContractKind, Quote, encode

MS = 1_000_000
T0 = 1_800_000_000_000 * MS
CONFIG = ArbConfig(taker_fees=dict(DEFAULT_TAKER_FEES), min_ticks=2, cooldown_s=60)
VENUES = ("binance", "okx", "bybit", "gate")


def quote(venue: str, bid: str, ask: str, ts: int, base: str = "BTC", quote_ccy: str = "USDT") -> Quote:
    return Quote(
        instrument_id=f"{base}-{quote_ccy}-PERP@{venue}",
        venue=venue,
        native_symbol=f"{base}{quote_ccy}",
        base=base,
        quote=quote_ccy,  # as ingest sets them from the Instrument
        kind=ContractKind.LINEAR,
        bid=Decimal(bid),
        bid_size=Decimal("1"),
        ask=Decimal(ask),
        ask_size=Decimal("2"),
        exchange_ts_ns=ts,
        receipt_ts_ns=ts,
    )


@dataclass(frozen=True)
class Rec:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


def records(quotes: list[Quote], first_offset: int = 0, timestamp_ms: int = 0) -> list[Rec]:
    return [
        Rec(first_offset + i, q.instrument_id.encode(), encode(q), timestamp_ms or q.receipt_ts_ns // MS)
        for i, q in enumerate(quotes)
    ]


def engine(conflate_after_ms: int = 0) -> Engine:
    return Engine(CONFIG, FundingConfig(), conflate_after_ms)


# A price around 100 with spreads that straddle the open (0.0015) and close (0.0005) thresholds
# once fees (~0.001 for two legs) are counted: the pre-filter's margin is what is under test.
prices = st.integers(min_value=99_500, max_value=100_600).map(lambda n: Decimal(n) / 1000)
ticks = st.lists(
    st.tuples(st.sampled_from(VENUES), prices, st.integers(min_value=1, max_value=400), st.integers(0, 50)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ticks)
def test_pre_filter_changes_nothing_but_the_cost(script: list[tuple[str, Decimal, int, int]]) -> None:
    exact, fast_state, fast = SymbolState(), SymbolState(), FastBook()
    t = T0
    for venue, bid, spread_ticks, gap_ms in script:
        t += gap_ms * MS
        q = quote(venue, str(bid), str(bid + Decimal(spread_ticks) / 1000), t)
        slow_out = process_quote("BTC", exact, q, {}, t, CONFIG)
        fast_out = process_quote("BTC", fast_state, q, {}, t, CONFIG, fast)
        assert (fast_out.alerts, fast_out.closed) == (slow_out.alerts, slow_out.closed)
        assert fast_state.episodes == exact.episodes
    assert fast_state == exact


def test_pre_filter_still_opens_an_exact_threshold_spread() -> None:
    # net = (bid - ask)/ask - 2 x 0.0005 = 0.0015 exactly: opens (>= threshold) with and without it.
    config = ArbConfig(taker_fees={"binance": Decimal("0.0005"), "okx": Decimal("0.0005")}, min_ticks=1)
    for fast in (None, FastBook()):
        state = SymbolState()
        process_quote("BTC", state, quote("binance", "99", "100", T0), {}, T0, config, fast)
        out = process_quote("BTC", state, quote("okx", "100.25", "100.3", T0 + MS), {}, T0 + MS, config, fast)
        assert [a.net_spread for a in out.alerts] == [Decimal("0.0015")], fast


def test_conflation_keeps_the_newest_quote_per_instrument_only_when_behind() -> None:
    qs = [quote("binance", "100", "100.1", T0 + i * MS) for i in range(3)] + [quote("okx", "100", "100.1", T0 + 3 * MS)]
    recs = records(qs)
    batch = [(r.timestamp, [q]) for r, q in zip(recs, qs, strict=True)]  # (timestamp, ticks) per record
    now_ms = T0 // MS + 500
    assert superseded(batch, now_ms, 100) == {(0, 0), (1, 0)}  # binance's first two; okx has only one
    assert superseded(batch, T0 // MS + 50, 100) == set()  # not behind: every tick is processed
    assert superseded(batch, now_ms, 0) == set()  # conflation off
    e = engine(conflate_after_ms=100)
    e.apply_batch("BTC", list(recs), {}, now_ms)
    assert (e.counters.conflated, e.counters.processed) == (2, 2)
    assert e.slots["BTC"].state.quotes["BTC-USDT-PERP@binance"] == qs[2]


def dislocation(t: int) -> list[Quote]:
    return [
        quote("binance", "100", "100.01", t),
        quote("okx", "101", "101.01", t + MS),
        quote("okx", "101", "101.01", t + 2 * MS),  # 2nd evaluation: opens, alerts
        quote("okx", "100", "100.01", t + 3 * MS),  # closes
    ]


def test_re_reading_ticks_the_restored_row_holds_neither_double_counts_nor_re_alerts() -> None:
    recs = records(dislocation(T0))
    first = engine()
    out = first.apply_batch("BTC", list(recs[:3]), {}, T0 // MS)
    assert len(out.alerts) == 1 and first.slots["BTC"].urgent
    row = persisted(first.slots["BTC"].state)
    assert row.quotes == {} and row.applied_offset == 2

    # A new owner restores the row and re-reads from offset 0 (the last seconds of ticks).
    second = engine()
    second.load("BTC", copy.deepcopy(row), applied_floor=-1)
    again = second.apply_batch("BTC", list(recs), {}, T0 // MS)
    assert again.alerts == []  # the alert is not sent twice
    assert [c.ticks for c in again.closed] == [2]  # counted once, not 4 times
    assert (second.counters.rebuilt, second.counters.processed) == (3, 1)
    assert set(second.slots["BTC"].state.quotes) == {"BTC-USDT-PERP@binance", "BTC-USDT-PERP@okx"}


def test_committed_offset_counts_as_applied_even_without_a_row() -> None:
    e = engine()
    e.load("BTC", None, applied_floor=2)
    out = e.apply_batch("BTC", list(records(dislocation(T0))), {}, T0 // MS)
    assert (out.alerts, e.counters.rebuilt, e.counters.processed) == ([], 3, 1)


def test_unusable_numbers_are_rejected_and_counted_before_touching_state() -> None:
    good = quote("binance", "100", "100.01", T0)
    bad = [
        encode(good).replace(b'"bid":"100"', b'"bid":"NaN"'),
        encode(good).replace(b'"ask":"100.01"', b'"ask":"Infinity"'),
        encode(good).replace(b'"bid":"100"', b'"bid":"1E+999999999"'),
        b'{"type":"quote","instrument_id":',
        encode(quote("okx", "1", "2", T0, base="ETH")),  # another symbol's tick on BTC's topic
    ]
    e = engine()
    e.apply_batch("BTC", [Rec(i, b"k", value, T0 // MS) for i, value in enumerate(bad)], {}, T0 // MS)
    assert (e.counters.rejected, e.counters.processed) == (5, 0)
    assert e.slots["BTC"].state.quotes == {}
    e.apply_batch("BTC", list(records([good], first_offset=5)), {}, T0 // MS)
    assert e.counters.processed == 1 and e.slots["BTC"].state.quotes == {good.instrument_id: good}


def test_read_model_takes_quotes_from_prices_and_episodes_from_rows() -> None:
    model, changes = ReadModel(), Changes()
    newer, older = quote("binance", "101", "101.1", T0 + MS), quote("binance", "100", "100.1", T0)
    model.apply_quotes("BTC", [newer], changes)
    model.apply_quotes("BTC", [older], changes)  # an older quote never replaces a newer one
    row = SymbolState(last_alert_ts_ns=T0, applied_offset=7)  # a changelog row: no quotes
    model.apply_state("BTC", row, changes)
    state = model.symbols["BTC"]
    assert state.quotes == {newer.instrument_id: newer}
    assert (state.last_alert_ts_ns, model.last_tick_ts_ns) == (T0, newer.receipt_ts_ns)
    assert changes.quotes == [("BTC", newer)]


def test_health_reports_every_workers_counters() -> None:
    from api.main import build_context, create_app
    from api.universe import Universe
    from schemas.arbitrage import WorkerStats
    from tests.test_api_support import get_json, scenario_settings, serve

    model = ReadModel()
    now = time.time_ns()
    model.apply_worker_stats(
        WorkerStats(
            worker_id="w1",
            started_ts_ns=now - 10**10,
            ts_ns=now,
            processed=900,
            conflated=70,
            rebuilt=20,
            forwarded=6,
            rejected=4,
            partitions=3,
            lag_ms=12,
            out_of_order=3,
        )
    )
    ctx = build_context(scenario_settings(), None, model=model, universe=Universe())
    with serve(create_app(ctx)) as url:
        _, health = get_json(url + "/health")
    (worker,) = health["workers"]
    outcomes = ("processed", "conflated", "rebuilt", "forwarded", "rejected", "out_of_order", "lag_ms")
    counts = {k: worker[k] for k in outcomes}
    assert (worker["worker_id"], counts) == (
        "w1",
        {
            "processed": 900,
            "conflated": 70,
            "rebuilt": 20,
            "forwarded": 6,
            "rejected": 4,
            "out_of_order": 3,
            "lag_ms": 12,
        },
    )
