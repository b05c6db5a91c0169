"""Replaying recordings: recorded raw frames -> today's venue parsers -> events with recorded times.

Frames from every file are merged in receipt-time order (streamed: files are never loaded
whole) and parsed by a fresh venue instance per recorded connection, so snapshot/delta state
carries across frames exactly as it did live. Events keep their recorded receipt times and
the processors work in event time, so a worker (or ``arbstream backtest``) on the replay
produces the opportunities the live system produced. The health events live saw are replayed
in the same order, and frames are parsed against the instrument listing live used (the
recording's ``instruments-*.json``; the current listings when a recording has none). Files of
normalised ticks (``*.ticks.jsonl[.gz]``, what ``arbstream normalize`` prints) are merged in as
they are.

``arbstream replay`` publishes the events to a topic namespace (``ARBSTREAM_NAMESPACE``), never
to live topics unless asked to: the namespace must be set.
"""

from __future__ import annotations

import asyncio
import gzip
import heapq
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import msgspec
import orjson

from ingest.instruments import load_venue_instruments
from ingest.publisher import Publisher
from ingest.recorder import Row, iter_health, iter_recording
from ingest.replay_progress import ReplayProgress
from ingest.replay_topics import WHOLE_TOPICS, OffsetRange, read_range
from ingest.settings import IngestSettings
from ingest.venues import venue_class
from ingest.venues.base import FrameError, Venue
from plumbing.errors import ConfigError
from plumbing.kafka import ensure_topics, resolve_bootstrap
from schemas.market import Funding, Health, Instrument, Quote, decode_ticks
from schemas.topics import HEALTH, HEALTH_CONFIG, ticks_topic, topic_name

log = logging.getLogger(__name__)

ReplayEvent = Quote | Funding | Health


@dataclass(frozen=True)
class Speed:
    """``max`` (as fast as possible) or a multiple of recorded time (``1x``, ``10x``)."""

    factor: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Speed:
        value = text.strip().lower()
        if value in ("max", "0"):
            return cls(0.0)
        try:
            factor = float(value.removesuffix("x"))
        except ValueError:
            factor = -1.0
        if factor <= 0:
            raise ConfigError(f"--speed {text!r}: use max, 1x, 10x, 0.5x ...")
        return cls(factor)

    def __str__(self) -> str:
        return "max" if self.factor == 0 else f"{self.factor:g}x"


@dataclass
class ReplayCounts:
    frames: int = 0
    events: int = 0
    health: int = 0
    malformed: int = 0
    skipped_out_of_range: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None


TICKS_SUFFIXES = (".ticks.jsonl", ".ticks.jsonl.gz")
"""Normalised ticks (``arbstream normalize > x.ticks.jsonl``), replayed as they are, not re-parsed."""


def recording_files(sources: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        if not source.exists():
            raise ConfigError(f"no such recording: {source}")
        if source.is_dir():
            files += sorted({*source.glob("*.jsonl.gz"), *source.glob("*.ticks.jsonl")})
        else:
            files.append(source)
    return files


def is_ticks_file(path: Path) -> bool:
    return path.name.endswith(TICKS_SUFFIXES)


def iter_ticks(path: Path) -> Iterator[Quote | Funding]:
    """The ticks of a normalised-ticks file (one Quote/Funding JSON per line), in file order."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield from decode_ticks(line)
                except msgspec.DecodeError as exc:
                    raise ConfigError(f"{path}: line {number} is not a normalised tick: {exc}") from exc


def recorded_instruments(sources: Sequence[Path]) -> dict[str, list[Instrument]]:
    """The instruments live tracked, per venue, from the recordings' ``instruments-*.json``
    (the earliest file wins for an instrument: the listing in force when recording started)."""
    decoder = msgspec.json.Decoder(list[Instrument])
    found: dict[str, Instrument] = {}
    for source in sources:
        directory = source if source.is_dir() else source.parent
        for path in sorted(directory.glob("instruments-*.json"), key=lambda p: int(p.stem.split("-")[1])):
            for instrument in decoder.decode(orjson.dumps(orjson.loads(path.read_bytes())["instruments"])):
                found.setdefault(instrument.instrument_id, instrument)
    by_venue: dict[str, list[Instrument]] = {}
    for instrument in found.values():
        by_venue.setdefault(instrument.venue, []).append(instrument)
    return by_venue


@dataclass
class Replayer:
    """Recorded frames and health, merged in receipt order, parsed into events."""

    sources: Sequence[Path]
    cache_dir: Path | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    counts: ReplayCounts = field(default_factory=ReplayCounts)
    _parsers: dict[tuple[str, str], Venue] = field(default_factory=dict)
    _instruments: dict[str, list[Instrument]] = field(default_factory=dict)
    read_bytes: dict[Path, int] = field(default_factory=dict)
    """Compressed bytes of each recording file read so far (the progress bar's measure)."""

    def __post_init__(self) -> None:
        self._instruments = recorded_instruments(self.sources)

    def events(self) -> Iterator[ReplayEvent]:
        files = recording_files(self.sources)
        recordings = [path for path in files if not is_ticks_file(path)]
        frames = heapq.merge(*(iter_recording(path, self.read_bytes) for path in recordings))
        health = heapq.merge(*(iter_health(path) for path in recordings), key=lambda h: h.receipt_ts_ns)
        ticks = heapq.merge(*(iter_ticks(p) for p in files if is_ticks_file(p)), key=lambda t: t.receipt_ts_ns)
        merged = heapq.merge(
            ((row[0], 1, row) for row in frames),
            ((h.receipt_ts_ns, 0, h) for h in health),
            ((t.receipt_ts_ns, 1, t) for t in ticks),
            key=lambda item: (item[0], item[1]),
        )
        held: dict[tuple[str, str], Health] = {}
        for receipt_ts_ns, _order, item in merged:
            if self.end_ns is not None and receipt_ts_ns >= self.end_ns:
                break
            if self.start_ns is not None and receipt_ts_ns < self.start_ns:
                self._warm_up(item, held)
                continue
            if held:
                # Before the first event of the range: the health each connection had at its start.
                yield from self._release(held)
            self.counts.first_ts_ns = self.counts.first_ts_ns or receipt_ts_ns
            self.counts.last_ts_ns = receipt_ts_ns
            if isinstance(item, Health):
                self.counts.health += 1
                yield item
            elif isinstance(item, Quote | Funding):
                self.counts.events += 1
                yield item
            else:
                events = self._parse(cast(Row, item))
                self.counts.events += len(events)
                yield from events

    def progress(self, label: str, *, enabled: bool = True) -> ReplayProgress:
        """A progress bar over this replay: the --from/--to span, else the recording's bytes."""
        total = sum(p.stat().st_size for p in recording_files(self.sources) if not is_ticks_file(p))
        read = (total, lambda: sum(self.read_bytes.values()))
        return ReplayProgress(label, self.start_ns, self.end_ns, read, enabled=enabled)

    def _warm_up(self, item: object, held: dict[tuple[str, str], Health]) -> None:
        """An item before ``start_ns``: it changes state, but what it emits is held back.

        A frame is still parsed, so a venue's book (snapshot + deltas) is whole when the range
        starts, and the newest health report of each connection is kept, so a venue already stale
        at the start is stale in the replay as it was live. Dropping them would make a window's
        results differ from the same window inside a full replay.
        """
        if isinstance(item, Health):
            held[(item.venue, item.connection)] = item
        elif isinstance(item, Quote | Funding):
            self.counts.skipped_out_of_range += 1
        else:
            self.counts.skipped_out_of_range += len(self._parse(cast(Row, item)))

    def _release(self, held: dict[tuple[str, str], Health]) -> Iterator[Health]:
        for health in sorted(held.values(), key=lambda h: h.receipt_ts_ns):
            self.counts.health += 1
            yield health
        held.clear()

    def _parse(self, row: Row) -> list[Quote | Funding]:
        receipt_ts_ns, venue_name, connection, frame = row
        self.counts.frames += 1
        parser = self._parsers.get((venue_name, connection))
        if parser is None:
            instruments = self._instruments.get(venue_name) or load_venue_instruments(venue_name, self.cache_dir)
            parser = self._parsers[(venue_name, connection)] = venue_class(venue_name)(instruments)
        try:
            events = parser.parse(frame, receipt_ts_ns).events
        except FrameError as exc:
            self.counts.malformed += 1
            log.warning("replay: malformed %s frame at %d: %s", venue_name, receipt_ts_ns, exc)
            return []
        return events


def parse_time(text: str | None) -> int | None:
    """``--from``/``--to``: ISO-8601 (UTC unless an offset is given) or integer nanoseconds."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{text!r} is neither ISO-8601 time nor nanoseconds since the epoch") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1_000


PACE_TOLERANCE_P99_S = 0.005
"""At ``1x`` from files, the p99 error of the gaps between released events vs the recorded gaps
(README): measured 1.1-1.8 ms over 200 recorded gaps of the sample (median gap 0.1 ms) on a
quiet 2-core machine, up to 4.5 ms while other test suites ran on it. Each event leaves at its
due time plus one sleep's overshoot, which the event loop's timer and a busy CPU decide."""


class Pacer:
    """Sleeps so events leave at ``speed`` times their recorded spacing (no-op at max).

    Each event is due at origin + (its time - the first event's time) / factor: the schedule
    never drifts, whatever a sleep overshoots, so the error stays one sleep's overshoot. Events
    before ``start_ns`` (the health a ``--from`` replay carries in from before its range) leave at
    once and do not anchor the schedule: pacing them would sleep through the skipped time.
    """

    def __init__(
        self,
        speed: Speed,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        start_ns: int | None = None,
    ) -> None:
        self.speed = speed
        self.start_ns = start_ns
        self._clock = clock
        self._sleep = sleep
        self._origin: tuple[int, float] | None = None

    async def wait(self, ts_ns: int) -> None:
        if self.speed.factor == 0 or (self.start_ns is not None and ts_ns < self.start_ns):
            return
        if self._origin is None:
            self._origin = (ts_ns, self._clock())
        due = self._origin[1] + (ts_ns - self._origin[0]) / 1e9 / self.speed.factor
        delay = due - self._clock()
        if delay > 0:
            await self._sleep(delay)


async def replay_to_kafka(
    settings: IngestSettings,
    events: Iterable[ReplayEvent],
    speed: Speed,
    progress: ReplayProgress | None = None,
    start_ns: int | None = None,
) -> int:
    """Publish every replayed event to ``settings.namespace``; returns the records lost."""
    if not settings.namespace:
        raise ConfigError("replay publishes into a topic namespace: set ARBSTREAM_NAMESPACE (e.g. bt1)")
    bootstrap = resolve_bootstrap(settings.kafka_bootstrap)
    await ensure_topics(bootstrap, [topic_name(HEALTH, settings.namespace)], settings.topic_partitions, HEALTH_CONFIG)
    publisher = Publisher(
        bootstrap, settings.namespace, settings.queue_size, settings.linger_ms, conflate_when_full=False
    )
    await publisher.start()
    pacer, created = Pacer(speed, start_ns=start_ns), set[str]()
    try:
        for event in progress.track(events) if progress is not None else events:
            await pacer.wait(event.receipt_ts_ns)
            if isinstance(event, Health):
                await publisher.publish_health(event)
                continue
            topic = ticks_topic(event.base, settings.namespace)
            if topic not in created:
                await ensure_topics(bootstrap, [topic], settings.topic_partitions)
                created.add(topic)
            await publisher.publish([event])
    finally:
        await publisher.stop()
    return publisher.stats.lost


def _counted(events: Iterable[ReplayEvent], counts: ReplayCounts) -> Iterator[ReplayEvent]:
    """Events already decoded (from topics), counted as the frame replayer counts its own."""
    for event in events:
        counts.first_ts_ns = counts.first_ts_ns or event.receipt_ts_ns
        counts.last_ts_ns = event.receipt_ts_ns
        if isinstance(event, Health):
            counts.health += 1
        else:
            counts.events += 1
        yield event


def pacing_start(start_ns: int | None, tick_times: list[int]) -> int | None:
    """Where the pacer's schedule starts: ``--from``, else the first tick of the range. A range in
    offsets has no ``--from``, and the health carried in from before it may be an hour old (a
    connection that stopped reporting): anchored there, a 1x replay would wait that hour first."""
    if start_ns is not None:
        return start_ns
    return tick_times[0] if tick_times else None


def run_replay(
    settings: IngestSettings,
    sources: list[Path],
    speed: str,
    start: str | None,
    end: str | None,
    topics: str | None = None,
    offsets: OffsetRange = WHOLE_TOPICS,
) -> int:
    """From recordings, or (``topics``) from another namespace's tick topics, into ARBSTREAM_NAMESPACE."""
    if bool(sources) == (topics is not None):
        raise ConfigError("replay one source: recording files/directories, or --topics NAMESPACE")
    if topics is None and offsets != WHOLE_TOPICS:
        raise ConfigError("--from-offset/--to-offset are positions in the broker's topics: use them with --topics")
    if topics is not None and topics == settings.namespace:
        raise ConfigError(f"--topics {topics!r} is the namespace being replayed into: choose another")
    pace = Speed.parse(speed)
    if topics is not None:
        bootstrap = resolve_bootstrap(settings.kafka_bootstrap)
        read = asyncio.run(read_range(bootstrap, topics, parse_time(start), parse_time(end), offsets=offsets))
        counts = ReplayCounts()
        events: Iterable[ReplayEvent] = _counted(read, counts)
        ticks = [e.receipt_ts_ns for e in read if not isinstance(e, Health)]
        shown = ReplayProgress(f"replay {pace}", ticks[0] if ticks else None, ticks[-1] if ticks else None)
        start_ns = pacing_start(parse_time(start), ticks)
    else:
        replayer = Replayer(sources, settings.instruments_cache_dir, parse_time(start), parse_time(end))
        counts, events = replayer.counts, replayer.events()
        shown = replayer.progress(f"replay {pace}")
        start_ns = parse_time(start)
    with shown:
        lost = asyncio.run(replay_to_kafka(settings, events, pace, shown, start_ns=start_ns))
    print(" ".join(f"{key}={value}" for key, value in vars(counts).items()), f"lost={lost}")
    return 1 if lost else 0
