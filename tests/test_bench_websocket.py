"""The WebSocket stage's reading of the API's delivery histogram, its report row, and its subscribers' process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from arbstream.bench import report
from arbstream.bench.websocket_stage import DELIVERY_BUCKET, Subscribers, bucket_quantile
from plumbing.broker import free_port
from tests.test_api_support import serve

BOUNDS = (0.01, 0.05, 0.1, 0.25)


def _scrape(registry: CollectorRegistry) -> dict[float, float]:
    """What api_delivery_buckets reads, from the same text format the API serves."""
    return {
        float(s.labels["le"]): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name == DELIVERY_BUCKET
    }


def test_quantiles_come_from_what_was_observed_between_two_scrapes() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("arbstream_api_ws_delivery_seconds", "x", buckets=BOUNDS, registry=registry)
    for _ in range(50):
        histogram.observe(0.2)  # before the level: must not count
    before = _scrape(registry)
    for seconds in [0.003] * 60 + [0.04] * 39 + [0.3]:
        histogram.observe(seconds)
    after = _scrape(registry)
    assert bucket_quantile(before, after, 0.5) == 10.0  # 60 of 100 within 10 ms
    assert bucket_quantile(before, after, 0.99) == 50.0  # the 99th is the last 40 ms one
    assert bucket_quantile(before, after, 1.0) == math.inf  # the 300 ms one is above every bound
    assert math.isnan(bucket_quantile(after, after, 0.5))  # nothing observed in between


def test_the_websocket_row_shows_the_api_s_part() -> None:
    level = {
        "clients": 1000,
        "alerts": 11,
        "delivered_ratio": 1.0,
        "api_cpu": 0.2,
        "bench_cpu": 0.1,
        "setup_s": 0.2,
        "api_delivery_p50_ms": 50.0,
        "api_delivery_p99_ms": 100.0,
        "after_worker_p50_ms": 120.0,
        "after_worker_p99_ms": 380.5,
        "samples": 11000,
        "p50_ms": 200.0,
        "p99_ms": 400.0,
        "p99_9_ms": 410.0,
        "max_ms": 420.0,
    }
    rows = report._websocket_rows({"levels": [level]}, {})
    assert rows[0][0] == "5 WebSocket"
    assert "the API's part, publish → last socket, p50/p99 ≤ 50 / 100 ms" in rows[0][1]
    assert "worker emit → client p50/p99 120.0 / 380.5 ms" in rows[0][1]
    assert rows[0][2] == "200.0 / 400.0 / 410.0"


def post(url: str) -> int:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as response:
        return int(response.status)


def _alerting_app() -> FastAPI:
    """Answers a subscribe with a snapshot; POST /fire sends every client ``count`` alerts, each
    twice (a client counts each alert once), and messages that are not alerts."""
    app = FastAPI()
    sockets: list[WebSocket] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        assert json.loads(await websocket.receive_text())["op"] == "subscribe"
        await websocket.send_text('{"type":"snapshot","seq":1,"data":{}}')
        sockets.append(websocket)
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.receive_text()

    @app.post("/fire")
    async def fire(receipt_ts_ns: int, count: int) -> None:
        for n in range(count):
            event = {"event_id": f"e{n}", "receipt_ts_ns": receipt_ts_ns, "emitted_ts_ns": receipt_ts_ns + n}
            alert = json.dumps({"type": "opportunity", "data": event})
            for websocket in sockets:
                for text in (alert, alert, '{"type":"price_update","data":{"bid":"1"}}'):
                    await websocket.send_text(text)

    return app


async def test_the_subscribers_process_reports_each_client_s_alerts_once(tmp_path: Path) -> None:
    with serve(_alerting_app()) as base:
        subscribers = Subscribers(base.replace("http://", "ws://") + "/ws", 3, tmp_path / "clients.log")
        try:
            await subscribers.start()
            assert subscribers.setup_s >= 0
            fired_ns = time.time_ns()
            # 3,000 alerts in all: the clients' one-line report is far over a pipe reader's default limit.
            assert await asyncio.to_thread(post, f"{base}/fire?receipt_ts_ns={fired_ns}&count=1000") == 200
            await asyncio.sleep(0.5)
            arrivals, cpu_s = await subscribers.stop()
        finally:
            await subscribers.close()
    assert len(arrivals) == 3
    for client in arrivals:
        assert [event_id for _, event_id, _, _ in client] == [f"e{n}" for n in range(1000)]
        assert {receipt_ns for _, _, receipt_ns, _ in client} == {fired_ns}
        assert [emitted_ns for *_, emitted_ns in client] == [fired_ns + n for n in range(1000)]
        assert all(fired_ns <= arrived_ns <= time.time_ns() for arrived_ns, *_ in client)
    assert cpu_s > 0


async def test_subscribers_that_cannot_connect_say_why(tmp_path: Path) -> None:
    subscribers = Subscribers(f"ws://127.0.0.1:{free_port()}/ws", 2, tmp_path / "clients.log")
    try:
        with pytest.raises(RuntimeError, match="client 1 of 2 could not connect"):
            await subscribers.start()
    finally:
        await subscribers.close()
