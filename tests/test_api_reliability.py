"""Issue 13, items 5 and 6: supervised API tasks and the /health rule (items 7 and 8: test_api_startup).

Integration tests run the API in-process (uvicorn in a thread) against the real broker, so a
fault can be injected into the read model the follower feeds.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from api.context import ApiContext
from api.follower import Topics
from api.health_rule import ConnectionSignal, Signals, Thresholds, verdict
from api.main import build_context, create_app
from api.readmodel import Changes
from api.supervise import Backoff, Supervisor, TaskReport
from api.universe import Universe
from plumbing.kafka import ensure_topics
from schemas.arbitrage import WorkerStats
from schemas.arbitrage import encode as encode_event
from schemas.market import Health, HealthState
from schemas.market import encode as encode_market
from tests.test_api_support import get_json, health, in_process_model, scenario_settings, serve

DAY_MS = 86_400_000


# --- item 6: the /health rule, as a pure function -------------------------------------------------


def _signals(**overrides: Any) -> Signals:
    base: dict[str, Any] = {
        "loaded": True,
        "tasks": [TaskReport("read-model-follower", "running", True, 0, None, None, None)],
        "follower_live": True,
        "broker_reachable": True,
        "lag_total": 0,
        "connections": [
            ConnectionSignal("binance", "main", "streaming", 2.0),
            ConnectionSignal("okx", "main", "streaming", 3.0),
        ],
        "venues": {"binance", "okx"},
        "newest_tick_age_s": 0.5,
    }
    return Signals(**{**base, **overrides})


LIMITS = Thresholds(report_max_age_s=30, max_data_age_s=60, max_lag_records=100)
RESTARTING = TaskReport("read-model-follower", "restarting", True, 3, "RuntimeError('boom')", 1, 0.5)


@pytest.mark.parametrize(
    ("overrides", "status", "http", "reasons"),
    [
        ({}, "ok", 200, []),
        (
            {
                "connections": [
                    ConnectionSignal("binance", "main", "streaming", 2.0),
                    ConnectionSignal("okx", "main", "disconnected", 1.0),
                ]
            },
            "degraded",
            200,
            ["venue okx: main disconnected"],
        ),
        (
            {
                "connections": [
                    ConnectionSignal("binance", "main", "disconnected", 1.0),
                    ConnectionSignal("okx", "main", "stale", 1.0),
                ]
            },
            "down",
            503,
            ["no venue is streaming", "venue binance: main disconnected", "venue okx: main stale"],
        ),
        (  # "streaming" said long ago is not streaming now (ingest itself may be dead)
            {"connections": [ConnectionSignal("binance", "main", "streaming", 45.0)], "venues": {"binance"}},
            "down",
            503,
            ["no venue is streaming", "venue binance: no health report for 45s"],
        ),
        ({"venues": {"binance", "okx", "kucoin"}}, "degraded", 200, ["venue kucoin: no health report"]),
        ({"newest_tick_age_s": 75.0}, "down", 503, ["newest tick is 75s old (limit 60s)"]),
        ({"newest_tick_age_s": None}, "down", 503, ["no tick received"]),
        (
            {"tasks": [RESTARTING], "follower_live": False},
            "down",
            503,
            ["read-model-follower restarting (restarts 3, last error RuntimeError('boom'))"],
        ),
        ({"follower_live": False}, "down", 503, ["read model catching up after a restart"]),
        (
            {"tasks": [TaskReport("periodic-push", "restarting", False, 1, "KeyError('x')", 1, 1.0)]},
            "degraded",
            200,
            ["periodic-push restarting (restarts 1, last error KeyError('x'))"],
        ),
        (
            {"broker_reachable": False, "lag_total": 101},
            "degraded",
            200,
            ["broker unreachable", "consumer lag 101 records"],
        ),
        ({"broker_reachable": None}, "ok", 200, []),  # no broker configured (in-process model)
        ({"worker_report_ages_s": [1.0, 400.0]}, "ok", 200, []),  # one gone, one alive: still computing
        ({"worker_report_ages_s": [31.0, 400.0]}, "degraded", 200, ["no worker reporting (last report 31s ago)"]),
        ({"worker_report_ages_s": []}, "ok", 200, []),  # none ever reported (an API without workers yet)
        ({"loaded": False}, "starting", 503, ["read model loading"]),
    ],
)
def test_health_rule(overrides: dict[str, Any], status: str, http: int, reasons: list[str]) -> None:
    judged = verdict(_signals(**overrides), LIMITS)
    assert (judged.status, judged.http_status, judged.reasons) == (status, http, reasons)


def test_health_rule_venue_streams_only_if_every_connection_does() -> None:
    connections = [
        ConnectionSignal("bybit", "linear", "streaming", 1.0),
        ConnectionSignal("bybit", "inverse", "gap", 1.0),
        ConnectionSignal("okx", "main", "streaming", 1.0),
    ]
    judged = verdict(_signals(connections=connections, venues={"bybit", "okx"}), LIMITS)
    assert (judged.status, judged.venues_streaming, judged.reasons) == (
        "degraded",
        ["okx"],
        ["venue bybit: inverse gap"],
    )


# --- item 5: supervision ----------------------------------------------------------------------


def test_supervisor_restarts_with_backoff_and_reports() -> None:
    calls: list[float] = []

    async def flaky() -> None:
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise ValueError(f"failure {len(calls)}")
        await asyncio.sleep(3600)

    async def scenario() -> tuple[TaskReport, TaskReport]:
        task = Supervisor("flaky", flaky, critical=True, backoff=Backoff(initial_s=0.05, max_s=0.1))
        task.start()
        await asyncio.sleep(0.02)
        during = task.report()
        while len(calls) < 4:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        after = task.report()
        await task.stop()
        return during, after

    during, after = asyncio.run(scenario())
    assert (during.state, during.restarts, during.last_error) == ("restarting", 0, "ValueError('failure 1')")
    assert during.retry_in_s is not None and 0 < during.retry_in_s <= 0.05
    assert (after.state, after.restarts, after.last_error) == ("running", 3, "ValueError('failure 3')")
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.1  # 0.05, then doubled, capped at 0.1


def test_a_job_that_returns_is_restarted_too() -> None:
    runs = 0

    async def returns() -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            await asyncio.sleep(3600)

    async def scenario() -> TaskReport:
        task = Supervisor("returns", returns, critical=False, backoff=Backoff(initial_s=0.01))
        task.start()
        while runs < 2:
            await asyncio.sleep(0.01)
        report = task.report()
        await task.stop()
        return report

    report = asyncio.run(scenario())
    assert report.restarts == 1 and report.last_error is not None and "should run until stopped" in report.last_error


def test_a_cancelled_error_leaking_out_of_a_job_is_a_failure_but_stop_still_stops() -> None:
    """aiokafka's consumer.stop()/getmany raise CancelledError after a broker outage though nobody
    cancelled the task: supervision must restart the job, not end silently in state "running"."""
    runs = 0

    async def leaks_cancellation() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise asyncio.CancelledError
        await asyncio.sleep(3600)

    async def scenario() -> tuple[TaskReport, bool]:
        task = Supervisor("leaky", leaks_cancellation, critical=True, backoff=Backoff(initial_s=0.01))
        task.start()
        for _ in range(500):  # 5 s at most: without the rule the job is never run again
            if runs >= 2:
                break
            await asyncio.sleep(0.01)
        report = task.report()
        await task.stop()  # a real cancellation still ends supervision
        assert task._task is not None
        return report, task._task.cancelled()

    report, cancelled = asyncio.run(scenario())
    assert (report.state, report.restarts, report.last_error) == ("running", 1, "CancelledError()")
    assert cancelled


def test_gone_workers_are_flagged_then_dropped_and_all_gone_degrades_health() -> None:
    settings = scenario_settings(health_worker_max_age_s=30, workers_gone_keep_s=600)
    now = time.time_ns()
    model = in_process_model(now, settings)
    for worker_id, age_s in (("fresh", 1), ("replaced", 100), ("ancient", 700)):
        stats = WorkerStats(
            worker_id=worker_id,
            started_ts_ns=now - 10**12,
            ts_ns=now - age_s * 10**9,
            processed=1,
            conflated=0,
            rebuilt=0,
            forwarded=0,
            rejected=0,
            partitions=1,
            lag_ms=0,
        )
        model.apply_worker_stats(stats)
    ctx = build_context(settings, None, model=model, universe=Universe())
    with serve(create_app(ctx)) as url:
        _, body = get_json(url + "/health")
        assert [(w["worker_id"], w["alive"]) for w in body["workers"]] == [("fresh", True), ("replaced", False)]
        assert not any("no worker" in reason for reason in body["reasons"])
        del model.workers["fresh"]  # the last live worker is gone too
        _, body = get_json(url + "/health")
        gone = [r for r in body["reasons"] if re.fullmatch(r"no worker reporting \(last report 10\ds ago\)", r)]
        assert len(gone) == 1, body["reasons"]


def _task(health_body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in health_body["tasks"] if t["name"] == name)
    return found


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_failing_periodic_push_is_restarted_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = scenario_settings(ws_refresh_s=0.05, task_backoff_initial_s=0.05, task_backoff_max_s=0.1)
    ctx = build_context(settings, None, model=in_process_model(time.time_ns(), settings), universe=Universe())
    assert ctx.publisher is not None
    failures = {"left": 2}
    real_push = ctx.publisher.push_periodic

    def push() -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise KeyError("injected push failure")
        real_push()

    monkeypatch.setattr(ctx.publisher, "push_periodic", push)
    with serve(create_app(ctx)) as url:
        wait_for("two restarts", lambda: _task(get_json(url + "/health")[1], "periodic-push")["restarts"] >= 2)
        task = _task(get_json(url + "/health")[1], "periodic-push")
        assert (task["state"], task["critical"], task["last_error"]) == (
            "running",
            False,
            "KeyError('injected push failure')",
        )
        assert get_json(url + "/api/summary")[0] == 200  # not critical: the read model is still live


# --- items 5 and 6 against the real broker -----------------------------------------------------


async def produce(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes, int | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value, timestamp_ms in records:
            await producer.send_and_wait(topic, value, key=key, timestamp_ms=timestamp_ms)
    finally:
        await producer.stop()


def _health_records(venues: list[str], state: HealthState, frames: int) -> list[tuple[bytes, bytes, int | None]]:
    now = time.time_ns()
    return [(v.encode(), encode_market(health(v, state, now, frames)), None) for v in venues]


@contextmanager
def in_process_api(bootstrap: str, namespace: str, **overrides: Any) -> Iterator[tuple[str, ApiContext]]:
    quick = {"task_backoff_initial_s": 0.2, "task_backoff_max_s": 0.4, "discover_interval_s": 0.5}
    settings = scenario_settings(namespace=namespace, **{**quick, "align_topic_configs": False, **overrides})
    ctx = build_context(settings, bootstrap, universe=Universe())
    with serve(create_app(ctx)) as url:
        yield url, ctx


def status_of(url: str, path: str) -> tuple[int, Any]:
    return get_json(url + path)


@pytest.mark.integration
def test_failing_follower_is_reported_restarted_and_data_endpoints_503_then_200(
    kafka_bootstrap: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topics = Topics.from_settings(scenario_settings(namespace=namespace))
    asyncio.run(ensure_topics(kafka_bootstrap, [topics.health], 1))
    asyncio.run(produce(kafka_bootstrap, topics.health, _health_records(["binance"], HealthState.STREAMING, 100)))
    with in_process_api(kafka_bootstrap, namespace) as (url, ctx):
        wait_for("the read model to load", lambda: status_of(url, "/api/venues")[0] == 200)
        fault = {"armed": True}
        real_apply = ctx.model.apply_health

        def apply_health(snapshot: Health, changes: Changes) -> None:
            if fault["armed"]:
                raise RuntimeError("injected read-model fault")
            real_apply(snapshot, changes)

        monkeypatch.setattr(ctx.model, "apply_health", apply_health)
        asyncio.run(produce(kafka_bootstrap, topics.health, _health_records(["binance"], HealthState.STREAMING, 200)))

        def follower() -> dict[str, Any]:
            return _task(status_of(url, "/health")[1], "read-model-follower")

        wait_for("a restart after the fault", lambda: follower()["restarts"] >= 2)  # the record fails again
        status, body = status_of(url, "/api/venues")
        assert status == 503 and body["detail"].startswith("read model not live")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/api/prices", timeout=10)
        assert refused.value.code == 503 and refused.value.headers["retry-after"] == "1"
        status, health_body = status_of(url, "/health")
        assert status == 503 and health_body["status"] == "down"
        task = _task(health_body, "read-model-follower")
        assert task["critical"] is True and task["last_error"] == "RuntimeError('injected read-model fault')"
        # Between attempts the task is "restarting"; during one it is running but catching up.
        not_live = ("read-model-follower restarting", "read model catching up after a restart")
        assert any(r.startswith(not_live) for r in health_body["reasons"]), health_body["reasons"]

        fault["armed"] = False  # the fault clears: the next restart re-reads the record and goes live
        wait_for("data endpoints to answer again", lambda: status_of(url, "/api/venues")[0] == 200)
        assert follower()["state"] == "running"
        binance = ctx.model.health.by_connection["binance|main"]
        assert binance.frames_total == 200, "the record that failed was applied after the restart, not skipped"


@pytest.mark.integration
def test_health_is_down_with_no_venue_streaming_and_ok_with_fresh_data(kafka_bootstrap: str, namespace: str) -> None:
    settings = scenario_settings(namespace=namespace)
    topics = Topics.from_settings(settings)
    asyncio.run(ensure_topics(kafka_bootstrap, [topics.health, topics.changelog], 1))
    venues = ["binance", "bitmex", "bybit", "coindcx", "okx"]  # every venue the state quotes
    asyncio.run(produce(kafka_bootstrap, topics.health, _health_records(venues, HealthState.DISCONNECTED, 0)))
    # A fresh state with quotes (what the worker writes), so the only problem is the venues.
    model = in_process_model(time.time_ns(), settings)
    states = [(s.encode(), encode_event(state), None) for s, state in model.symbols.items()]
    asyncio.run(produce(kafka_bootstrap, topics.changelog, states))
    with in_process_api(kafka_bootstrap, namespace) as (url, _):
        wait_for("the read model to load", lambda: status_of(url, "/api/venues")[0] == 200)
        status, body = status_of(url, "/health")
        assert (status, body["status"], body["venues_streaming"]) == (503, "down", [])
        assert "no venue is streaming" in body["reasons"]
        assert {f"venue {v}: main disconnected" for v in venues} <= set(body["reasons"])

        asyncio.run(produce(kafka_bootstrap, topics.health, _health_records(venues, HealthState.STREAMING, 50)))
        wait_for("venues streaming", lambda: status_of(url, "/health")[1]["venues_streaming"] == venues)
        status, body = status_of(url, "/health")
        assert (status, body["status"], body["reasons"]) == (200, "ok", []), body["reasons"]
