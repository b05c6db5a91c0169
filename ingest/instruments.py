"""Symbol registry: which instruments arbstream tracks, from the venues' own listings.

Each venue's REST instrument listing is kept in the venue's own format: a
bundled snapshot in ``ingest/data/instruments/<venue>.json`` (works offline) and,
after ``arbstream instruments refresh``, a fresher copy in the cache directory,
which wins. The seed's manual format (``BASE:NATIVE_SYMBOL:venue`` per line)
restricts or extends what is tracked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from arbstream.errors import ConfigError
from ingest.venues import implemented_venues, venue_class
from ingest.venues.base import load_json
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


@dataclass(frozen=True)
class ManualLine:
    base: str
    native_symbol: str
    venue: str


def parse_manual(text: str, known: list[Instrument]) -> list[Instrument]:
    """Resolve ``BASE:NATIVE_SYMBOL:venue`` lines against the known listings.

    Blank lines and ``#`` comments are skipped. A line naming an unknown venue or
    symbol, or a base that does not match the listing, is rejected with an error
    naming the line, so a typo never silently drops an instrument.
    """
    by_key = {(i.venue, i.native_symbol): i for i in known}
    venues = {i.venue for i in known} | set(implemented_venues())
    chosen: list[Instrument] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(":")]
        if len(parts) != 3 or not all(parts):
            raise ConfigError(f"line {number}: {raw.strip()!r} is not BASE:NATIVE_SYMBOL:venue")
        base, native, venue = parts[0].upper(), parts[1], parts[2].lower()
        if venue not in venues:
            raise ConfigError(f"line {number}: {raw.strip()!r}: unknown venue {venue!r}")
        instrument = by_key.get((venue, native))
        if instrument is None:
            raise ConfigError(f"line {number}: {raw.strip()!r}: {venue} lists no perpetual {native!r}")
        if instrument.base != base:
            raise ConfigError(f"line {number}: {raw.strip()!r}: {venue} {native} is base {instrument.base}, not {base}")
        chosen.append(instrument)
    return chosen


def select(
    known: list[Instrument], bases: Iterable[str] | None = None, manual_file: Path | None = None
) -> list[Instrument]:
    """Instruments to track: the manual file's lines if given, else every known one of ``bases``."""
    if manual_file is not None:
        return parse_manual(manual_file.read_text(), known)
    wanted = {b.upper() for b in bases} if bases else None
    return [i for i in known if wanted is None or i.base in wanted]


def dump(instruments: list[Instrument]) -> str:
    return json.dumps([msgspec.to_builtins(i) for i in instruments], indent=1)
