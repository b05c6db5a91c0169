"""A generated market of ListingSpecs for the venue simulators' listing round-trip tests.

Deterministic: majors in every quote group, low-priced bases with 1000x and 1,000,000x
prefixes next to unprefixed ones, a tail of several hundred made-up bases with 1/4/8 h
funding and heavy-tailed volumes (some venues publish none: ``None``).
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
from aiohttp.test_utils import TestServer

from ingest.simulator.base import ListingSpec, VenueSim
from ingest.simulator.server import Simulator
from ingest.simulator.venues import sim_class
from ingest.venues import venue_class
from ingest.venues.base import Venue, load_json
from schemas.market import Instrument

MAJORS = {"BTC": "86412.3", "ETH": "3201.77", "SOL": "180.41", "XRP": "0.61234", "DOGE": "0.16221"}
# Low-priced bases and the multiplier the market uses for them (PEPE 1000PEPE, MOG 1000000MOG).
LOW_PRICED = {"PEPE": ("0.0000112", 1000), "SHIB": ("0.0000241", 1000), "MOG": ("0.00000151", 1_000_000)}
UNPREFIXED_LOW = {"BONK": "0.0000213", "NOTX": "0.00871"}
INTERVALS = (8, 4, 1)
GROUPS = ("USDT", "USDC", "USD-inverse")
_encode = msgspec.json.Encoder(decimal_format="number").encode


def tail_names(count: int, seed: int = 11) -> list[str]:
    """Made-up uppercase tickers (3-6 letters), unique, none of them a real prefix pattern."""
    rng = random.Random(seed)
    taken = set(MAJORS) | set(LOW_PRICED) | set(UNPREFIXED_LOW) | {"XBT", "USD", "USDT", "USDC"}
    names: list[str] = []
    while len(names) < count:
        name = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 6)))
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def generated_specs(tail: int = 400, seed: int = 11) -> list[ListingSpec]:
    """Specs for every group of the majors, prefixed and unprefixed low-priced bases and a tail."""
    rng = random.Random(seed)
    specs: list[ListingSpec] = []
    for n, (base, price) in enumerate(MAJORS.items()):
        for group in GROUPS:
            specs.append(ListingSpec(base, group, 1, INTERVALS[n % 3], Decimal(price), _volume(rng)))
    for base, (price, multiplier) in LOW_PRICED.items():
        for group in ("USDT", "USDC"):
            specs.append(ListingSpec(base, group, multiplier, 4, Decimal(price), _volume(rng)))
    for base, price in UNPREFIXED_LOW.items():
        specs.append(ListingSpec(base, "USDT", 1, 8, Decimal(price), _volume(rng)))
    for n, base in enumerate(tail_names(tail, seed)):
        tail_price = Decimal(rng.randint(1, 99_999)).scaleb(rng.randint(-9, 0))
        group = "USDC" if n % 17 == 0 else "USDT"
        specs.append(ListingSpec(base, group, 1, INTERVALS[n % 3], tail_price, _volume(rng)))
    return specs


def _volume(rng: random.Random) -> Decimal | None:
    """Heavy-tailed (Pareto) 24 h quote volume, with None now and then."""
    if rng.random() < 0.05:
        return None
    return Decimal(int(20_000 * rng.paretovariate(1.1)))


def listed(sim: type[VenueSim], specs: list[ListingSpec]) -> list[Instrument]:
    """What the venue lists of ``specs``."""
    return [inst for spec in specs if (inst := sim.list_instrument(spec)) is not None]


def over_the_wire(listing: dict[str, Any]) -> dict[str, Any]:
    """The listing as the simulator serves it (JSON text, Decimals as numbers) and ingest reads it."""
    decoded: dict[str, Any] = load_json(_encode(listing))
    return decoded


def round_trip(
    sim: type[VenueSim], venue: type[Venue], specs: list[ListingSpec], *, ordered: bool = True
) -> list[Instrument]:
    """Generate, list, serve and parse back; returns the generated instruments after checking the
    parsed ones equal them exactly (every field), in the same order unless ``ordered`` is False (a
    venue with one response per product family parses family by family)."""
    instruments = listed(sim, specs)
    parsed = venue.parse_instruments(over_the_wire(sim(instruments).listing(instruments)))
    ids = [i.instrument_id for i in instruments]
    assert len(ids) == len(set(ids)), "duplicate instrument ids in a generated listing"
    by_id = {i.instrument_id: i for i in parsed}
    assert len(by_id) == len(parsed) and set(by_id) == set(ids), set(by_id) ^ set(ids)
    for want in instruments:
        assert by_id[want.instrument_id] == want, f"{want!r} != {by_id[want.instrument_id]!r}"
    if ordered:
        assert parsed == instruments
    return instruments


async def served_round_trip(name: str, specs: list[ListingSpec]) -> list[Instrument]:
    """The generated listing served by the simulator's REST routes and fetched back with the venue's
    own ``fetch_listing``, as ingest does at start and on each refresh; returns what it parsed."""
    sim_cls, venue_cls = sim_class(name), venue_class(name)
    instruments = listed(sim_cls, specs)
    simulator = Simulator(instruments, [name], auto_dislocations=False, listings_from_instruments=True)
    async with TestServer(simulator.app()) as server, aiohttp.ClientSession() as http:
        body = await venue_cls.fetch_listing(http, str(server.make_url(f"/{name}")))
    listing = load_json(body)
    assert set(listing) == set(venue_cls.instrument_paths)
    parsed = venue_cls.parse_instruments(listing)
    assert sorted(parsed, key=_by_id) == sorted(instruments, key=_by_id)
    return parsed


def _by_id(instrument: Instrument) -> str:
    return instrument.instrument_id
