"""Stage 8: replay and backtest speed at ``--speed max`` over the bundled sample recording.

Replay = recorded frames streamed from gzip, merged in receipt order and re-parsed with today's
parsers; publish = that plus ``arbstream replay``'s publisher into the stage's namespace on the
bench broker, timed until the broker acknowledged every event (what ``arbstream replay --speed
max`` sustains end to end); backtest = the replay plus the worker's engine per tick (``arbstream
backtest``, no broker). Each is reported per wall-clock second — the ``max`` speed figure — and,
for replay and backtest, per CPU-second of this process (the figure less sensitive to a shared
machine). The sample is small (about 6,000 events), so each figure is the median of several runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from arbstream.backtest import SAMPLE_DIR, worker_settings
from arbstream.backtest.run import run_backtest
from arbstream.bench.common import Result, median
from ingest.replay import Replayer, Speed, replay_to_kafka
from ingest.settings import IngestSettings

T = TypeVar("T")


def _timed(work: Callable[[], T]) -> tuple[T, float, float]:
    """``work()``, its wall-clock and its CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    done = work()
    return done, time.perf_counter() - wall, time.process_time() - cpu


def _replay_once() -> tuple[int, int, float, float]:
    replayer = Replayer([SAMPLE_DIR])
    events, wall, cpu = _timed(lambda: sum(1 for _ in replayer.events()))
    return replayer.counts.frames, events, wall, cpu


def _backtest_once() -> tuple[int, float, float]:
    replayer = Replayer([SAMPLE_DIR])
    result, wall, cpu = _timed(lambda: run_backtest(replayer.events(), worker_settings({})))
    return result.ticks, wall, cpu


async def _publish_once(settings: IngestSettings) -> tuple[int, int, float]:
    """(ticks, events delivered (ticks + health), wall seconds) of one ``arbstream replay --speed max``
    of the sample."""
    replayer = Replayer([SAMPLE_DIR])
    started = time.perf_counter()
    lost = await replay_to_kafka(settings, replayer.events(), Speed(0.0))
    elapsed = time.perf_counter() - started
    if lost:
        raise RuntimeError(f"the bench broker lost {lost} replayed events")
    return replayer.counts.events, replayer.counts.events + replayer.counts.health, elapsed


async def run_replay_stage(bootstrap: str, namespace: str, runs: int) -> Result:
    replays = [_replay_once() for _ in range(runs)]
    backtests = [_backtest_once() for _ in range(runs)]
    settings = IngestSettings(kafka_bootstrap=bootstrap, namespace=namespace)
    await _publish_once(settings)  # untimed: creates the namespace's topics, which a long replay does once
    publishes = [await _publish_once(settings) for _ in range(runs)]
    frames, events = replays[0][0], replays[0][1]
    return {
        "recording": SAMPLE_DIR.name,
        "frames": frames,
        "events": events,
        "published_events": publishes[0][1],
        "replay_frames_per_cpu_s": median([f / cpu for f, _, _, cpu in replays]),
        "replay_events_per_cpu_s": median([e / cpu for _, e, _, cpu in replays]),
        "replay_events_per_s": median([e / wall for _, e, wall, _ in replays]),
        "publish_events_per_s": median([e / wall for _, e, wall in publishes]),
        "publish_ticks_per_s": median([t / wall for t, _, wall in publishes]),
        "backtest_ticks_per_cpu_s": median([t / cpu for t, _, cpu in backtests]),
        "backtest_ticks_per_s": median([t / wall for t, wall, _ in backtests]),
        "runs": runs,
    }
