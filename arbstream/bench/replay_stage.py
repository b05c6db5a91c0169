"""Stage 8: replay and backtest speed at ``--speed max`` over the bundled sample recording.

Replay = recorded frames streamed from gzip, merged in receipt order and re-parsed with today's
parsers (what ``arbstream replay`` does before publishing); backtest = the same plus the worker's
engine per tick (``arbstream backtest``). Both in one process, no broker: the broker's own limit
is stage 2's figure.
"""

from __future__ import annotations

import time

from arbstream.backtest import SAMPLE_DIR, worker_settings
from arbstream.backtest.run import run_backtest
from arbstream.bench.common import Result, median
from ingest.replay import Replayer


def _replay_once() -> tuple[int, int, float]:
    replayer = Replayer([SAMPLE_DIR])
    started = time.process_time()
    events = sum(1 for _ in replayer.events())
    return replayer.counts.frames, events, time.process_time() - started


def _backtest_once() -> tuple[int, float]:
    replayer = Replayer([SAMPLE_DIR])
    started = time.process_time()
    result = run_backtest(replayer.events(), worker_settings({}))
    return result.ticks, time.process_time() - started


def run_replay_stage(runs: int) -> Result:
    replays = [_replay_once() for _ in range(runs)]
    backtests = [_backtest_once() for _ in range(runs)]
    frames, events = replays[0][0], replays[0][1]
    return {
        "recording": SAMPLE_DIR.name,
        "frames": frames,
        "events": events,
        "replay_frames_per_cpu_s": median([f / s for f, _, s in replays]),
        "replay_events_per_cpu_s": median([e / s for _, e, s in replays]),
        "backtest_ticks_per_cpu_s": median([t / s for t, s in backtests]),
        "runs": runs,
    }
