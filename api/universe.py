"""The configured symbol universe: which instruments the operator asked to track.

The read model only knows instruments that have quoted; the configuration also
names those that have not (yet), so a configured symbol without data answers
with empty prices instead of 404, and /api/venues lists silent instruments.
It is read from the same places as ingest's (``ARBSTREAM_SYMBOLS`` or
``ARBSTREAM_SYMBOLS_FILE`` against the venues' listings) and re-read by
``POST /api/reload-config`` without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.settings import ApiSettings
from ingest.instruments import load_all, select
from schemas.market import Instrument


@dataclass(frozen=True)
class Universe:
    instruments: tuple[Instrument, ...] = ()

    @property
    def ids(self) -> set[str]:
        return {i.instrument_id for i in self.instruments}

    @property
    def symbols(self) -> set[str]:
        return {i.base for i in self.instruments}

    @property
    def venues(self) -> set[str]:
        return {i.venue for i in self.instruments}

    def by_venue(self, venue: str) -> list[Instrument]:
        return [i for i in self.instruments if i.venue == venue]


def load_universe(settings: ApiSettings) -> Universe:
    """Raises :class:`arbstream.errors.ConfigError` on a bad symbols file."""
    known = load_all(None, settings.instruments_cache_dir)
    return Universe(tuple(select(known, settings.symbols, settings.symbols_file)))
