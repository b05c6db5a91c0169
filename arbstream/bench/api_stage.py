"""Stage api: ``GET /api/prices`` (full, filtered, paged) and ``/api/spreads`` with the whole market loaded.

No broker: a child process (``python -m arbstream.bench.api_stage serve``)
builds a synthetic read model of 450 symbols x 14 venues
(:mod:`arbstream.bench.api_market`), serves it with the real app
(``api.main.create_app``, spread history attached as in production) and keeps
moving it — quote records decoded and applied on the API's event loop, as the
follower applies the worker's ``prices`` topic — at ``UPDATES_PER_S`` records
per second (the applied rate is reported: a saturated API applies fewer). The
bench process (the client) sends one request at a time with aiohttp and times
each from sending to having read the whole body; the API's CPU is sampled next
to each figure, since a saturated API is the API's limit, not the endpoint's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import uvicorn

from api.direct_ws import DirectSendProtocol
from api.main import build_context, create_app
from api.settings import ApiSettings
from api.universe import Universe
from arbstream.bench.api_market import VENUES, SyntheticMarket, symbol_names
from arbstream.bench.common import Result, latency_summary, not_measured
from arbstream.bench.procs import Service
from plumbing import gc_tuning
from plumbing.broker import free_port

SYMBOLS = 450
UPDATES_PER_S = 500
"""Quote records per second the API applies while being measured. Each also samples the spread
history of its symbol (~0.9 ms with 14 venues on this machine), so 500/s already keeps about half a
core of the API busy."""
READY_TIMEOUT_S = 120.0
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
CPU_REQUESTS = 20
BUDGET_S = 20.0
"""Per scenario at most this long (a busy machine then yields fewer samples, reported, not a hung stage)."""


def scenarios(names: list[str]) -> dict[str, str]:
    few = ",".join(names)
    return {
        "prices_full": "/api/prices",
        "prices_5_symbols": f"/api/prices?symbols={few}",
        "prices_2_venues": "/api/prices?venues=binance,okx",
        "prices_page_50": "/api/prices?limit=50&offset=200",
        "spreads_full": "/api/spreads",
        "spreads_5_symbols": f"/api/spreads?symbols={few}",
    }


async def _serve(port: int, symbols: int, updates_per_s: float) -> None:
    market = SyntheticMarket(symbols)
    model = market.build(time.time_ns())
    ctx = build_context(ApiSettings(), None, model=model, universe=Universe())
    app = create_app(
        ctx,
        dashboard_dist=Path(tempfile.gettempdir()) / "arbstream-no-dashboard",
        on_started=gc_tuning.freeze_startup_objects,  # as `arbstream api` does
    )

    @app.get("/bench/stats", include_in_schema=False)
    async def stats() -> dict[str, int]:
        return {"updates_applied": market.updates_applied, "instruments": market.instruments}

    @app.get("/bench/feeder", include_in_schema=False)
    async def feeder_switch(run: bool) -> dict[str, bool]:
        market.paused = not run
        return {"running": run}

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, ws=DirectSendProtocol
    )
    server = uvicorn.Server(config)
    feeder = asyncio.create_task(market.feed(model, updates_per_s))
    try:
        await server.serve()
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    try:
        async with http.get(url, timeout=REQUEST_TIMEOUT) as response:
            return response.status, await response.read()
    except TimeoutError:
        return 0, b""  # counted as an error; the figure keeps its time


async def _ready(http: aiohttp.ClientSession, api: Service, base: str) -> Result | None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and api.alive():
        with contextlib.suppress(aiohttp.ClientError, OSError):
            status, _ = await _get(http, base + "/bench/stats")
            if status == 200:
                return None
        await asyncio.sleep(0.3)
    return not_measured(f"the API process did not answer; log tail:\n{api.log_tail(8)}")


async def _stats(http: aiohttp.ClientSession, base: str) -> dict[str, int]:
    async with http.get(base + "/bench/stats") as response:
        stats: dict[str, int] = await response.json()
        return stats


async def cpu_per_request(http: aiohttp.ClientSession, api: Service, url: str, requests: int) -> float:
    """The API's CPU milliseconds per request of ``url`` with the feeder paused: the work a request
    costs, which a busy machine does not inflate the way it inflates wall-clock latency."""
    cpu0 = api.cpu_seconds()
    for _ in range(requests):
        await _get(http, url)
    return (api.cpu_seconds() - cpu0) / requests * 1000


async def measure(http: aiohttp.ClientSession, api: Service, url: str, requests: int, budget_s: float) -> Result:
    """Up to ``requests`` sequential GETs of ``url`` within ``budget_s`` (after a few unmeasured ones)."""
    for _ in range(3):
        await _get(http, url)
    samples: list[float] = []
    sizes: list[int] = []
    errors = 0
    cpu0, started = api.cpu_seconds(), time.monotonic()
    while len(samples) < requests and time.monotonic() - started < budget_s:
        sent = time.perf_counter()
        status, body = await _get(http, url)
        samples.append((time.perf_counter() - sent) * 1000)
        sizes.append(len(body))
        errors += status != 200
    elapsed = time.monotonic() - started
    return {
        "path": "/" + url.split("/", 3)[-1],
        "errors": errors,
        "bytes": int(sum(sizes) / len(sizes)),
        "api_cpu": (api.cpu_seconds() - cpu0) / elapsed,
        **latency_summary(samples),
    }


async def _run(work_dir: Path, requests: int, symbols: int, updates_per_s: float) -> Result:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "--port", str(port), "--symbols", str(symbols), "--updates-per-s", str(updates_per_s)]
    api = Service(args, dict(os.environ), work_dir / "api-stage.log", module="arbstream.bench.api_stage")
    try:
        api.start()
        async with aiohttp.ClientSession() as http:
            if (problem := await _ready(http, api, base)) is not None:
                return problem
            before, started = await _stats(http, base), time.monotonic()
            few = symbol_names(symbols)[:: max(1, symbols // 5)][:5]  # spread over the alphabet, like a watch list
            budget = BUDGET_S if requests <= 200 else 3 * BUDGET_S
            figures = {
                name: await measure(http, api, base + path, requests, budget) for name, path in scenarios(few).items()
            }
            after = await _stats(http, base)
            await _get(http, base + "/bench/feeder?run=false")
            for name, path in scenarios(few).items():
                figures[name]["api_cpu_ms_per_request"] = await cpu_per_request(http, api, base + path, CPU_REQUESTS)
    finally:
        api.stop()
    return {
        "unit": "ms from sending a request to having read the whole body, one client, one request at a time",
        "symbols": symbols,
        "venues": len(VENUES),
        "instruments": after["instruments"],
        "offered_updates_per_s": updates_per_s,
        "applied_updates_per_s": (after["updates_applied"] - before["updates_applied"]) / (time.monotonic() - started),
        "requests_per_scenario": requests,
        "scenarios": figures,
    }


def run_api_stage(
    quick: bool, symbols: int = SYMBOLS, updates_per_s: float = UPDATES_PER_S, requests: int | None = None
) -> Result:
    with tempfile.TemporaryDirectory(prefix="arbstream-bench-api-") as tmp:
        count = requests if requests is not None else (200 if quick else 1_000)
        return asyncio.run(_run(Path(tmp), count, symbols, updates_per_s))


def main(argv: list[str] | None = None) -> int:
    """``python -m arbstream.bench.api_stage serve --port N``: the stage's API process."""
    parser = argparse.ArgumentParser(prog="arbstream.bench.api_stage")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--symbols", type=int, default=SYMBOLS)
    parser.add_argument("--updates-per-s", type=float, default=UPDATES_PER_S)
    args = parser.parse_args(argv)
    gc_tuning.tune()
    asyncio.run(_serve(args.port, args.symbols, args.updates_per_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
