"""The tracked universe as the API knows it: ingest's ``instruments`` and ``listings`` topics.

The read model only knows instruments that have quoted; the universe also names those that
have not (yet), so a tracked symbol without data answers with empty prices instead of 404, and
/api/venues lists silent instruments and which listing each venue uses. Ingest publishes the
universe on the compacted ``instruments`` topic (a tombstone when an instrument is delisted or
no longer tracked) and each venue's ``ListingStatus`` on ``listings``; the follower
(:mod:`api.follower`) reads both to their end at start, then follows them, so the universe
changes without a restart.

``ARBSTREAM_SYMBOLS_FILE``, when the API is given one, adds its instruments (resolved against
the listings on disk) as *configured*; ``POST /api/reload-config`` re-reads it.

Listeners (the read model, :meth:`api.readmodel.ReadModel.retrack`) hear which symbols a change
touched, so the API's views drop a removed instrument's frozen quotes at once and a request pays
nothing for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import msgspec

from api.settings import ApiSettings
from ingest.instruments import load_all
from ingest.listings import choose_universe
from schemas.market import Instrument, ListingStatus

log = logging.getLogger(__name__)

_instrument = msgspec.json.Decoder(Instrument)
_listing = msgspec.json.Decoder(ListingStatus)


class Universe:
    def __init__(self, instruments: Iterable[Instrument] = (), configured: Iterable[Instrument] = ()) -> None:
        self.published: dict[str, Instrument] = {i.instrument_id: i for i in instruments}
        """From the ``instruments`` topic, by instrument id."""
        self.configured: tuple[Instrument, ...] = tuple(configured)
        """From the API's own ``ARBSTREAM_SYMBOLS_FILE`` (empty without one)."""
        self.listings: dict[str, ListingStatus] = {}
        """From the ``listings`` topic, by venue."""
        self.undecodable = 0
        self._cache: dict[str, object] = {}
        self._listeners: list[Callable[[set[str] | None], None]] = []

    def listen(self, listener: Callable[[set[str] | None], None]) -> None:
        """Call ``listener(bases)`` after each change: the symbols it touched, None = maybe all."""
        self._listeners.append(listener)

    @property
    def known(self) -> bool:
        """Whether ingest published a universe. The API's own symbols file alone does not restrict
        what is shown: it names instruments to expect, while the quotes come from whatever ingest
        streams (an older ingest, or ticks produced by other means, publish no universe)."""
        return bool(self.published)

    def tracks(self, instrument_id: str) -> bool:
        """Whether the API shows this instrument: published by ingest, or no universe known (then
        everything is shown). Not the API's own symbols file: only the replica that received a
        ``POST /api/reload-config`` re-reads it, so every replica follows ingest's topic alone and
        they all show the same instruments.

        O(1), no cached set to rebuild: the read model asks on every quote."""
        return not self.known or instrument_id in self.published

    def _changed(self, bases: set[str], was_known: bool) -> None:
        self._cache.clear()
        # Becoming known (the first instrument) or unknown changes what every symbol shows.
        scope = bases if was_known == self.known else None
        for listener in self._listeners:
            listener(scope)

    # -- the topics --------------------------------------------------------
    def apply_instrument(self, key: bytes | None, value: bytes | None) -> None:
        """One ``instruments`` record: an instrument, or a tombstone removing its key."""
        if key is None:
            return
        was_known, bases = self.known, set()
        if value is None:
            removed = self.published.pop(key.decode(errors="replace"), None)
            if removed is None:
                return
            bases.add(removed.base)
        else:
            try:
                instrument = _instrument.decode(value)
            except msgspec.DecodeError as exc:
                self._bad("instruments", key, exc)
                return
            previous = self.published.get(instrument.instrument_id)
            self.published[instrument.instrument_id] = instrument
            bases |= {instrument.base} | ({previous.base} if previous is not None else set())
        self._changed(bases, was_known)

    def apply_listing(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if key is not None:
                self.listings.pop(key.decode(errors="replace"), None)
            return
        try:
            status = _listing.decode(value)
        except msgspec.DecodeError as exc:
            self._bad("listings", key, exc)
            return
        self.listings[status.venue] = status

    def set_configured(self, instruments: Iterable[Instrument]) -> None:
        was_known, before = self.known, {i.base for i in self.configured}
        self.configured = tuple(instruments)
        self._changed(before | {i.base for i in self.configured}, was_known)

    def _bad(self, topic: str, key: bytes | None, exc: Exception) -> None:
        self.undecodable += 1
        log.error("skipping undecodable record on %s (key %r): %s", topic, key, exc)

    # -- views (cached until the next change: read on every request) -------
    @property
    def instruments(self) -> tuple[Instrument, ...]:
        cached = self._cache.get("instruments")
        if cached is None:
            extra = [i for i in self.configured if i.instrument_id not in self.published]
            cached = self._cache["instruments"] = (*self.published.values(), *extra)
        assert isinstance(cached, tuple)
        return cached

    @property
    def ids(self) -> set[str]:
        return {i.instrument_id for i in self.instruments}

    @property
    def symbols(self) -> set[str]:
        cached = self._cache.get("symbols")
        if cached is None:
            cached = self._cache["symbols"] = frozenset(i.base for i in self.instruments)
        assert isinstance(cached, frozenset)
        return set(cached)

    @property
    def venues(self) -> set[str]:
        return {i.venue for i in self.instruments} | set(self.listings)

    def by_venue(self, venue: str) -> list[Instrument]:
        cached = self._cache.get("by_venue")
        if cached is None:
            grouped: dict[str, list[Instrument]] = {}
            for instrument in self.instruments:
                grouped.setdefault(instrument.venue, []).append(instrument)
            cached = self._cache["by_venue"] = grouped
        assert isinstance(cached, dict)
        return list(cached.get(venue, []))


def configured_instruments(settings: ApiSettings) -> list[Instrument]:
    """The API's own symbols file against the listings on disk; [] without one.

    Raises :class:`plumbing.errors.ConfigError` on a bad file."""
    if settings.symbols_file is None:
        return []
    return choose_universe(load_all(None, settings.instruments_cache_dir), settings)


def load_universe(settings: ApiSettings) -> Universe:
    """A universe holding the configured instruments; the follower adds the published ones."""
    return Universe(configured=configured_instruments(settings))
