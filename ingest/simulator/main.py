"""``arbstream simulate``: serve every implemented venue's protocol locally until stopped."""

from __future__ import annotations

import asyncio
import signal

from ingest.instruments import load_all, select
from ingest.settings import SimulatorSettings
from ingest.simulator.server import Simulator, serve
from ingest.venues import implemented_venues


async def simulate(settings: SimulatorSettings) -> None:
    venues = settings.venues or implemented_venues()
    instruments = select(load_all(venues), settings.symbols)
    simulator = Simulator(
        instruments, venues, tick_ms=settings.simulator_tick_ms, auto_dislocations=settings.simulator_auto_dislocations
    )
    runner = await serve(simulator, settings.simulator_host, settings.simulator_port)
    print(f"simulator: {', '.join(venues)} on http://{settings.simulator_host}:{settings.simulator_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run_simulator(settings: SimulatorSettings) -> int:
    asyncio.run(simulate(settings))
    return 0
