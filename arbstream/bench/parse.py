"""Stage 1: frames/s one core parses per venue, raw text/bytes in, schema objects out.

Frames are what each venue's own simulator sends for its top-of-book and
funding channels after a subscription made the way ingest makes it, so they
carry the venue's real wire format (snapshots, deltas, sequence numbers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from arbstream.bench.common import BASES, Result, median
from ingest.instruments import load_venue_instruments
from ingest.simulator.base import BOOK, FUNDING, Frame, SimSession, VenueSim
from ingest.simulator.market import Market
from ingest.simulator.venues import sim_class
from ingest.venues import implemented_venues, venue_class
from ingest.venues.base import Venue
from schemas.market import Instrument

SIM_BASE = "ws://127.0.0.1:1"
RECEIPT_NS = 1_790_516_465_999_000_000
START_MS = 1_790_516_400_000
TICK_MS = 100
FUNDING_EVERY_STEPS = 10
"""The simulator's default cadence: book every 100 ms, funding every second."""


@dataclass
class VenueFrames:
    """One venue's subscription replies (parsed untimed first) and the timed (kind, frame) sequence."""

    instruments: list[Instrument]
    replies: list[Frame]
    frames: list[tuple[str, Frame]]


def _sessions(name: str, venue: Venue, sim: VenueSim) -> tuple[list[SimSession], list[Frame]]:
    """Subscribe every planned connection the way ingest does; returns the sessions and the server's replies."""
    sessions, replies = [], []
    for plan in venue.connections(f"{SIM_BASE}/{name}"):
        path = plan.url.removeprefix(f"{SIM_BASE}/{name}").split("?")[0] or sim.ws_paths[0]
        session = SimSession(name, path, {})
        replies += sim.on_open(session)
        for frame in venue.on_connect() + venue.subscribe_messages(plan.topics):
            replies += sim.on_message(session, frame)
        sessions.append(session)
    return sessions, replies


def venue_frames(name: str, count: int) -> VenueFrames:
    """At least ``count`` frames of ``name``'s book and funding channels, in the simulator's order."""
    instruments = [i for i in load_venue_instruments(name) if i.base in BASES]
    sim = sim_class(name)(instruments)
    sessions, replies = _sessions(name, venue_class(name)(instruments), sim)
    market = Market(instruments, auto_dislocation_every_ms=0)
    frames: list[tuple[str, Frame]] = []
    step = 0
    while len(frames) < count:
        now_ms = START_MS + step * TICK_MS
        market.step(now_ms)
        for session in sessions:
            for kind, native in sorted(session.subscriptions):
                inst = sim.by_native.get(native)
                if inst is None:
                    continue
                if kind == BOOK:
                    frames += [(BOOK, f) for f in sim.book_frames(session, inst, market.quote(inst, now_ms))]
                elif kind == FUNDING and step % FUNDING_EVERY_STEPS == 0:
                    frames += [(FUNDING, f) for f in sim.funding_frames(session, inst, market.funding(inst, now_ms))]
        step += 1
    return VenueFrames(instruments, replies, frames)


def _parse_run(name: str, data: VenueFrames) -> Result:
    """Parse the sequence once with a fresh venue object (fresh books), timing each parse call."""
    venue = venue_class(name)(data.instruments)
    for reply in data.replies:
        venue.parse(reply, RECEIPT_NS)  # acks and snapshots set up state; not timed
    spent = {BOOK: 0, FUNDING: 0}
    counts = {BOOK: 0, FUNDING: 0}
    events = errors = 0
    clock: Callable[[], int] = time.perf_counter_ns
    for kind, frame in data.frames:
        started = clock()
        try:
            parsed = venue.parse(frame, RECEIPT_NS)
        except Exception:  # noqa: BLE001 - a failing parser is reported as errors, not a crashed bench
            errors += 1
            continue
        finally:
            spent[kind] += clock() - started
            counts[kind] += 1
        events += len(parsed.events)
    total_ns = spent[BOOK] + spent[FUNDING]
    return {
        "frames_per_s": _rate(counts[BOOK] + counts[FUNDING], total_ns),
        "book_frames_per_s": _rate(counts[BOOK], spent[BOOK]),
        "funding_frames_per_s": _rate(counts[FUNDING], spent[FUNDING]),
        "events_per_frame": events / max(1, len(data.frames)),
        "errors": errors,
    }


def _rate(count: int, spent_ns: int) -> float:
    return count / (spent_ns / 1e9) if spent_ns > 0 else 0.0


def bench_venue(name: str, frames: int, runs: int) -> Result:
    data = venue_frames(name, frames)
    results = [_parse_run(name, data) for _ in range(runs)]
    keys = ("frames_per_s", "book_frames_per_s", "funding_frames_per_s")
    return {
        **{key: median([r[key] for r in results]) for key in keys},
        "events_per_frame": results[0]["events_per_frame"],
        "errors": max(r["errors"] for r in results),
        "frames": len(data.frames),
        "instruments": len(data.instruments),
        "runs": [r["frames_per_s"] for r in results],
    }


def run_parse(frames: int, runs: int) -> Result:
    """Every implemented venue; the slowest venue is the figure compared to the broker limit."""
    venues = {name: bench_venue(name, frames, runs) for name in implemented_venues()}
    rates = [v["frames_per_s"] for v in venues.values()]
    return {
        "unit": "frames/s on one core",
        "frames_per_run": frames,
        "runs": runs,
        "venues": venues,
        "slowest_frames_per_s": min(rates) if rates else 0.0,
        "median_frames_per_s": median(rates),
    }
