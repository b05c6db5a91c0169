"""``arbstream replay``: recorded raw frames -> the same venue parsers -> Kafka, with recorded times.

Frames from every file are merged in receipt-time order and parsed by a fresh
venue instance per recorded connection (snapshot/delta state carries across
frames exactly as it did live). Events keep their recorded receipt times, and
the processors work in event time, so a worker on the replay's namespace
produces the opportunities the live system would have produced.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from pathlib import Path

from arbstream.kafka import ensure_topics, resolve_bootstrap
from ingest.instruments import load_venue_instruments
from ingest.publisher import Publisher
from ingest.recorder import read_recording
from ingest.settings import IngestSettings
from ingest.venues import venue_class
from ingest.venues.base import FrameError, Venue
from schemas.topics import ticks_topic

log = logging.getLogger(__name__)


def recording_files(sources: list[Path]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        files += sorted(source.glob("*.jsonl.gz")) if source.is_dir() else [source]
    return files


async def replay(settings: IngestSettings, sources: list[Path], speed: float) -> dict[str, int]:
    """Publish every recorded frame's events; ``speed`` > 0 paces them (1 = real time)."""
    bootstrap = resolve_bootstrap(settings.kafka_bootstrap)
    rows = heapq.merge(*(read_recording(path) for path in recording_files(sources)))
    parsers: dict[tuple[str, str], Venue] = {}
    counts = {"frames": 0, "events": 0, "malformed": 0}
    publisher = Publisher(bootstrap, settings.namespace, settings.queue_size, settings.linger_ms)
    await publisher.start()
    created: set[str] = set()
    first: tuple[int, float] | None = None
    try:
        for receipt_ts_ns, venue_name, connection, frame in rows:
            counts["frames"] += 1
            if speed > 0:
                first = first or (receipt_ts_ns, time.monotonic())
                delay = (receipt_ts_ns - first[0]) / 1e9 / speed - (time.monotonic() - first[1])
                if delay > 0:
                    await asyncio.sleep(delay)
            parser = parsers.get((venue_name, connection))
            if parser is None:
                parser = venue_class(venue_name)(load_venue_instruments(venue_name, settings.instruments_cache_dir))
                parsers[(venue_name, connection)] = parser
            try:
                events = parser.parse(frame, receipt_ts_ns).events
            except FrameError as exc:
                counts["malformed"] += 1
                log.warning("replay: malformed %s frame at %d: %s", venue_name, receipt_ts_ns, exc)
                continue
            topics = {ticks_topic(e.base, settings.namespace) for e in events} - created
            if topics:
                await ensure_topics(bootstrap, sorted(topics), settings.topic_partitions)
                created |= topics
            counts["events"] += len(events)
            await publisher.publish(events)
    finally:
        await publisher.stop()
    if publisher.stats.lost:
        counts["lost"] = publisher.stats.lost
    return counts


def run_replay(settings: IngestSettings, sources: list[Path], speed: float) -> int:
    counts = asyncio.run(replay(settings, sources, speed))
    print(" ".join(f"{key}={value}" for key, value in counts.items()))
    return 1 if counts.get("lost") else 0
