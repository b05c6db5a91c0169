"""Funding history from the venues' public REST endpoints, backfilled on start (decision 0023).

At start ingest reads what ``funding-settlements`` already holds, then fetches, in the
background, each tracked instrument's settled rates of the last ``funding_backfill_days`` days
that the topic does not have yet from its venue's funding-history endpoint
(:mod:`ingest.venues.history`), and publishes them as :class:`FundingSettlement` with the
API's key (``<instrument>|<settlement ns>``). One task per venue, most liquid instrument first,
paced by the venue's documented REST limit: it shares nothing with the WebSocket runners, so
quotes and other venues never wait for it.

Why a backfilled point never counts twice: it carries the settlement time both as
``settled_ts_ns`` (snapped to the whole hour the venue meant, the time the API's live detection
keys on) and as ``observed_ts_ns``, and the API's history keeps one row per key, the
later-observed one: the venue's record replaces what the API saw quoted before the settlement.
On restart the topic already holds the backfilled points, so only newer ones are fetched.

Failures (venue unreachable, HTTP error, a payload the parser refuses) are counted per venue,
logged once per venue and kind, exported as metrics and published with the venue's listing
status (``/api/venues``); none of them stops ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import aiohttp
import msgspec
from aiokafka.errors import KafkaError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.settlements_io import SettlementWriter
from ingest.venues.base import FrameError, load_json
from ingest.venues.history import HOUR_NS, HistoryRequest, HistorySpec, Paging
from schemas.funding import FundingSettlement
from schemas.market import BackfillStatus, Instrument, ListingStatus

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
MAX_PAGES = 200
"""Per instrument: 30 days of hourly rows is 720; a venue that keeps answering full pages is wrong."""
UNREACHABLE_AFTER = 3
"""Consecutive connection failures with nothing fetched yet: the venue is reported unreachable
and its remaining instruments are not tried (no point hammering a venue that is not there)."""

Fetch = Callable[[HistoryRequest], Awaitable[Any]]
Publish = Callable[[list[FundingSettlement]], Awaitable[None]]


class HistoryUnavailable(Exception):
    """One request failed: HTTP status, connection, timeout (``connection`` tells which kind)."""

    def __init__(self, message: str, connection: bool = False) -> None:
        super().__init__(message)
        self.connection = connection


@dataclass(frozen=True)
class VenueHistory:
    """A venue module's funding-history declarations (see :mod:`ingest.venues.history`)."""

    spec: HistorySpec
    module: ModuleType

    def request(self, instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
        request: HistoryRequest = self.module.funding_history_request(instrument, start_ms, end_ms, page)
        return request

    def parse(self, payload: Any, instrument: Instrument) -> list[FundingSettlement]:
        rows: list[FundingSettlement] = self.module.parse_funding_history(payload, instrument)
        return rows


def venue_history(venue: str) -> VenueHistory | None:
    """The venue's funding-history declarations; None when it has no public endpoint."""
    module = importlib.import_module(f"ingest.venues.{venue}")
    spec = getattr(module, "FUNDING_HISTORY", None)
    return VenueHistory(spec, module) if spec is not None else None


# -- pure steps ----------------------------------------------------------------------------------
def by_liquidity(instruments: Iterable[Instrument]) -> list[Instrument]:
    """Most 24 h quote volume first; instruments without a known volume last, by id."""
    return sorted(instruments, key=lambda i: (i.volume_24h_quote is None, -(i.volume_24h_quote or 0), i.instrument_id))


def window(instrument: Instrument, now_ms: int, days: int, have_until_ns: int | None) -> tuple[int, int] | None:
    """``[start, end]`` ms still to fetch, or None when the topic already holds everything that
    can have settled (its newest backfilled point is less than one interval old)."""
    start = now_ms - days * DAY_MS
    if have_until_ns is not None:
        start = max(start, have_until_ns // 1_000_000 + 1)
    interval_ms = (instrument.funding_interval_h or 1) * HOUR_NS // 1_000_000
    return (start, now_ms) if now_ms - start >= interval_ms else None


async def fetch_instrument(
    history: VenueHistory, instrument: Instrument, start_ms: int, end_ms: int, fetch: Fetch
) -> list[FundingSettlement]:
    """Every settlement in ``[start_ms, end_ms]``, following the venue's paging rule."""
    spec, found = history.spec, {}
    lo, hi, page = start_ms, end_ms, 1
    for _ in range(MAX_PAGES):
        step_hi = min(hi, lo + spec.max_window_ms) if spec.max_window_ms and spec.paging is Paging.FORWARD else hi
        rows = history.parse(await fetch(history.request(instrument, lo, step_hi, page)), instrument)
        for row in rows:
            if start_ms * 1_000_000 <= row.settled_ts_ns <= end_ms * 1_000_000:
                found[row.settled_ts_ns] = row
        times = [r.settled_ts_ns // 1_000_000 for r in rows]
        full = len(rows) >= spec.page_size
        if spec.paging is Paging.FORWARD:
            if full and max(times) + 1 > lo:
                lo = max(times) + 1
            elif step_hi < hi:
                lo = step_hi + 1  # a venue limiting the window a request spans: the next window
            else:
                break
        elif spec.paging is Paging.BACKWARD:
            if not full or min(times) - 1 >= hi:
                break
            hi = min(times) - 1
        else:
            if not full or min(times) < start_ms:
                break
            page += 1
    else:
        raise FrameError(f"more than {MAX_PAGES} pages of funding history: the paging rule does not advance")
    return [found[t] for t in sorted(found)]


# -- state -------------------------------------------------------------------------------------
@dataclass
class VenueProgress:
    state: str = "pending"
    """pending, running, done, unreachable, unsupported, failed."""
    instruments: int = 0
    done: int = 0
    written: int = 0
    skipped: int = 0
    """Instruments whose whole window was already on the topic."""
    errors: int = 0
    last_error: str = ""
    reached: bool = False
    """At least one request was answered (with anything: an HTTP error is an answer)."""
    logged: set[str] = field(default_factory=set)
    """Error kinds already logged (each is logged once per venue, then only counted)."""

    def status(self) -> BackfillStatus:
        return BackfillStatus(
            state=self.state,
            instruments=self.instruments,
            done=self.done,
            written=self.written,
            skipped=self.skipped,
            errors=self.errors,
            last_error=self.last_error,
        )


class Pacer:
    """At most one request start per ``interval_s`` for one venue."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = time.monotonic() + self.interval_s


class FundingBackfill:
    """Fetches and publishes funding history for the instruments handed to :meth:`track`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        rest_base: Callable[[str], str],
        days: int,
        publish: Publish,
        on_change: Callable[[], Awaitable[None]] | None = None,
        timeout_s: float = 15.0,
        pacing: float = 1.0,
    ) -> None:
        self.http = http
        self.rest_base = rest_base
        self.days = days
        self.publish = publish
        self.on_change = on_change
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.pacing = pacing
        """Multiplies every venue's pause between requests (0 against the simulator: no venue limit)."""
        self.progress: dict[str, VenueProgress] = {}
        self.have_until: dict[str, int] = {}
        """Per instrument: newest backfilled settlement already on the topic (ns)."""
        self._seen: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.started = False
        self._pacers: dict[str, Pacer] = {}
        """What the topic holds is known: instruments may be handed over (:func:`run_backfill`)."""

    def statuses(self) -> dict[str, BackfillStatus]:
        return {venue: p.status() for venue, p in self.progress.items()}

    def track(self, instruments: Sequence[Instrument], now_ms: int | None = None) -> None:
        """Backfill these instruments (those already handed over are left out), one task per venue."""
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        fresh: dict[str, list[Instrument]] = {}
        for instrument in instruments:
            if instrument.instrument_id not in self._seen:
                self._seen.add(instrument.instrument_id)
                fresh.setdefault(instrument.venue, []).append(instrument)
        for venue, mine in fresh.items():
            progress = self.progress.setdefault(venue, VenueProgress())
            progress.instruments += len(mine)
            history = venue_history(venue)
            if history is None:
                progress.state = "unsupported"
                continue
            task = asyncio.create_task(self._guarded(venue, history, by_liquidity(mine), now), name=f"backfill-{venue}")
            self._tasks.append(task)

    async def wait(self) -> None:
        """Until every venue task handed out so far has finished (tests, one-shot runs)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _guarded(self, venue: str, history: VenueHistory, instruments: list[Instrument], now_ms: int) -> None:
        """One venue's backfill; a failure of ours (broker refusing, a parser's bug) ends this venue
        only, as ``failed`` with the reason, and is logged with its traceback."""
        try:
            await self._venue(venue, history, instruments, now_ms)
        except Exception as exc:
            log.exception("%s funding backfill failed", venue)
            progress = self.progress[venue]
            progress.state, progress.last_error = "failed", repr(exc)[:300]
            await self._changed()

    async def _venue(self, venue: str, history: VenueHistory, instruments: list[Instrument], now_ms: int) -> None:
        progress = self.progress[venue]
        # One pacer per venue, shared by the start-up task and those of instruments listed later.
        pacer = self._pacers.setdefault(venue, Pacer(history.spec.min_interval_s * self.pacing))
        progress.state = "running"
        await self._changed()
        failures = [0]  # consecutive connection failures while nothing has been fetched
        queue: asyncio.Queue[Instrument] = asyncio.Queue()
        for instrument in instruments:
            queue.put_nowait(instrument)

        async def worker() -> None:
            while not queue.empty() and progress.state == "running":
                instrument = queue.get_nowait()
                await self._instrument(venue, history, instrument, now_ms, pacer, failures)
                if progress.done % 50 == 0:
                    await self._changed()

        await asyncio.gather(*(worker() for _ in range(max(1, history.spec.concurrency))))
        if progress.state == "running":
            # Not one answer from the venue: say so, rather than "done" with a count of errors.
            progress.state = "unreachable" if progress.errors and not progress.reached else "done"
        log.info(
            "%s funding backfill %s: %d/%d instruments, %d settlements written, %d already on the topic, %d errors",
            venue,
            progress.state,
            progress.done,
            progress.instruments,
            progress.written,
            progress.skipped,
            progress.errors,
        )
        await self._changed()

    async def _instrument(
        self, venue: str, history: VenueHistory, instrument: Instrument, now_ms: int, pacer: Pacer, failures: list[int]
    ) -> None:
        progress = self.progress[venue]
        span = window(instrument, now_ms, self.days, self.have_until.get(instrument.instrument_id))
        if span is None:
            progress.skipped += 1
            progress.done += 1
            return

        async def fetch(request: HistoryRequest) -> Any:
            await pacer.wait()
            return await self._get(venue, request)

        try:
            rows = await fetch_instrument(history, instrument, span[0], span[1], fetch)
            failures[0], progress.reached = 0, True
            await self.publish(rows)
            progress.written += len(rows)
            if rows:
                self.have_until[instrument.instrument_id] = rows[-1].settled_ts_ns
        except HistoryUnavailable as exc:
            self._error(progress, venue, "unreachable" if exc.connection else "http", instrument, exc)
            progress.reached |= not exc.connection
            if exc.connection and not progress.reached:
                failures[0] += 1
                if failures[0] >= UNREACHABLE_AFTER:
                    progress.state = "unreachable"
        except FrameError as exc:
            progress.reached = True
            self._error(progress, venue, "payload", instrument, exc)
        progress.done += 1

    async def _get(self, venue: str, request: HistoryRequest) -> Any:
        url = self.rest_base(venue) + request.path
        try:
            if request.json_body is not None:
                call = self.http.post(url, json=request.json_body, timeout=self.timeout)
            else:
                call = self.http.get(url, params=request.params, timeout=self.timeout)
            async with call as response:
                body = await response.read()
                if response.status != 200:
                    raise HistoryUnavailable(f"HTTP {response.status} from {request.path}: {body[:200]!r}")
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise HistoryUnavailable(f"{request.path}: {exc!r}", connection=True) from exc
        except aiohttp.ClientError as exc:
            raise HistoryUnavailable(f"{request.path}: {exc!r}") from exc
        return load_json(body)

    def _error(self, progress: VenueProgress, venue: str, kind: str, instrument: Instrument, exc: Exception) -> None:
        progress.errors += 1
        progress.last_error = f"{instrument.native_symbol}: {exc}"[:300]
        if kind not in progress.logged:
            progress.logged.add(kind)
            log.error("%s funding backfill (%s, further ones only counted): %s", venue, kind, progress.last_error)

    async def _changed(self) -> None:
        if self.on_change is not None:
            try:
                await self.on_change()
            except (KafkaError, OSError) as exc:  # a status report failing must not stop the backfill
                log.warning("funding backfill status not published: %r", exc)


class BackfillCollector(Collector):
    """Prometheus view of the backfill's per-venue progress."""

    def __init__(self, backfill: FundingBackfill) -> None:
        self.backfill = backfill

    def collect(self) -> Iterator[Metric]:
        written = CounterMetricFamily("arbstream_funding_backfill_written", "settlements backfilled", labels=["venue"])
        errors = CounterMetricFamily("arbstream_funding_backfill_errors", "failed history fetches", labels=["venue"])
        pending = GaugeMetricFamily("arbstream_funding_backfill_pending", "instruments left", labels=["venue"])
        for venue, p in self.backfill.progress.items():
            written.add_metric([venue], p.written)
            errors.add_metric([venue], p.errors)
            pending.add_metric([venue], p.instruments - p.done)
        yield from (written, errors, pending)


def with_backfill(statuses: Iterable[ListingStatus], backfill: dict[str, BackfillStatus]) -> list[ListingStatus]:
    """Listing statuses carrying each venue's backfill progress (how ``/api/venues`` shows it)."""
    return [msgspec.structs.replace(s, funding_backfill=backfill.get(s.venue, s.funding_backfill)) for s in statuses]


async def run_backfill(
    backfill: FundingBackfill, writer: SettlementWriter, instruments: Sequence[Instrument], keep_open: bool = False
) -> None:
    """The start-up task: read what the topic holds, then fetch the rest (never raises on venue errors).

    ``keep_open``: then stay, writer open, for instruments that join the universe later (ingest
    hands them to :meth:`FundingBackfill.track` on each listing refresh) until cancelled.
    """
    try:
        backfill.have_until = await writer.start()
        log.info("funding backfill: %d instruments already backfilled on the topic", len(backfill.have_until))
        backfill.track(instruments)
        backfill.started = True
        await backfill.wait()
        if keep_open:
            await asyncio.Event().wait()
    except (KafkaError, OSError) as exc:  # the broker is reported by /health; ingest itself carries on
        log.error("funding backfill stopped: funding-settlements unavailable: %r", exc)
    finally:
        await backfill.stop()
        await writer.stop()
