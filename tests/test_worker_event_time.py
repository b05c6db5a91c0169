"""The worker on the real broker: episodes close when ticks stop, health in event time, older quotes
ignored, rejected ticks dead-lettered, idempotent re-application (issue 13 items 1, 2, 3, 9).

Each test would fail with its rule removed: no sweep (the episode never closes), health applied
when read (the alert is never sent), no older-quote guard (a phantom alert), no dead letter (no
record), no applied offset (the alert fires on a re-read tick).
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import msgspec
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from ingest.publisher import tick_records
from plumbing.kafka import symbol_partition, symbol_partitioner
from processors.app import prepare_topics
from processors.engine import Engine, persisted
from processors.settings import WorkerSettings
from schemas.arbitrage import (
    EpisodeClosed,
    FundingEpisodeClosed,
    FundingOpportunity,
    Opportunity,
    RejectedTick,
    decode_event,
    decode_funding_event,
    decode_state,
    decode_worker_stats,
)
from schemas.arbitrage import encode as encode_arb
from schemas.market import Funding, Health, HealthState, Quote, encode, encode_ticks
from schemas.topics import (
    FUNDING_OPPORTUNITIES,
    HEALTH,
    OPPORTUNITIES,
    OPPORTUNITY_EPISODES,
    REJECTED_TICKS,
    WORKER_STATS,
    symbols_changelog,
    topic_name,
)
from tests.helpers import TopicWatcher, running
from tests.test_engine import Rec
from tests.test_processors_faust import send_records
from tests.test_processors_pipeline import MS, dislocation, tick, worker_env

pytestmark = pytest.mark.integration
S = 1_000 * MS
T = TypeVar("T", Opportunity, EpisodeClosed)


def opening(base: str, t: int) -> list[Quote]:
    """binance at 100/100.01, okx's bid 1 % above twice: an episode that opens and alerts."""
    return dislocation(base, t, 100)[:3]


async def send_raw(bootstrap: str, topic: str, key: bytes, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, partitioner=symbol_partitioner)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def on(records: list[ConsumerRecord[bytes, bytes]], *topics: str) -> list[ConsumerRecord[bytes, bytes]]:
    return [r for r in records if r.topic in topics]


def of_type(records: list[ConsumerRecord[bytes, bytes]], kind: type[T]) -> list[T]:
    return [e for e in (decode_event(r.value) for r in records) if isinstance(e, kind)]


async def worker_ready(log: Path, symbol: str, namespace: str, timeout_s: float = 120) -> None:
    """Until the worker said Ready and its latest assignment holds the symbol's tick topic (a fixed
    sleep was too short on a loaded CI machine: ticks sent earlier were read by the rebuild)."""
    topic = topic_name(f"ticks.{symbol}", namespace)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if "[^Worker]: Ready" in text and topic in text.split("Setting newly assigned partitions")[-1]:
            await asyncio.sleep(1.0)  # the assignment's own start-up (recovery, first fetch)
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"worker not assigned {topic} within {timeout_s:.0f}s")


async def test_an_episode_whose_symbol_goes_silent_is_closed_and_its_row_cleared(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    env = {
        **worker_env(kafka_bootstrap, namespace, tmp_path, "BTC"),
        "ARBSTREAM_MAX_QUOTE_AGE_MS": "1500",
        "ARBSTREAM_WORKER_SWEEP_GRACE_MS": "200",
        "ARBSTREAM_WORKER_SWEEP_INTERVAL_MS": "200",
    }
    events = [topic_name(OPPORTUNITIES, namespace), topic_name(OPPORTUNITY_EPISODES, namespace)]
    changelog = symbols_changelog("arbstream", namespace)
    with running(["worker"], env, tmp_path / "w.log"):
        await worker_ready(tmp_path / "w.log", "BTC", namespace)
        async with TopicWatcher(kafka_bootstrap, [*events, changelog]) as watcher:
            t0 = time.time_ns()
            await send_records(kafka_bootstrap, tick_records(opening("BTC", t0), namespace))
            # Nothing else comes: no tick of BTC, none of any other symbol.
            await watcher.wait_for(lambda rs: of_type(on(rs, *events), EpisodeClosed), 30, "the close")
            await asyncio.sleep(1)  # the row written with the close
    (alert,) = of_type(on(watcher.records, *events), Opportunity)
    (closed,) = of_type(on(watcher.records, *events), EpisodeClosed)
    # Dated when binance's quote (t0, the older leg) expired, whenever the sweep ran.
    assert (closed.event_id, closed.end_ts_ns, closed.ticks) == (alert.event_id, t0 + 1_500 * MS, 2)
    assert closed.close_reason == "stale quote: no binance quote for 1500 ms"
    rows = [decode_state(r.value) for r in on(watcher.records, changelog) if r.key == b"BTC"]
    assert rows[-1].episodes == {}  # the API no longer lists it


async def test_health_is_applied_at_its_event_time_not_when_the_worker_read_it(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """okx's disconnect (at t0 + 5 s) is on the health topic before BTC's ticks of t0 are: in event
    time okx was fine then, so BTC alerts; ETH's ticks after the disconnect do not."""
    t0 = time.time_ns()
    health_topic = topic_name(HEALTH, namespace)
    reports = [
        Health(venue="okx", connection="okx-0", state=state, exchange_ts_ns=ts, receipt_ts_ns=ts)
        for state, ts in ((HealthState.STREAMING, t0 - 10 * S), (HealthState.DISCONNECTED, t0 + 5 * S))
    ]
    alerts = topic_name(OPPORTUNITIES, namespace)
    with running(["worker"], worker_env(kafka_bootstrap, namespace, tmp_path, "BTC,ETH"), tmp_path / "w.log"):
        await asyncio.sleep(6)  # the worker created the health topic
        await send_raw(kafka_bootstrap, health_topic, b"okx", [encode(h) for h in reports])
        await asyncio.sleep(3)  # and read both reports
        async with TopicWatcher(kafka_bootstrap, [alerts]) as watcher:
            await send_records(kafka_bootstrap, tick_records(opening("BTC", t0), namespace))
            await send_records(kafka_bootstrap, tick_records(opening("ETH", t0 + 6 * S), namespace))
            await watcher.wait_for(lambda rs: len(rs) >= 1, 30, "BTC's alert")
            await asyncio.sleep(3)  # an ETH alert would show up now
    assert [a.symbol for a in of_type(watcher.records, Opportunity)] == ["BTC"]


async def test_a_quote_older_than_the_one_held_is_ignored_and_counted(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """okx's dislocated quotes were delayed upstream (a retry): their exchange time is before the
    quote the worker holds. They must not replace it, so no episode opens; a newer one alerts."""
    t0 = time.time_ns()
    held = tick("SOL", "okx", "100", "100.01", t0 + 10 * MS)
    late = [  # received after `held`, stamped by the venue before it
        msgspec.structs.replace(
            tick("SOL", "okx", "101", "101.01", t0 + (20 + i) * MS), exchange_ts_ns=t0 + (4 + i) * MS
        )
        for i in range(2)
    ]
    fresh = opening("SOL", t0 + 30 * MS)[1:]
    alerts, stats = topic_name(OPPORTUNITIES, namespace), topic_name(WORKER_STATS, namespace)
    with running(["worker"], worker_env(kafka_bootstrap, namespace, tmp_path, "SOL"), tmp_path / "w.log"):
        await worker_ready(tmp_path / "w.log", "SOL", namespace)
        async with TopicWatcher(kafka_bootstrap, [alerts, stats]) as watcher:
            for batch in ([tick("SOL", "binance", "100", "100.01", t0), held], late, fresh):
                await send_records(kafka_bootstrap, tick_records(batch, namespace))
            await watcher.wait_for(lambda rs: any(r.topic == alerts for r in rs), 30, "the fresh quotes' alert")
            await watcher.wait_for(
                lambda rs: any(r.topic == stats and decode_worker_stats(r.value).processed >= 4 for r in rs),
                10,
                "stats",
            )
    (alert,) = of_type(on(watcher.records, alerts), Opportunity)
    assert alert.episode_start_ts_ns == fresh[0].receipt_ts_ns  # not the late quotes' episode
    final = decode_worker_stats(on(watcher.records, stats)[-1].value)
    assert (final.out_of_order, final.processed, final.rejected) == (2, 4, 0)


async def test_rejected_ticks_reach_the_dead_letter_topic_and_the_symbol_keeps_working(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    t0 = time.time_ns()
    nan = msgspec.structs.replace(tick("XRP", "okx", "1", "1.01", t0 + MS), bid=Decimal("NaN"))
    topic = topic_name("ticks.XRP", namespace)
    dead, alerts = topic_name(REJECTED_TICKS, namespace), topic_name(OPPORTUNITIES, namespace)
    with running(["worker"], worker_env(kafka_bootstrap, namespace, tmp_path, "XRP"), tmp_path / "w.log"):
        await worker_ready(tmp_path / "w.log", "XRP", namespace)
        async with TopicWatcher(kafka_bootstrap, [dead, alerts]) as watcher:
            await send_raw(
                kafka_bootstrap,
                topic,
                b"XRP",
                [encode_ticks([tick("XRP", "binance", "100", "100.01", t0), nan]), b"{oops"],
            )
            await send_records(kafka_bootstrap, tick_records(opening("XRP", t0 + 10 * MS)[1:], namespace))
            await watcher.wait_for(lambda rs: len(rs) >= 3, 30, "two dead letters and the alert")
    letters = [msgspec.json.decode(r.value, type=RejectedTick) for r in on(watcher.records, dead)]
    assert [(x.symbol, x.offset, x.reason) for x in letters] == [
        ("XRP", 0, "unusable number NaN"),
        ("XRP", 1, letters[1].reason),
    ]
    assert letters[1].reason.startswith("undecodable") and letters[1].payload == "{oops"
    assert (letters[0].payload, letters[0].topic) == (encode(nan).decode(), topic)  # NaN != NaN: compare text
    assert [a.symbol for a in of_type(on(watcher.records, alerts), Opportunity)] == ["XRP"]


async def test_ticks_the_restored_row_already_holds_are_not_counted_again(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """The changelog row is ahead of the committed offset (a worker died between writing the row and
    committing): the new owner re-reads ticks the row holds. Counting okx's first tick twice would
    open the episode on that re-read (a phantom evaluation); the alert must come from the third tick."""
    settings = WorkerSettings(
        kafka_bootstrap=kafka_bootstrap, namespace=namespace, symbols=["ADA"], min_ticks=2, topic_partitions=3
    )  # as worker_env
    await prepare_topics(kafka_bootstrap, settings)
    t0 = time.time_ns()
    binance, okx_first, okx_second = opening("ADA", t0)
    await send_records(kafka_bootstrap, tick_records([binance], namespace) + tick_records([okx_first], namespace))
    # The row a worker wrote after offsets 0 and 1: the episode pending with one evaluation.
    engine = Engine(settings.arb_config(), settings.funding_config(), 0)
    for offset, q in enumerate((binance, okx_first)):
        engine.apply_batch("ADA", [Rec(offset, b"ADA", encode_ticks([q]), q.receipt_ts_ns // MS)], {}, 0)
    row = persisted(engine.slots["ADA"].state)
    assert row.applied_offset == 1 and next(iter(row.episodes.values())).ticks == 1
    changelog = symbols_changelog("arbstream", namespace)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(changelog, encode_arb(row), key=b"ADA", partition=symbol_partition(b"ADA", 3))
    finally:
        await producer.stop()
    env = {**worker_env(kafka_bootstrap, namespace, tmp_path, "ADA"), "ARBSTREAM_MAX_QUOTE_AGE_MS": "120000"}
    alerts = topic_name(OPPORTUNITIES, namespace)
    async with TopicWatcher(kafka_bootstrap, [alerts]) as watcher:
        with running(["worker"], env, tmp_path / "w.log"):
            await asyncio.sleep(8)  # restored the row, re-read offsets 0 and 1 (no committed offset yet)
            phantom = list(watcher.records)
            await send_records(kafka_bootstrap, tick_records([okx_second], namespace))
            await watcher.wait_for(lambda rs: len(rs) >= 1, 30, "the alert of the real second evaluation")
            await asyncio.sleep(2)
    assert phantom == []
    (alert,) = of_type(watcher.records, Opportunity)
    assert (alert.detected_ts_ns, alert.episode_start_ts_ns) == (okx_second.receipt_ts_ns, okx_first.receipt_ts_ns)


async def test_a_funding_episode_the_sweep_closes_is_published(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    """A funding episode whose rates go stale with no funding tick after: the sweep closes it, and the
    close reaches the funding topic even though no price episode closed in the same sweep (it once
    did not: the sweep published only when a price episode closed)."""
    env = {
        **worker_env(kafka_bootstrap, namespace, tmp_path, "BTC"),
        "ARBSTREAM_FUNDING_HOLD_H": "8760",
        "ARBSTREAM_FUNDING_MAX_AGE_MS": "1500",
        "ARBSTREAM_MAX_QUOTE_AGE_MS": "120000",
        "ARBSTREAM_WORKER_SWEEP_GRACE_MS": "200",
        "ARBSTREAM_WORKER_SWEEP_INTERVAL_MS": "200",
    }
    t0 = time.time_ns()

    def rate(venue: str, value: str, interval_h: int, ts: int) -> Funding:
        return Funding(instrument_id=f"BTC-USDT-PERP@{venue}", venue=venue, native_symbol="BTCUSDT", base="BTC",
                       rate=Decimal(value), interval_h=interval_h, next_funding_ts_ns=t0 + 3_600 * S,
                       exchange_ts_ns=ts - MS, receipt_ts_ns=ts)  # fmt: skip

    # Equal books (no price episode); binance pays 0.02 %/8 h, okx 0.001 %/4 h: a funding episode.
    ticks: list[Quote | Funding] = [
        tick("BTC", "binance", "100", "100.01", t0),
        tick("BTC", "okx", "100", "100.01", t0 + MS),
        rate("binance", "0.0002", 8, t0 + 2 * MS),
        rate("okx", "0.0000100", 4, t0 + 3 * MS),
    ]
    funding_topic = topic_name(FUNDING_OPPORTUNITIES, namespace)
    with running(["worker"], env, tmp_path / "w.log"):
        await worker_ready(tmp_path / "w.log", "BTC", namespace)
        async with TopicWatcher(kafka_bootstrap, [funding_topic]) as watcher:
            await send_records(kafka_bootstrap, tick_records(ticks, namespace))
            await watcher.wait_for(lambda rs: len(rs) >= 2, 30, "the funding alert and its close")
    alert, closed = (decode_funding_event(r.value) for r in watcher.records)
    assert isinstance(alert, FundingOpportunity) and isinstance(closed, FundingEpisodeClosed)
    assert closed.event_id == alert.event_id == f"BTC:funding:okx/binance:{t0 + 3 * MS}"
    # Closed by the first sweep whose horizon passed binance's rate's expiry (the funding rule dates
    # a close at its evaluation time: the sweep's horizon).
    stale_at = t0 + 2 * MS + 1_500 * MS
    assert (closed.close_reason, closed.alerted) == ("stale funding rate", True), closed
    assert stale_at < closed.end_ts_ns < stale_at + 2 * S
