"""Stage 5: ticks -> worker -> ``arbstream api`` -> WebSocket clients, delivery latency of ``opportunity`` messages.

Runs only when the API serves ``/ws``; otherwise the stage reports why it was
not measured (never a made-up figure). Each client subscribes to the
``opportunity`` channel and notes the wall clock when each alert arrives;
latency is that minus the alert's ``receipt_ts_ns`` (the dislocated tick's
receipt time). Dislocations are planted slowly (a few per second) so that with
1,000 clients the bench's own client side, sharing the machine, is not the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from arbstream.bench.common import Result, latency_summary, not_measured
from arbstream.bench.kafka_io import OffsetProbe
from arbstream.bench.latency import offer
from arbstream.bench.procs import Service
from arbstream.bench.ticks import TickSource
from arbstream.bench.worker import start_ready, worker_env
from plumbing.broker import free_port
from plumbing.kafka import ensure_topics
from schemas.topics import OPPORTUNITIES, topic_name

CLIENT_COUNTS = (1, 100, 1000)
TICKS_PER_S = 250
"""Well below the worker's saturation, so the figure is the API's fan-out, not a worker backlog."""
DISLOCATIONS_PER_S = 2
SUBSCRIBE = orjson.dumps({"op": "subscribe", "channels": ["opportunities"]}).decode()
"""Only alerts: the figure is alert delivery, not the price stream sharing the sockets."""
API_READY_TIMEOUT_S = 60.0
SETUP_TIMEOUT_S = 120.0
"""Until every client has its subscription snapshot."""


def _opportunities(message: Any) -> list[dict[str, Any]]:
    """Alerts in one relayed message: a top-level ``opportunity`` message, its data one event or a list."""
    if not isinstance(message, dict) or "opportunity" not in (message.get("type"), message.get("event")):
        return []
    found, stack = [], [message]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "event_id" in item and isinstance(item.get("receipt_ts_ns"), int):
                found.append(item)
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


async def _read(ws: aiohttp.ClientWebSocketResponse, sink: list[tuple[int, str]], subscribed: asyncio.Event) -> None:
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.TEXT:
            if msg.data.startswith('{"type":"snapshot"'):
                subscribed.set()
            elif "opportunity" in msg.data:
                sink.append((time.time_ns(), msg.data))  # decode later: keep the receive loop light


DELIVERY_BUCKET = "arbstream_api_ws_delivery_seconds_bucket"


async def api_delivery_buckets(http: aiohttp.ClientSession, metrics_url: str) -> dict[float, float]:
    """The API's ``arbstream_api_ws_delivery_seconds`` histogram: cumulative count per bucket bound."""
    async with http.get(metrics_url) as response:
        text = await response.text()
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == DELIVERY_BUCKET:
                buckets[float(sample.labels["le"])] = sample.value
    return buckets


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound (ms) of the bucket holding quantile ``q`` of what was observed between two
    scrapes of a cumulative histogram; NaN when nothing was, infinity above the last bound."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return math.nan
    wanted = q * counts[-1]
    return next(b * 1000 for b, c in zip(bounds, counts, strict=True) if c >= wanted)


def _samples(arrivals: list[list[tuple[int, str]]], since_ns: int) -> list[float]:
    samples = []
    for client in arrivals:
        seen: set[str] = set()
        for arrived_ns, text in client:
            for event in _opportunities(orjson.loads(text)):
                if event["receipt_ts_ns"] >= since_ns and event["event_id"] not in seen:
                    seen.add(event["event_id"])
                    samples.append((arrived_ns - event["receipt_ts_ns"]) / 1e6)
    return samples


async def fan_out(
    url: str,
    clients: int,
    api: Service,
    bootstrap: str,
    probe: OffsetProbe,
    source: TickSource,
    ns: str,
    duration_s: float,
) -> Result:
    """Connect ``clients`` subscribers, offer ticks with dislocations, and rank the delivery latencies."""
    alerts_topic = [topic_name(OPPORTUNITIES, ns)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sockets = []
        for _ in range(clients):
            ws = await http.ws_connect(url, heartbeat=None, max_msg_size=0)
            await ws.send_str(SUBSCRIBE)
            sockets.append(ws)
        arrivals: list[list[tuple[int, str]]] = [[] for _ in sockets]
        subscribed = [asyncio.Event() for _ in sockets]
        readers = [
            asyncio.create_task(_read(ws, sink, done))
            for ws, sink, done in zip(sockets, arrivals, subscribed, strict=True)
        ]
        # Timing starts once every client has its connect messages and subscription snapshot: the
        # figure is delivery to subscribed clients, not how long 1,000 connections take to set up.
        setup_started = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(done.wait() for done in subscribed)), SETUP_TIMEOUT_S)
        setup_s = time.monotonic() - setup_started
        metrics_url = url.replace("ws://", "http://", 1).removesuffix("/ws") + "/metrics"
        delivered_before = await api_delivery_buckets(http, metrics_url)
        alerts_before, since_ns = await probe.total(alerts_topic), time.time_ns()
        started, api_cpu0, own_cpu0 = time.monotonic(), api.cpu_seconds(), time.process_time()
        await offer(bootstrap, source, ns, TICKS_PER_S, duration_s, DISLOCATIONS_PER_S)
        await asyncio.sleep(2.0)
        alerts = await probe.total(alerts_topic) - alerts_before
        elapsed = time.monotonic() - started
        # CPU next to the latency: a busy API is the API's limit; a busy bench is the bench's.
        api_cpu, bench_cpu = (api.cpu_seconds() - api_cpu0) / elapsed, (time.process_time() - own_cpu0) / elapsed
        delivered_after = await api_delivery_buckets(http, metrics_url)
        for task in readers:
            task.cancel()
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
    samples = _samples(arrivals, since_ns)
    expected = alerts * clients
    return {
        "clients": clients,
        "alerts": alerts,
        "delivered_ratio": len(samples) / expected if expected else None,
        "api_cpu": api_cpu,
        "bench_cpu": bench_cpu,
        "setup_s": setup_s,
        # The API's own part, from its histogram: publishing an event -> the last client's socket.
        "api_delivery_p50_ms": bucket_quantile(delivered_before, delivered_after, 0.5),
        "api_delivery_p99_ms": bucket_quantile(delivered_before, delivered_after, 0.99),
        **latency_summary(samples),
    }


async def _api_ready(api: Service, port: int) -> bool:
    deadline = time.monotonic() + API_READY_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline and api.alive():
            with contextlib.suppress(aiohttp.ClientError, OSError):
                # Loaded, not /health: that one is "down" (503) while no venue streams, as here.
                async with http.get(f"http://127.0.0.1:{port}/api/info") as response:
                    if response.status == 200 and (await response.json())["complete"] is True:
                        return True
            await asyncio.sleep(0.3)
    return False


async def _ws_problem(url: str) -> str | None:
    """None when ``url`` accepts a WebSocket; otherwise what the server answered."""
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=5))
        except aiohttp.WSServerHandshakeError as exc:
            return f"`arbstream api` does not serve a WebSocket at /ws (HTTP {exc.status})"
        except (aiohttp.ClientError, OSError) as exc:
            return f"could not connect to {url}: {exc!r}"
        await ws.close()
    return None


async def run_websocket_stage(
    bootstrap: str, namespace: str, work_dir: Path, source: TickSource, duration_s: float, partitions: int
) -> Result:
    await ensure_topics(bootstrap, source.topics(namespace), partitions)
    port = free_port()
    env = worker_env(bootstrap, namespace, work_dir, partitions)
    worker = Service(["worker"], env, work_dir / "ws-worker.log")
    # The API reads the worker's settings (app name, symbols, cooldown): same environment plus its address.
    api = Service(
        ["api"], {**env, "ARBSTREAM_API_HOST": "127.0.0.1", "ARBSTREAM_API_PORT": str(port)}, work_dir / "api.log"
    )
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        async with OffsetProbe(bootstrap, partitions) as probe:
            if await start_ready(worker, probe, bootstrap, source, namespace) is None:
                return not_measured(f"the worker never processed a tick; log tail:\n{worker.log_tail()}")
            if not await _api_ready(api.start(), port):
                return not_measured(f"`arbstream api` did not answer on port {port}; log tail:\n{api.log_tail(8)}")
            if (problem := await _ws_problem(url)) is not None:
                return not_measured(problem)
            levels = [
                await fan_out(url, n, api, bootstrap, probe, source, namespace, duration_s) for n in CLIENT_COUNTS
            ]
    finally:
        api.stop()
        worker.stop()
    return {
        "unit": "ms from tick receipt to a WebSocket client",
        "ticks_per_s": TICKS_PER_S,
        "dislocations_per_s": DISLOCATIONS_PER_S,
        "levels": levels,
    }
