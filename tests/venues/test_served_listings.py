"""The simulator's REST routes serve each generated listing; the venue's own fetch reads it back.

The same path production takes at start and on each refresh: ``Venue.fetch_listing`` GETs every
``instrument_paths`` entry over HTTP, the bytes are decoded exactly and parsed.
"""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from ingest.simulator.server import Simulator
from ingest.simulator.venues import sim_class
from ingest.venues import venue_class
from ingest.venues.base import load_json
from tests.venues.generated_specs import specs

VENUES = ("binance", "bybit", "okx", "kucoin", "deribit")
UNPREFIXED = {"okx", "deribit"}  # list cheap coins with a big contract size, never as 1000X


@pytest.mark.parametrize("name", VENUES)
async def test_generated_listing_served_over_http_and_fetched_by_the_venue(name: str) -> None:
    sim_cls, venue_cls = sim_class(name), venue_class(name)
    spec_list = specs(120, cheap_multiplier=1 if name in UNPREFIXED else 1000)
    instruments = [i for s in spec_list if (i := sim_cls.list_instrument(s)) is not None]
    simulator = Simulator(instruments, [name], auto_dislocations=False, listings_from_instruments=True)
    async with TestServer(simulator.app()) as server, aiohttp.ClientSession() as http:
        body = await venue_cls.fetch_listing(http, str(server.make_url(f"/{name}")))
    listing = load_json(body)
    assert set(listing) == set(venue_cls.instrument_paths)
    got = sorted(venue_cls.parse_instruments(listing), key=lambda i: i.native_symbol)
    assert got == sorted(instruments, key=lambda i: i.native_symbol)
    assert len(got) >= 20 and {i.base for i in got} >= {"BTC"}
