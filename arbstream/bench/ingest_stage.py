"""Stage 3: simulator -> ``arbstream ingest`` (one process) -> broker, in ticks/s arriving on the ticks topics.

The simulator runs inside the bench process with no pause between market steps
(``tick_ms=0``), so it offers frames as fast as ingest takes them and the
figure is ingest's, not the simulator's pacing (the ``arbstream simulate``
command cannot go below 5 ms per step). Ingest's CPU use is reported next to
the rate: near 1.0 means ingest was the bottleneck; well below it means
something else (the simulator, the broker, a shared core) was.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from arbstream.bench.common import BASES, Result, median, not_measured
from arbstream.bench.kafka_io import OffsetProbe
from arbstream.bench.procs import Service, service_env
from ingest.instruments import load_all, select
from ingest.simulator.server import Simulator, serve
from ingest.venues import implemented_venues
from plumbing.broker import free_port
from schemas.topics import ticks_topic

FIRST_TICK_TIMEOUT_S = 60.0
SATURATED_CPU = 0.85
"""Ingest is the bottleneck when it keeps a core this busy; below, the figure is a floor."""


async def delivered_ticks(metrics_url: str) -> int:
    """Ticks ingest's publisher has had acknowledged by the broker (its ``/metrics``). Not the tick
    topics' offsets: a record holds a batch of ticks (decision 0019)."""
    async with aiohttp.ClientSession() as http, http.get(metrics_url) as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        if family.name == "arbstream_ingest_delivered":
            return int(sum(sample.value for sample in family.samples if sample.name.endswith("_total")))
    raise RuntimeError(f"no arbstream_ingest_delivered in {metrics_url}")


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
    port, metrics_port = free_port(), free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    site = await serve(simulator, "127.0.0.1", port)
    env = service_env(
        bootstrap,
        namespace,
        ARBSTREAM_SIMULATOR_URL=f"http://127.0.0.1:{port}",
        ARBSTREAM_SYMBOLS=",".join(BASES),
        ARBSTREAM_VENUES="",
        ARBSTREAM_TOPIC_PARTITIONS=str(partitions),
        ARBSTREAM_METRICS_PORT=str(metrics_port),
    )
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
    }
