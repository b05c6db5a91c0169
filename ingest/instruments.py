"""Symbol registry: which instruments arbstream tracks, from the venues' own listings.

Each venue's REST instrument listing is kept in the venue's own format: a
bundled snapshot in ``ingest/data/instruments/<venue>.json`` (works offline) and,
after ``arbstream instruments refresh``, a fresher copy in the cache directory,
which wins. Which of the listed instruments are tracked is :mod:`ingest.universe`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from ingest import universe
from ingest.universe import UniverseSpec
from ingest.venues import implemented_venues, venue_class
from ingest.venues.base import load_json
from plumbing.errors import ConfigError
from schemas.market import Instrument

BUNDLED_DIR = Path(__file__).resolve().parent / "data" / "instruments"


def listing_path(venue: str, cache_dir: Path | None) -> Path:
    """The freshest listing on disk for ``venue``: refreshed cache first, bundled snapshot second."""
    if cache_dir is not None:
        cached = cache_dir / f"{venue}.json"
        if cached.exists():
            return cached
    return BUNDLED_DIR / f"{venue}.json"


def load_venue_instruments(venue: str, cache_dir: Path | None = None) -> list[Instrument]:
    path = listing_path(venue, cache_dir)
    try:
        listing = load_json(path.read_bytes())
        if not isinstance(listing, dict):
            raise ConfigError(f"{path}: expected an object mapping REST paths to responses")
    except FileNotFoundError as exc:
        raise ConfigError(f"no instrument listing for {venue} ({path})") from exc
    return venue_class(venue).parse_instruments(listing)


def load_all(venues: Iterable[str] | None = None, cache_dir: Path | None = None) -> list[Instrument]:
    return [i for venue in (venues or implemented_venues()) for i in load_venue_instruments(venue, cache_dir)]


def select(
    known: list[Instrument], bases: Sequence[str] | UniverseSpec | None = None, manual_file: Path | None = None
) -> list[Instrument]:
    """Instruments to track: the symbols file if given, else the universe rule (:mod:`ingest.universe`)."""
    spec = bases if isinstance(bases, UniverseSpec) else UniverseSpec.parse(list(bases or []))
    return universe.select(known, spec, manual_file)


def dump(instruments: list[Instrument]) -> str:
    return json.dumps([msgspec.to_builtins(i) for i in instruments], indent=1)
