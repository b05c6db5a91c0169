"""Stage 5: ticks -> worker -> ``arbstream api`` -> WebSocket clients, delivery latency of ``opportunity`` messages.

Runs only when the API serves ``/ws``; otherwise the stage reports why it was
not measured (never a made-up figure). Each client subscribes to the
``opportunity`` channel and notes the wall clock when each alert arrives;
latency is that minus the alert's ``receipt_ts_ns`` (the dislocated tick's
receipt time). Dislocations are planted slowly (a few per second) so that with
1,000 clients the bench's own client side, sharing the machine, is not the limit;
the clients run in their own process (:mod:`arbstream.bench.ws_clients`) so their
reading never delays the tick producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any, cast

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from arbstream.bench.common import Result, latency_summary, not_measured, percentile
from arbstream.bench.kafka_io import OffsetProbe
from arbstream.bench.latency import offer
from arbstream.bench.procs import Service
from arbstream.bench.ticks import TickSource
from arbstream.bench.worker import start_ready, worker_env
from arbstream.bench.ws_clients import SETUP_TIMEOUT_S, Arrival
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


def _samples(arrivals: list[list[Arrival]], since_ns: int) -> tuple[list[float], list[float]]:
    """(tick receipt → client, worker emit → client) ms of each alert each client received."""
    from_tick, from_emit = [], []
    for client in arrivals:
        for arrived_ns, _, receipt_ns, emitted_ns in client:
            if receipt_ns >= since_ns:
                from_tick.append((arrived_ns - receipt_ns) / 1e6)
                if emitted_ns is not None:
                    from_emit.append((arrived_ns - emitted_ns) / 1e6)
    return from_tick, from_emit


REPORT_LIMIT_BYTES = 256 * 1024 * 1024
"""The clients' report is one line: ~60 bytes per alert per client (11,000 in a quick run)."""


class Subscribers:
    """``count`` WebSocket clients in their own process (:mod:`arbstream.bench.ws_clients`)."""

    def __init__(self, url: str, count: int, log: Path) -> None:
        self._args = (url, str(count), SUBSCRIBE)
        self._proc: asyncio.subprocess.Process | None = None
        self._log = log
        self.setup_s = math.nan

    async def start(self) -> None:
        """Returns once every client has its subscription snapshot; RuntimeError if they cannot."""
        with self._log.open("wb") as stderr:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "arbstream.bench.ws_clients",
                *self._args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                limit=REPORT_LIMIT_BYTES,
            )
        ready = await self._line(SETUP_TIMEOUT_S + 30)
        self.setup_s = ready["ready"]

    async def stop(self) -> tuple[list[list[Arrival]], float]:
        """(each client's alerts, the clients' CPU seconds since ready)."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(b"stop\n")
        await self._proc.stdin.drain()
        done = await self._line(120.0)
        await self._proc.wait()
        return [[(a, e, r, m) for a, e, r, m in client] for client in done["arrivals"]], done["cpu_s"]

    async def _line(self, timeout_s: float) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), timeout_s)
        message = orjson.loads(line) if line else {"error": f"exited {await self._proc.wait()}"}
        if "error" in message:
            tail = self._log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"WebSocket clients: {message['error']}{tail and chr(10) + tail}")
        return cast(dict[str, Any], message)

    async def close(self) -> None:
        if self._proc is not None:
            if self._proc.returncode is None:
                self._proc.kill()
            await self._proc.wait()  # reaped on this loop: its transport closes with it


async def fan_out(
    url: str,
    clients: int,
    api: Service,
    bootstrap: str,
    probe: OffsetProbe,
    source: TickSource,
    ns: str,
    duration_s: float,
    work_dir: Path,
) -> Result:
    """Connect ``clients`` subscribers, offer ticks with dislocations, and rank the delivery latencies."""
    alerts_topic = [topic_name(OPPORTUNITIES, ns)]
    subscribers = Subscribers(url, clients, work_dir / f"ws-clients-{clients}.log")
    try:
        # Timing starts once every client has its connect messages and subscription snapshot: the
        # figure is delivery to subscribed clients, not how long 1,000 connections take to set up.
        await subscribers.start()
        async with aiohttp.ClientSession() as http:
            metrics_url = url.replace("ws://", "http://", 1).removesuffix("/ws") + "/metrics"
            delivered_before = await api_delivery_buckets(http, metrics_url)
            alerts_before, since_ns = await probe.total(alerts_topic), time.time_ns()
            started, api_cpu0 = time.monotonic(), api.cpu_seconds()
            await offer(bootstrap, source, ns, TICKS_PER_S, duration_s, DISLOCATIONS_PER_S)
            await asyncio.sleep(2.0)
            alerts = await probe.total(alerts_topic) - alerts_before
            elapsed = time.monotonic() - started
            # CPU next to the latency: a busy API is the API's limit; busy clients are the bench's.
            api_cpu = (api.cpu_seconds() - api_cpu0) / elapsed
            delivered_after = await api_delivery_buckets(http, metrics_url)
        arrivals, clients_cpu_s = await subscribers.stop()
    finally:
        await subscribers.close()
    bench_cpu = clients_cpu_s / elapsed
    setup_s = subscribers.setup_s
    samples, after_worker = _samples(arrivals, since_ns)
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
        # The worker's emit -> the client: Kafka, the API and the socket, without the worker.
        "after_worker_p50_ms": percentile(sorted(after_worker), 50),
        "after_worker_p99_ms": percentile(sorted(after_worker), 99),
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
            try:
                levels = [
                    await fan_out(url, n, api, bootstrap, probe, source, namespace, duration_s, work_dir)
                    for n in CLIENT_COUNTS
                ]
            except RuntimeError as exc:  # the clients could not connect or subscribe: say why
                return not_measured(str(exc))
    finally:
        api.stop()
        worker.stop()
    return {
        "unit": "ms from tick receipt to a WebSocket client",
        "ticks_per_s": TICKS_PER_S,
        "dislocations_per_s": DISLOCATIONS_PER_S,
        "levels": levels,
    }
