"""Stage 3: simulator -> ``arbstream ingest`` (one process) -> broker, in ticks/s arriving on the ticks topics.

The simulator runs inside the bench process with no pause between market steps
(``tick_ms=0``), so it offers frames as fast as ingest takes them and the
figure is ingest's, not the simulator's pacing (the ``arbstream simulate``
command cannot go below 5 ms per step). Ingest's CPU use is reported next to
the rate: near 1.0 means ingest was the bottleneck; well below it means
something else (the simulator, the broker, a shared core) was.

That saturation figure is taken on a few symbols (``BASES``): frames arrive in bulk and a record
carries hundreds of ticks. On the whole market (every base, thousands of instruments, hundreds of
sockets) a frame tends to arrive alone and a record carries one or two ticks, so a tick costs
ingest several times more: the stage also runs ingest on the simulator's whole generated market at
a fixed offered rate (``MARKET_RATE``) and reports its CPU per delivered tick there, the figure to
size ingest processes by.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from arbstream.bench.common import BASES, Result, median, not_measured
from arbstream.bench.kafka_io import OffsetProbe
from arbstream.bench.procs import Service, service_env
from ingest.instruments import load_all, select
from ingest.settings import SimulatorSettings
from ingest.simulator.main import build_simulator
from ingest.simulator.server import Simulator, serve
from ingest.venues import implemented_venues
from plumbing.broker import free_port
from schemas.topics import ticks_topic

FIRST_TICK_TIMEOUT_S = 60.0
SATURATED_CPU = 0.85
"""Ingest is the bottleneck when it keeps a core this busy; below, the figure is a floor."""
MARKET_RATE = 10_000
"""Book updates/s the whole-market simulator offers (heavy-tailed over its instruments): well
within what one ingest process takes there, so nothing is conflated and the CPU is per tick."""
MARKET_SETTLE_S = 20.0
"""After the first delivered tick, until every venue's sockets are subscribed (paced subscribes)."""


async def ingest_counters(metrics_url: str) -> dict[str, int]:
    """Ingest's counters from its ``/metrics`` (``delivered``: ticks the broker acknowledged; not the
    tick topics' offsets, a record holds a batch of ticks, decision 0019)."""
    async with aiohttp.ClientSession() as http, http.get(metrics_url) as response:
        text = await response.text()
    return {
        family.name.removeprefix("arbstream_ingest_"): int(
            sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
        )
        for family in text_string_to_metric_families(text)
        if family.name.startswith("arbstream_ingest_") and family.type == "counter"
    }


async def delivered_ticks(metrics_url: str) -> int:
    counters = await ingest_counters(metrics_url)
    if "delivered" not in counters:
        raise RuntimeError(f"no arbstream_ingest_delivered in {metrics_url}")
    return counters["delivered"]


async def _window(probe: OffsetProbe, topics: list[str], ingest: Service, metrics_url: str, seconds: float) -> Result:
    ticks0, records0 = await delivered_ticks(metrics_url), await probe.total(topics)
    cpu0, t0 = ingest.cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    ticks1, records1 = await delivered_ticks(metrics_url), await probe.total(topics)
    cpu1, t1 = ingest.cpu_seconds(), time.monotonic()
    ticks, records, cpu = ticks1 - ticks0, records1 - records0, cpu1 - cpu0
    return {
        "ticks_per_s": ticks / (t1 - t0),
        "ingest_cpu": cpu / (t1 - t0),
        "ticks_per_cpu_s": ticks / cpu if cpu > 0 else 0.0,
        "ticks_per_record": ticks / records if records > 0 else 0.0,
    }


async def _first_ticks(probe: OffsetProbe, topics: list[str], ingest: Service) -> bool:
    deadline = time.monotonic() + FIRST_TICK_TIMEOUT_S
    while time.monotonic() < deadline and ingest.alive():
        try:
            if await probe.total(topics) > 0:
                return True
        except Exception:  # noqa: BLE001 - topics are created by ingest at start; not there yet
            pass
        await asyncio.sleep(0.2)
    return False


async def run_ingest_stage(
    bootstrap: str, namespace: str, work_dir: Path, windows: int, window_s: float, warmup_s: float, partitions: int
) -> Result:
    venues = implemented_venues()
    simulator = Simulator(select(load_all(venues), BASES), venues, tick_ms=0, auto_dislocations=False)
    site, metrics_url, env = await _served(simulator, service_env(bootstrap, namespace), partitions, ",".join(BASES))
    topics = [ticks_topic(base, namespace) for base in BASES]
    try:
        with Service(["ingest"], env, work_dir / "ingest.log") as ingest:
            async with OffsetProbe(bootstrap, partitions) as probe:
                if not await _first_ticks(probe, topics, ingest):
                    return not_measured(f"no ticks from `arbstream ingest`; log tail:\n{ingest.log_tail()}")
                await asyncio.sleep(warmup_s)  # every venue subscribed and streaming before timing
                results = [await _window(probe, topics, ingest, metrics_url, window_s) for _ in range(windows)]
    finally:
        await site.cleanup()
    keys = ("ticks_per_s", "ingest_cpu", "ticks_per_cpu_s", "ticks_per_record")
    summary = {key: median([r[key] for r in results]) for key in keys}
    market = await run_ingest_market(bootstrap, namespace, work_dir, windows, window_s, partitions)
    return {
        **summary,
        "bound_by": "ingest"
        if summary["ingest_cpu"] >= SATURATED_CPU
        else "source or shared CPUs (ingest not saturated)",
        "unit": "ticks/s per ingest process",
        "venues": len(venues),
        "instruments": len(simulator.market.instruments),
        "window_s": window_s,
        "runs": windows,
        "per_run": results,
        "market": market,
    }


async def run_ingest_market(
    bootstrap: str, namespace: str, work_dir: Path, windows: int, window_s: float, partitions: int
) -> Result:
    """Ingest on the simulator's whole generated market at ``MARKET_RATE`` book updates/s offered:
    delivered ticks per ingest CPU-second, and what was conflated (none expected)."""
    settings = SimulatorSettings(
        simulator_rate=MARKET_RATE, simulator_auto_dislocations=False, simulator_planted_carry=False
    )
    simulator = build_simulator(settings)
    # Symbols "": the whole market the simulator lists; no funding backfill (not what is timed).
    base_env = service_env(bootstrap, namespace, ARBSTREAM_FUNDING_BACKFILL_DAYS="0")
    site, metrics_url, env = await _served(simulator, base_env, partitions, "")
    try:
        with Service(["ingest"], env, work_dir / "ingest-market.log") as ingest:
            if not await _first_delivery(metrics_url, ingest):
                return not_measured(f"no ticks from `arbstream ingest` on the market; log tail:\n{ingest.log_tail()}")
            await asyncio.sleep(MARKET_SETTLE_S)
            results = [await _market_window(ingest, metrics_url, window_s) for _ in range(windows)]
    finally:
        await site.cleanup()
    keys = ("ticks_per_s", "ingest_cpu", "ticks_per_cpu_s", "conflated_per_s")
    return {
        **{key: median([r[key] for r in results]) for key in keys},
        "offered_updates_per_s": MARKET_RATE,
        "bases": len({i.base for i in simulator.market.instruments}),
        "instruments": len(simulator.market.instruments),
        "window_s": window_s,
        "per_run": results,
    }


async def _served(
    simulator: Simulator, env: dict[str, str], partitions: int, symbols: str
) -> tuple[web.AppRunner, str, dict[str, str]]:
    """The simulator served on a free port; ingest's ``/metrics`` URL and environment for it."""
    port, metrics_port = free_port(), free_port()
    site = await serve(simulator, "127.0.0.1", port)
    env |= {
        "ARBSTREAM_SIMULATOR_URL": f"http://127.0.0.1:{port}",
        "ARBSTREAM_SYMBOLS": symbols,
        "ARBSTREAM_VENUES": "",
        "ARBSTREAM_TOPIC_PARTITIONS": str(partitions),
        "ARBSTREAM_METRICS_PORT": str(metrics_port),
    }
    return site, f"http://127.0.0.1:{metrics_port}/metrics", env


async def _first_delivery(metrics_url: str, ingest: Service) -> bool:
    deadline = time.monotonic() + FIRST_TICK_TIMEOUT_S
    while time.monotonic() < deadline and ingest.alive():
        try:
            if await delivered_ticks(metrics_url) > 0:
                return True
        except (aiohttp.ClientError, RuntimeError):  # metrics not served yet, or nothing published yet
            pass
        await asyncio.sleep(0.5)
    return False


async def _market_window(ingest: Service, metrics_url: str, seconds: float) -> Result:
    before, cpu0, t0 = await ingest_counters(metrics_url), ingest.cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    after, cpu1, t1 = await ingest_counters(metrics_url), ingest.cpu_seconds(), time.monotonic()
    ticks, cpu = after["delivered"] - before["delivered"], cpu1 - cpu0
    return {
        "ticks_per_s": ticks / (t1 - t0),
        "ingest_cpu": cpu / (t1 - t0),
        "ticks_per_cpu_s": ticks / cpu if cpu > 0 else 0.0,
        "conflated_per_s": (after["conflated"] - before["conflated"]) / (t1 - t0),
    }
