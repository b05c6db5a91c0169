"""The simulator's planted funding carry: one base funds far apart on venues of 1 h, 4 h and 8 h.

The generated market's funding rates sit within a few basis points of a per-instrument level
(APRs of at most ~13 %). A planted carry fixes, for one base, the rate of a venue with an hourly
interval strongly positive, of an 8-hourly venue strongly negative and of a 4-hourly venue in
between, so the best funding pair (long the 8 h venue, short the 1 h one) is known in advance,
and its APR differs from what an "8 h everywhere" reading would give. ``arbstream simulate``
plants it at start (``ARBSTREAM_SIMULATOR_PLANTED_CARRY``, on by default, like the planted price
dislocations); ``POST /control/carry`` plants others.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from ingest.simulator.market import PlantedCarry
from schemas.market import ContractKind, Instrument

DEFAULT_RATES = {1: Decimal("0.0003"), 4: Decimal("0.0008"), 8: Decimal("-0.002")}
"""Per interval hours: +262.8 % a year (1 h), +175.2 % (4 h), -219 % (8 h)."""
PREFERRED_VENUES = ("binance", "bybit", "okx", "gate", "bitget", "mexc", "kucoin", "coinex", "phemex")
"""Venues whose funding frames name the next funding time come first (a planted settlement time
then reaches ingest as sent)."""


def _rank(venue: str) -> int:
    return PREFERRED_VENUES.index(venue) if venue in PREFERRED_VENUES else len(PREFERRED_VENUES)


def default_carry(instruments: list[Instrument], rates: dict[int, Decimal] | None = None) -> list[PlantedCarry]:
    """The planted carry of the first base (alphabetically) listed USDT-linear on venues with 1 h,
    4 h and 8 h funding: one carry per interval, on the preferred venue of each. Empty when no base
    has all three (a market restricted to a few bases may not)."""
    wanted = rates or DEFAULT_RATES
    venues: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for inst in instruments:
        if inst.kind is ContractKind.LINEAR and inst.quote == "USDT" and inst.funding_interval_h in wanted:
            venues[inst.base][inst.funding_interval_h].append(inst.venue)
    for base in sorted(venues):
        by_interval = venues[base]
        if all(by_interval.get(hours) for hours in wanted):
            return [
                PlantedCarry(base=base, venue=min(by_interval[hours], key=lambda v: (_rank(v), v)), rate=rate)
                for hours, rate in sorted(wanted.items())
            ]
    return []
