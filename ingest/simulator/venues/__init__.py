"""Venue simulators, one module per venue, each exporting ``SIM``."""

from __future__ import annotations

import importlib

from ingest.simulator.base import VenueSim
from plumbing.errors import ConfigError


def sim_class(name: str) -> type[VenueSim]:
    try:
        module = importlib.import_module(f"ingest.simulator.venues.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"ingest.simulator.venues.{name}":
            raise ConfigError(f"the simulator does not speak {name!r} yet") from exc
        raise
    sim: type[VenueSim] = module.SIM
    return sim
