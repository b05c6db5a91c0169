"""How many updates/s one ``arbstream simulate`` process sustains.

``python -m ingest.simulator.loadtest --rate 50000 --seconds 20`` starts the simulator with that
rate, subscribes to every instrument of every WebSocket venue exactly as ingest would (the venue
modules' connection plans and subscribe messages) from a client that only counts frames, and
compares what was scheduled with what was sent and received over a window. The simulator keeps
up when it drops nothing (``lagged``: the pump fell behind its schedule; ``slow``: a client's
buffer was full) and its CPU share stays below one core. CoinDCX (Socket.IO) is left out: a
Socket.IO client costs more than the frames it would count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

import aiohttp

from ingest.venues import implemented_venues, venue_class
from ingest.venues.base import load_json
from plumbing.broker import free_port
from plumbing.errors import ArbstreamError
from schemas.market import Instrument

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115 - one read
    return float(int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def total(counts: dict[str, int]) -> int:
    return sum(counts.values())


async def _stats(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.get(f"{base}/control/stats") as response:
        stats: dict[str, Any] = await response.json()
        return stats


async def _wait_ready(http: aiohttp.ClientSession, base: str, proc: subprocess.Popen[bytes]) -> None:
    while proc.poll() is None:
        try:
            await _stats(http, base)
            return
        except aiohttp.ClientError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"simulator exited with code {proc.returncode}")


async def _connect(
    http: aiohttp.ClientSession, base: str, venue: str, instruments: list[Instrument], counts: dict[str, int]
) -> list[asyncio.Task[None]]:
    adapter = venue_class(venue)(instruments)
    ws_base = base.replace("http", "ws", 1) + f"/{venue}"
    tasks = []
    for plan in adapter.connections(ws_base):
        url = await adapter.resolve_url(plan, f"{base}/{venue}", http)
        ws = await http.ws_connect(url, headers=adapter.ws_headers, max_msg_size=0, compress=0)
        if adapter.subscribe_after_first_frame:
            await ws.receive()
        for frame in adapter.on_connect() + adapter.subscribe_messages(plan.topics):
            await ws.send_str(frame)
        tasks.append(asyncio.create_task(_count(ws, venue, counts)))
    return tasks


async def _count(ws: aiohttp.ClientWebSocketResponse, venue: str, counts: dict[str, int]) -> None:
    async for _msg in ws:
        counts[venue] += 1


async def run(rate: float, seconds: float, warmup_s: float) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ARBSTREAM_SIMULATOR_PORT": str(port), "ARBSTREAM_SIMULATOR_RATE": str(rate)}
    env.setdefault("ARBSTREAM_SIMULATOR_AUTO_DISLOCATIONS", "false")
    log = open(os.devnull, "wb")  # noqa: SIM115 - the child's access log; closed with the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "arbstream.cli", "simulate"], env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    venues = [v for v in implemented_venues() if venue_class(v).transport == "websocket"]
    counts: dict[str, int] = defaultdict(int)
    failed: dict[str, str] = {}
    try:
        async with aiohttp.ClientSession() as http:
            await _wait_ready(http, base, proc)
            tasks = []
            for venue in venues:
                try:  # as ingest does: the instruments from the venue's (simulated) REST listing
                    cls = venue_class(venue)
                    instruments = cls.parse_instruments(load_json(await cls.fetch_listing(http, f"{base}/{venue}")))
                    tasks += await _connect(http, base, venue, instruments, counts)
                except (ArbstreamError, aiohttp.ClientError) as exc:
                    failed[venue] = str(exc)
            await asyncio.sleep(warmup_s)
            before, cpu0, received0, t0 = (
                await _stats(http, base),
                cpu_seconds(proc.pid),
                sum(counts.values()),
                time.monotonic(),
            )
            await asyncio.sleep(seconds)
            after, cpu1, received1, t1 = (
                await _stats(http, base),
                cpu_seconds(proc.pid),
                sum(counts.values()),
                time.monotonic(),
            )
            for task in tasks:
                task.cancel()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    elapsed = t1 - t0

    def per_s(key: str) -> float:
        return float(after.get(key, 0) - before.get(key, 0)) / elapsed

    return {
        "configured_book_rate": rate,
        "instruments": after["instruments"],
        "scheduled_book_per_s": per_s("book_updates"),
        "scheduled_funding_per_s": per_s("funding_updates"),
        "frames_sent_per_s": per_s("frames"),
        "frames_received_per_s": (received1 - received0) / elapsed,
        "lagged_per_s": per_s("lagged_updates"),
        "slow_client_per_s": per_s("slow_client_updates"),
        "simulator_cpu": (cpu1 - cpu0) / elapsed,
        "window_s": elapsed,
        "venues": [v for v in venues if v not in failed],
        "failed": failed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, nargs="+", default=[5000.0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    args = parser.parse_args()
    for rate in args.rate:
        try:
            result = asyncio.run(run(rate, args.seconds, args.warmup))
        except (TimeoutError, aiohttp.ClientError, RuntimeError) as exc:
            print({"configured_book_rate": rate, "error": repr(exc)}, flush=True)
            continue
        print({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
