"""Venue registry: one module per venue in this package, one line per venue here.

Each module defines a :class:`~ingest.venues.base.Venue` subclass and exports it
as ``VENUE``; its bundled instrument listing lives in
``ingest/data/instruments/<name>.json`` in the venue's own REST format.
"""

from __future__ import annotations

import importlib
from functools import cache

from ingest.venues.base import Venue
from plumbing.errors import ConfigError

VENUE_NAMES: tuple[str, ...] = (
    "binance",
    "bybit",
    "okx",
    "kucoin",
    "deribit",
    "bitmex",
    "gate",
    "mexc",
    "bitget",
    "phemex",
    "coindcx",
    "hyperliquid",
    "paradex",
    "coinex",
)


@cache
def venue_class(name: str) -> type[Venue]:
    if name not in VENUE_NAMES:
        raise ConfigError(f"unknown venue {name!r}; known venues: {', '.join(VENUE_NAMES)}")
    try:
        module = importlib.import_module(f"ingest.venues.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"ingest.venues.{name}":
            raise ConfigError(f"venue {name!r} is not implemented yet") from exc
        raise
    venue: type[Venue] = module.VENUE
    return venue


def implemented_venues() -> list[str]:
    """Venues whose module exists, in registry order."""
    found = []
    for name in VENUE_NAMES:
        try:
            venue_class(name)
        except ConfigError:
            continue
        found.append(name)
    return found
