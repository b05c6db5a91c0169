"""``arbstream simulate``: serve the generated market over every venue's protocol until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal

from ingest.settings import SimulatorSettings
from ingest.simulator.schedule import heavy_tailed_rates
from ingest.simulator.server import Simulator, serve
from ingest.simulator.universe import generated_market, restrict, update_weights
from ingest.venues import implemented_venues

log = logging.getLogger(__name__)
ALL = "all"


def build_simulator(settings: SimulatorSettings) -> Simulator:
    venues = settings.venues or implemented_venues()
    wanted = [s.upper() for s in settings.symbols]
    bases = None if not wanted or ALL.upper() in wanted or any(s.startswith("TOP:") for s in wanted) else wanted
    # Built over every venue (a base on two venues is in the market even if one venue is served here).
    market = generated_market(implemented_venues(), seed=settings.simulator_seed)
    # Rates are the whole market's: a restricted market (BTC,ETH) keeps its symbols' share of them.
    rates = heavy_tailed_rates(update_weights(market), settings.simulator_rate)
    market = restrict(market, bases)
    for venue, source in sorted(market.sources.items()):
        if source != "generated":
            log.warning("simulator: %s cannot generate listings yet; serving its bundled listing", venue)
    for reason, count in sorted(market.dropped.items()):
        log.info("simulator: left out %d (%s)", count, reason)
    return Simulator(
        market.instruments,
        venues,
        tick_ms=settings.simulator_tick_ms,
        funding_every_ms=settings.simulator_funding_every_ms,
        auto_dislocations=settings.simulator_auto_dislocations,
        rates=rates,
        reference_prices=market.reference_prices,
        listings_from_instruments=True,
        dislocation_every_ms=settings.simulator_dislocation_every_ms,
        planted_carry=settings.simulator_planted_carry,
    )


async def simulate(settings: SimulatorSettings) -> None:
    simulator = build_simulator(settings)
    runner = await serve(simulator, settings.simulator_host, settings.simulator_port)
    bases = len({i.base for i in simulator.by_id.values()})
    print(
        f"simulator: {', '.join(simulator.venues)} on http://{settings.simulator_host}:{settings.simulator_port} "
        f"({bases} bases, {len(simulator.by_id)} instruments, {simulator.books.total_per_s:,.0f} book updates/s "
        f"+ {simulator.fundings.total_per_s:,.0f} funding/s when all subscribed)",
        flush=True,
    )
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
