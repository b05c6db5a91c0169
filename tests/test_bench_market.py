"""The ``market`` bench stage's pure parts: ladder stepping, saturation, percentiles, the market mix,
the feed's dislocation planting, and the report rows. No timing is asserted anywhere: the bench
measures, tests only check that what it computes from its measurements is right."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from arbstream.bench.common import Plan, latency_summary, percentile
from arbstream.bench.kafka_io import OffsetProbe
from arbstream.bench.market_feed import MAX_PENDING, run_command, warm_up
from arbstream.bench.market_stage import (
    BACKLOG_TOLERANCE_S,
    GROWTH_TOLERANCE,
    LadderPlan,
    StepOutcome,
    counter_deltas,
    is_saturated,
    next_rate,
    overload_basis,
    per_10k,
    slope,
    sustained_rate,
)
from arbstream.bench.procs import Service
from arbstream.bench.report import summary_rows
from arbstream.bench.ticks import FUNDING_EVERY, STICKY_S, Planter, TickSource
from ingest.publisher import Publisher
from plumbing.errors import ConfigError
from plumbing.kafka import ensure_topics
from schemas.arbitrage import WorkerStats
from schemas.market import Funding, Quote, decode_ticks

PLAN = LadderPlan(start=2_500, cap=40_000, floor=300, step_s=4.0, catch_up_s=8.0)


def _ok(rate: int) -> StepOutcome:
    return StepOutcome(rate, saturated=False)


def _sat(rate: int) -> StepOutcome:
    return StepOutcome(rate, saturated=True)


def test_ladder_doubles_from_the_start_while_the_worker_keeps_up() -> None:
    assert next_rate([], PLAN) == 2_500
    assert next_rate([_ok(2_500)], PLAN) == 5_000
    assert next_rate([_ok(2_500), _ok(5_000), _ok(10_000)], PLAN) == 20_000


def test_ladder_ends_at_the_cap() -> None:
    assert next_rate([_ok(20_000)], PLAN) == 40_000
    assert next_rate([_ok(40_000)], PLAN) is None


def test_ladder_ends_at_the_first_saturated_step_above_a_sustained_one() -> None:
    steps = [_ok(2_500), _ok(5_000), _sat(10_000)]
    assert next_rate(steps, PLAN) is None
    assert sustained_rate(steps) == 5_000


def test_ladder_halves_while_no_step_was_sustained_and_stops_at_the_floor() -> None:
    assert next_rate([_sat(2_500)], PLAN) == 1_250
    assert next_rate([_sat(2_500), _sat(1_250)], PLAN) == 625
    assert next_rate([_sat(2_500), _sat(1_250), _sat(625)], PLAN) == 312
    assert next_rate([_sat(2_500), _sat(1_250), _sat(625), _sat(312)], PLAN) is None  # 156 < floor 300


def test_after_halving_down_the_first_kept_rate_is_the_knee() -> None:
    steps = [_sat(2_500), _ok(1_250)]
    assert next_rate(steps, PLAN) is None
    assert sustained_rate(steps) == 1_250


def test_a_feed_bound_step_ends_the_ladder_and_is_not_a_sustained_rate() -> None:
    steps = [_ok(2_500), StepOutcome(5_000, saturated=False, producer_limited=True)]
    assert next_rate(steps, PLAN) is None
    assert sustained_rate(steps) == 2_500
    assert sustained_rate([_sat(2_500)]) is None


def test_overload_triples_the_sustained_rate_or_else_the_best_processed_one() -> None:
    assert overload_basis(5_000, [4_900.0, 7_100.0]) == 5_000
    assert overload_basis(None, [390.5, 401.7, 180.0]) == 401
    assert overload_basis(None, [0.0, 0.2]) is None
    assert overload_basis(None, []) is None


def test_slope_is_the_least_squares_fit() -> None:
    assert slope([(0.0, 10.0), (1.0, 30.0), (2.0, 50.0)]) == pytest.approx(20.0)
    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)]) == pytest.approx(0.5)
    assert slope([(0.0, 5.0)]) == 0.0
    assert slope([(1.0, 5.0), (1.0, 9.0)]) == 0.0


def test_saturated_when_catch_up_is_missing_or_slow() -> None:
    flat = [(0.0, 0.0), (0.5, 0.0), (1.0, 0.0)]
    assert is_saturated(None, flat, 1_000.0)
    assert is_saturated(BACKLOG_TOLERANCE_S + 0.01, flat, 1_000.0)
    assert not is_saturated(BACKLOG_TOLERANCE_S, flat, 1_000.0)


def test_saturated_when_the_backlog_grows_by_more_than_a_tenth_of_the_offered_records_to_over_a_second() -> None:
    growing = [(0.0, 0.0), (1.0, 600.0), (2.0, 1_200.0)]  # +600 records/s, 1,200 waiting at the end
    assert is_saturated(0.2, growing, 1_000.0)
    assert not is_saturated(0.2, growing, 7_000.0)  # 600 < 10 % of 7,000
    assert not is_saturated(0.2, growing, 1_300.0)  # growing, but under a second of records waits


def test_a_commit_sawtooth_is_not_saturation() -> None:
    """Commits every 0.5 s: the backlog climbs to half a second of records and drops back."""
    sawtooth = [(0.0, 0.0), (0.5, 150.0), (1.0, 20.0), (1.5, 160.0), (2.0, 30.0), (2.5, 170.0), (3.0, 150.0)]
    assert slope(sawtooth) > GROWTH_TOLERANCE * 300.0
    assert not is_saturated(0.4, sawtooth, 300.0)


def test_cpu_per_10k_ticks() -> None:
    assert per_10k(0.5, 20_000.0) == pytest.approx(0.25)
    assert math.isnan(per_10k(0.5, 0.0))


def _stats(worker: str, processed: int, conflated: int, skipped_records: int = 0) -> WorkerStats:
    return WorkerStats(
        worker_id=worker,
        started_ts_ns=0,
        ts_ns=1,
        processed=processed,
        conflated=conflated,
        rebuilt=3,
        forwarded=0,
        rejected=1,
        partitions=3,
        lag_ms=0,
        skipped_records=skipped_records,
    )


def test_counter_deltas_sum_workers_and_count_a_new_worker_from_zero() -> None:
    before = {"a": _stats("a", 100, 10, 5)}
    after = {"a": _stats("a", 250, 40, 65), "b": _stats("b", 7, 2)}
    assert counter_deltas(before, after) == {
        "processed": 157,
        "conflated": 32,
        "rebuilt": 3,
        "rejected": 1,
        "skipped_records": 60,
    }


def test_percentiles_are_nearest_rank_observed_samples() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 50) == 500.0
    assert percentile(values, 99) == 990.0
    assert percentile(values, 99.9) == 999.0
    assert percentile([7.0], 99.9) == 7.0
    assert math.isnan(percentile([], 50))
    summary = latency_summary([3.0, 1.0, 2.0])
    assert summary == {"samples": 3, "p50_ms": 2.0, "p99_ms": 3.0, "p99_9_ms": 3.0, "max_ms": 3.0}


@pytest.fixture(scope="module")
def market() -> TickSource:
    return TickSource.market_mix()


def test_market_mix_is_the_whole_heavy_tailed_market(market: TickSource) -> None:
    assert market.order is not None
    bases = {i.base for i in market.instruments}
    assert len(bases) == 480
    assert {"BTC", "ETH"} <= bases
    counts = Counter(market.order)
    busiest, typical = counts.most_common(1)[0][1], sorted(counts.values())[len(counts) // 2]
    assert busiest > 10 * typical  # a few busy instruments, a long tail
    assert TickSource.market_mix().order == market.order  # the same seed gives the same mix


def test_market_mix_events_follow_the_order_with_funding_every_tenth(market: TickSource) -> None:
    assert market.order is not None
    events = list(market.events(2 * FUNDING_EVERY))
    assert [k for k, _ in events] == market.order[: 2 * FUNDING_EVERY]
    kinds = [isinstance(e, Funding) for _, e in events]
    assert kinds.count(True) == 2 and kinds[FUNDING_EVERY - 1] and kinds[-1]


def test_plain_planter_dislocates_every_nth_tick(market: TickSource) -> None:
    planter = Planter(market, per_s=20, sticky=False)
    assert planter.dislocate_every(10_000) == 500
    assert planter.dislocate_every(100) == 20  # never more often than one tick in 20
    slot = list(planter.slot(0, 1_000, 10_000, now=0.0))
    dislocated = [i for i, e in enumerate(slot) if e in market.dislocated and e not in market.normal]
    assert dislocated == [0, 500]


def test_sticky_planter_holds_the_slot_leaders_quotes_dislocated(market: TickSource) -> None:
    assert market.order is not None
    planter = Planter(market, per_s=20, sticky=True)
    target = market.order[0]
    first = list(planter.slot(0, 200, 10_000, now=100.0))
    assert planter.target == target
    for (k, original), sent in zip(market.events(200), first, strict=True):
        wanted = market.dislocated[k] if k == target and isinstance(original, Quote) else original
        assert sent == wanted
    # After STICKY_S the target's quotes are normal again, until the next plant (1/20 s later).
    later = list(planter.slot(200, 200, 10_000, now=100.0 + STICKY_S + 0.001))
    assert later == [e for _, e in market.events(200, start=200)]


def test_plan_mix_is_checked() -> None:
    assert Plan.make(quick=True).mix == "market"
    assert Plan.make(quick=True, mix="bench").mix == "bench"
    with pytest.raises(ConfigError, match="unknown tick mix"):
        Plan.make(quick=True, mix="everything")


def test_workers_run_profiled_when_the_bench_is_told_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    worker, api = Service(["worker"], {}, tmp_path / "w.log"), Service(["api"], {}, tmp_path / "a.log")
    monkeypatch.delenv("ARBSTREAM_BENCH_PROFILE", raising=False)
    assert worker.command()[1:] == ["-m", "arbstream.cli", "worker"]
    monkeypatch.setenv("ARBSTREAM_BENCH_PROFILE", str(tmp_path / "prof"))
    assert worker.command()[1:] == ["-m", "arbstream.bench.profiled", str(tmp_path / "prof" / "w.profile"), "worker"]
    assert api.command()[1:] == ["-m", "arbstream.cli", "api"]


def _step(rate: int, saturated: bool) -> dict[str, object]:
    return {
        "offered_ticks_per_s": rate,
        "sent_ticks_per_s": rate * 0.99,
        "ticks_per_record": 1.4,
        "processed_ticks_per_s": rate * 0.98,
        "saturated": saturated,
        "producer_limited": False,
        "worker_counts": {"processed": 900, "conflated": 120, "rebuilt": 0, "rejected": 0},
        "cpu_cores_per_10k_ticks_per_s": {"feed": 0.4, "worker": 1.6, "broker": 0.3, "bench": 0.1},
        "tick_to_opportunity": {"samples": 80, "p50_ms": 12.0, "p99_ms": 40.5, "p99_9_ms": 41.0, "max_ms": 41.0},
    }


def test_report_rows_of_the_market_stage() -> None:
    stage = {
        "bases": 480,
        "instruments": 3966,
        "partitions": 3,
        "sustained_ticks_per_s": 2_500,
        "idle_cpu_cores": {"feed": 0.0, "worker": 0.314, "broker": 0.05, "bench": 0.01},
        "ladder": [_step(2_500, False), {**_step(5_000, True), "cpu_cores": {"broker": 0.4, "broker_jit": 0.25}}],
        "overload": _step(7_500, True),
    }
    rows = summary_rows({"market": stage})
    assert rows[0][1].startswith("sustained ticks/s end to end") and rows[0][2] == "2,500"
    assert rows[1][1].startswith("worker CPU cores with no ticks") and rows[1][2] == "0.31"
    assert "keeps up" in rows[2][1] and "120 conflated / 900 processed" in rows[2][1]
    assert "worker 1.60" in rows[2][1] and rows[2][2] == "12.0 / 40.5 / 41.0"
    assert "SATURATED" in rows[3][1] and "broker 0.30 (+ broker JIT compiling 0.25 cores)" in rows[3][1]
    assert "JIT" not in rows[2][1]
    assert rows[4][1].startswith("OVERLOAD") and "7,500/s offered" in rows[4][1]


@pytest.mark.integration
async def test_feed_publishes_every_offered_tick_through_ingests_publisher(
    kafka_bootstrap: str, namespace: str
) -> None:
    """The market feed's step against the real broker: what it reports is what the topics hold."""
    source = TickSource.build()  # BTC and ETH: the feed's logic, without creating 480 topics
    topics = source.topics(namespace)
    await ensure_topics(kafka_bootstrap, topics, 3)
    publisher = Publisher(kafka_bootstrap, namespace, MAX_PENDING)
    await publisher.start()
    try:
        await warm_up(publisher, source)
        warm_records = publisher.stats.records
        step = await run_command(
            publisher, source, {"rate": 400, "duration_s": 0.5, "dislocations_per_s": 20, "sticky": False}
        )
    finally:
        await publisher.stop()
    assert step["flushed"] is True
    assert step["sent_ticks"] > 0
    assert step["delivered_ticks"] == step["sent_ticks"]
    assert step["lost_ticks"] == 0 == step["conflated_in_ingest"]
    async with OffsetProbe(kafka_bootstrap, 3) as probe:
        assert await probe.total(topics) == warm_records + step["records"]
    ticks = await _read_ticks(kafka_bootstrap, topics)
    assert len(ticks) == len({q.base for q in source.normal}) + step["sent_ticks"]  # warm-up: one per symbol
    dislocated = [t for t in ticks if isinstance(t, Quote) and any(t.bid == d.bid for d in source.dislocated)]
    assert len(dislocated) == len(range(0, step["sent_ticks"], Planter(source, 20, False).dislocate_every(400)))


async def _read_ticks(bootstrap: str, topics: list[str]) -> list[Quote | Funding]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    ticks: list[Quote | Funding] = []
    try:
        while batch := await consumer.getmany(timeout_ms=2_000):
            for records in batch.values():
                ticks += [tick for record in records for tick in decode_ticks(record.value or b"")]
    finally:
        await consumer.stop()
    return ticks
