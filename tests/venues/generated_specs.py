"""A generated whole-market set of listing specs, and the wire round trip of a simulated listing.

Used by the venue tests: every venue simulator must list these the way the real
venue would, and its venue module must read the listing back exactly, after the
same JSON encoding the simulator's REST route uses.
"""

from __future__ import annotations

import itertools
import string
from decimal import Decimal
from typing import Any

import orjson

from ingest.simulator.base import ListingSpec, VenueSim
from ingest.venues.base import Venue, load_json
from schemas.market import Instrument

GROUPS = ("USDT", "USDC", "USD-inverse")
INTERVALS = (8, 4, 1)
FIXED = {
    "BTC": Decimal("86400.5"),
    "ETH": Decimal("3200.25"),
    "SOL": Decimal("180.12"),
    "PEPE": Decimal("0.0000112"),
    "SHIB": Decimal("0.0000131"),
    "BONK": Decimal("0.0000213"),
}


def _price(n: int) -> Decimal:
    """Heavy spread of magnitudes: 0.00001 ... 10,000."""
    return (Decimal(1000 + (n * 7919) % 9000) / 1000).scaleb(n % 10 - 5)


def specs(count: int = 420, cheap_multiplier: int = 1000) -> list[ListingSpec]:
    """``count`` bases x their groups: every group, 1/4/8 h funding, ``cheap_multiplier`` for sub-cent bases.

    Venues that never prefix (OKX lists PEPE-USDT-SWAP) get ``cheap_multiplier=1``.
    """
    names = list(FIXED) + ["".join(p) for p in itertools.product(string.ascii_uppercase, repeat=3)]
    out = []
    for n, base in enumerate(names[:count]):
        price = FIXED.get(base, _price(n))
        multiplier = cheap_multiplier if price < Decimal("0.01") else 1
        volume = None if n % 5 == 4 else Decimal(10_000 + n * 7_777).scaleb(n % 4)
        for g, group in enumerate(GROUPS):
            if g and (n + g) % 3 == 0:
                continue  # not every base in every group
            out.append(ListingSpec(base, group, multiplier, INTERVALS[(n + g) % 3], price, volume))
    return out


def wire(listing: dict[str, Any]) -> dict[str, Any]:
    """The listing as a client decodes it from the simulator: JSON (Decimals as numbers) and back, exactly."""
    body = orjson.dumps(listing, default=lambda d: orjson.Fragment(format(d, "f")))
    decoded = load_json(body)
    assert isinstance(decoded, dict)
    return decoded


def round_trip(sim_cls: type[VenueSim], venue_cls: type[Venue], spec_list: list[ListingSpec]) -> list[Instrument]:
    """Instruments listed for ``spec_list``; asserts the venue module reads the simulated listing back exactly."""
    instruments = [i for s in spec_list if (i := sim_cls.list_instrument(s)) is not None]
    listing = sim_cls(instruments).listing(instruments)
    assert set(listing) == set(venue_cls.instrument_paths)
    parsed = venue_cls.parse_instruments(wire(listing))
    # Venues with one listing per contract kind read linear before inverse: compare in one order.
    assert sorted(parsed, key=_key) == sorted(instruments, key=_key)
    assert len(parsed) == len(instruments) == len({i.native_symbol for i in instruments})
    return instruments


def _key(instrument: Instrument) -> str:
    return instrument.native_symbol
