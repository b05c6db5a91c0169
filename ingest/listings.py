"""Live instrument listings: fetch every venue's REST listing, cache it, fall back, refresh.

At start ingest asks every enabled venue for its listing *in parallel*, each under its own
deadline (``ARBSTREAM_LISTING_DEADLINE_S``; attempts of ``ARBSTREAM_LISTING_TIMEOUT_S`` with
backoff between them), so one slow venue — a thousand contracts, or an endpoint that never
answers — delays only itself. A fetched listing is validated by parsing it before it is
written to the cache (atomically: temp file + rename, so a crash never leaves half a file);
a venue that cannot be reached falls back to the cache, then to the bundled snapshot
(``ingest/data/instruments``). Every venue's outcome is a :class:`VenueListing` whose
:meth:`~VenueListing.status` is published on the ``listings`` topic.

On a periodic refresh a venue that cannot be reached keeps the listing it already uses
(a transient outage must not swap a fresh live listing for an old snapshot); the failure is
recorded in its status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import aiohttp

from ingest.instruments import BUNDLED_DIR, select
from ingest.universe import UniverseSpec
from ingest.venues import venue_class
from ingest.venues.base import FrameError, load_json
from plumbing.errors import ConfigError, RetryableError
from schemas.market import Instrument, ListingSource, ListingStatus

log = logging.getLogger(__name__)

RestBase = Callable[[str], str]
"""venue -> REST base URL to fetch its listing from (live, or the simulator's)."""


class UniverseSettings(Protocol):
    """The settings the universe rule reads (ingest's and the API's settings both have them)."""

    @property
    def symbols(self) -> list[str]: ...
    @property
    def symbols_file(self) -> Path | None: ...


def choose_universe(known: Sequence[Instrument], settings: UniverseSettings) -> list[Instrument]:
    """Which of the known instruments are tracked: the ONE place the universe rule is called.

    Ingest's settings carry the whole rule (min venues, quote groups, exclude); other services'
    settings only the symbols."""
    spec_of = getattr(settings, "universe_spec", None)
    spec = spec_of() if callable(spec_of) else UniverseSpec.parse(settings.symbols)
    return select(list(known), spec, settings.symbols_file)


@dataclass(frozen=True)
class FetchPolicy:
    timeout_s: float = 10.0
    """One attempt (connect + every path of the listing)."""
    attempts: int = 3
    deadline_s: float = 30.0
    """The venue's whole fetch, attempts and backoff included."""
    backoff_s: float = 0.5
    """Pause after the first failed attempt; doubles after each."""


@dataclass(frozen=True)
class VenueListing:
    """The listing a venue's connections use, and where it came from."""

    venue: str
    instruments: tuple[Instrument, ...]
    source: ListingSource
    listed_ts_ns: int
    """When this listing was fetched from the venue (cache: the file's write time; bundled:
    the snapshot file's modification time, which is only as good as the checkout's)."""
    error: str = ""
    """Why the latest live fetch failed ("" when it succeeded)."""

    def status(self, tracked: int, now_ns: int | None = None) -> ListingStatus:
        now = time.time_ns() if now_ns is None else now_ns
        return ListingStatus(
            venue=self.venue,
            source=self.source,
            listed_ts_ns=self.listed_ts_ns,
            instruments=len(self.instruments),
            tracked=tracked,
            error=self.error,
            exchange_ts_ns=now,
            receipt_ts_ns=now,
        )


class ListingError(RetryableError):
    """A venue's listing could not be fetched or understood (the venue may answer later)."""


def parse_listing(venue: str, raw: bytes) -> list[Instrument]:
    """Instruments of a listing file's bytes; raises ListingError for anything unusable."""
    try:
        listing = load_json(raw)
        if not isinstance(listing, dict):
            raise ListingError("expected an object mapping REST paths to responses")
        instruments = venue_class(venue).parse_instruments(listing)
    except ListingError:
        raise
    except (FrameError, ConfigError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ListingError(f"unparseable listing ({type(exc).__name__}: {exc})") from exc
    if not instruments:
        # An empty answer (maintenance page, wrong market) must not unsubscribe everything.
        raise ListingError("the listing holds no perpetual")
    return instruments


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


async def fetch_live(venue: str, http: aiohttp.ClientSession, rest_base: str, policy: FetchPolicy) -> bytes:
    """The venue's listing bytes, validated; retries network failures with backoff."""
    cls = venue_class(venue)
    delay = policy.backoff_s
    last: Exception | None = None
    for attempt in range(1, policy.attempts + 1):
        try:
            raw = await asyncio.wait_for(cls.fetch_listing(http, rest_base), policy.timeout_s)
        except (aiohttp.ClientError, OSError, TimeoutError, RetryableError) as exc:
            last = exc
            reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            log.info("%s listing: attempt %d/%d failed (%s)", venue, attempt, policy.attempts, reason)
            if attempt < policy.attempts:
                await asyncio.sleep(delay)
                delay *= 2
            continue
        parse_listing(venue, raw)  # a listing we cannot parse is not retried: it will not improve
        return raw
    reason = f"timed out after {policy.timeout_s:g}s" if isinstance(last, TimeoutError) else repr(last)
    raise ListingError(f"{policy.attempts} attempts failed, last: {reason}")


def venue_policy(venue: str, policy: FetchPolicy) -> FetchPolicy:
    """``policy`` stretched for a venue whose listing is slow by design: its ``listing_time_s``
    (CoinDCX: one GET per pair, paced under its rate limit) raises the timeout and the deadline."""
    needed: float | None = getattr(venue_class(venue), "listing_time_s", None)
    if needed is None:
        return policy
    return replace(policy, timeout_s=max(policy.timeout_s, needed), deadline_s=max(policy.deadline_s, needed))


async def fetch_validated(
    venue: str, http: aiohttp.ClientSession, rest_base: str, cache_dir: Path, policy: FetchPolicy
) -> VenueListing:
    """Live listing under the venue's deadline, written to the cache; raises ListingError."""
    policy = venue_policy(venue, policy)
    try:
        raw = await asyncio.wait_for(fetch_live(venue, http, rest_base, policy), policy.deadline_s)
    except TimeoutError as exc:
        raise ListingError(f"no listing within the {policy.deadline_s:g}s deadline") from exc
    fetched = time.time_ns()
    try:
        write_atomically(cache_dir / f"{venue}.json", raw)
    except OSError as exc:  # the live listing is still good; only the fallback is lost
        log.error("%s listing: cannot write the cache (%s)", venue, exc)
    return VenueListing(venue, tuple(parse_listing(venue, raw)), ListingSource.LIVE, fetched)


def from_disk(venue: str, cache_dir: Path, live_error: str) -> VenueListing:
    """The cached listing, else the bundled snapshot; raises ConfigError when neither parses."""
    errors = [f"live: {live_error}"]
    for source, path in (
        (ListingSource.CACHE, cache_dir / f"{venue}.json"),
        (ListingSource.BUNDLED, BUNDLED_DIR / f"{venue}.json"),
    ):
        try:
            instruments = parse_listing(venue, path.read_bytes())
            listed = path.stat().st_mtime_ns
        except FileNotFoundError:
            errors.append(f"{source.value}: no file")
            continue
        except (OSError, ListingError) as exc:
            errors.append(f"{source.value}: {exc}")
            continue
        return VenueListing(venue, tuple(instruments), source, listed, "; ".join(errors))
    raise ConfigError(f"{venue}: no usable instrument listing ({'; '.join(errors)})")


async def load_venue(
    venue: str, http: aiohttp.ClientSession, rest_base: str, cache_dir: Path, policy: FetchPolicy
) -> VenueListing:
    """Start-up: live -> cache -> bundled."""
    try:
        listing = await fetch_validated(venue, http, rest_base, cache_dir, policy)
    except ListingError as exc:
        listing = from_disk(venue, cache_dir, str(exc))
        log.warning("%s listing: using the %s copy (%s)", venue, listing.source.value, listing.error)
        return listing
    log.info("%s listing: live, %d perpetuals", venue, len(listing.instruments))
    return listing


async def refresh_venue(
    current: VenueListing, http: aiohttp.ClientSession, rest_base: str, cache_dir: Path, policy: FetchPolicy
) -> VenueListing:
    """Periodic refresh: a live listing, or the current one kept with the failure recorded."""
    try:
        return await fetch_validated(current.venue, http, rest_base, cache_dir, policy)
    except ListingError as exc:
        log.warning("%s listing refresh failed (%s); keeping the %s listing", current.venue, exc, current.source.value)
        return replace(current, error=f"refresh: {exc}")


async def load_all_live(
    venues: Iterable[str], http: aiohttp.ClientSession, rest_base: RestBase, cache_dir: Path, policy: FetchPolicy
) -> dict[str, VenueListing]:
    """Every venue's listing, fetched in parallel (each under its own deadline)."""
    names = list(venues)
    results = await asyncio.gather(*(load_venue(v, http, rest_base(v), cache_dir, policy) for v in names))
    return dict(zip(names, results, strict=True))


async def refresh_all(
    current: dict[str, VenueListing],
    http: aiohttp.ClientSession,
    rest_base: RestBase,
    cache_dir: Path,
    policy: FetchPolicy,
) -> dict[str, VenueListing]:
    names = list(current)
    fresh = await asyncio.gather(*(refresh_venue(current[v], http, rest_base(v), cache_dir, policy) for v in names))
    return dict(zip(names, fresh, strict=True))


def known_instruments(listings: dict[str, VenueListing]) -> list[Instrument]:
    return [i for listing in listings.values() for i in listing.instruments]


def statuses(listings: dict[str, VenueListing], tracked: Sequence[Instrument]) -> list[ListingStatus]:
    """One status per venue, with how many of its instruments the universe tracks."""
    now = time.time_ns()
    counts: dict[str, int] = {}
    for instrument in tracked:
        counts[instrument.venue] = counts.get(instrument.venue, 0) + 1
    return [listing.status(counts.get(venue, 0), now) for venue, listing in listings.items()]
