"""The ``market`` stage's ingest side: a process that publishes the market mix through ingest's ``Publisher``.

It runs as its own process (``python -m arbstream.bench.market_feed BOOTSTRAP NAMESPACE``) so
its CPU is the ingest side's alone, apart from the bench's collectors. The bench writes one
JSON command per line on its stdin (``{"rate": .., "duration_s": .., "dislocations_per_s": ..,
"sticky": ..}``) and reads one JSON line per command back: ticks and records sent, the
publisher's delivered/lost counts, CPU seconds. Ticks are stamped with the wall clock when they
are handed to the publisher, as ingest stamps a frame's receipt, so the publisher's batch window
counts in every latency.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from arbstream.bench.machine import pid_cpu_s
from arbstream.bench.ticks import Planter, TickSource, stamped
from ingest.publisher import Publisher
from ingest.settings import IngestSettings
from plumbing import gc_tuning
from plumbing.broker import die_with_parent
from plumbing.errors import FatalError
from plumbing.settings import REPO_ROOT
from schemas.market import Quote

SLOT_S = 0.005
"""Pacing granularity: each 5 ms slot's ticks are published together, like a busy venue's frames."""
MAX_PENDING: int = IngestSettings.model_fields["queue_size"].default
"""Ingest's own bound: past it the publisher conflates (counted per step as ``conflated_in_ingest``)."""
FLUSH_TIMEOUT_S = 30.0
WARM_UP_TIMEOUT_S = 120.0


async def publish_paced(publisher: Publisher, planter: Planter, rate: int, duration_s: float) -> int:
    """Offer ``rate`` ticks/s for ``duration_s``; returns the ticks handed to the publisher."""
    sent = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < duration_s:
        due = int(rate * elapsed) - sent
        if due > 0:
            now_ns = time.time_ns()
            await publisher.publish(stamped(e, now_ns) for e in planter.slot(sent, due, rate, time.monotonic()))
            sent += due
        await asyncio.sleep(SLOT_S)
    return sent


async def _flushed(publisher: Publisher, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
    """Every accepted tick delivered, conflated away by the publisher, or counted lost."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = publisher.stats
        if stats.delivered + stats.conflated + stats.lost >= stats.queued:
            return True
        await asyncio.sleep(0.01)
    return False


async def run_command(publisher: Publisher, source: TickSource, command: dict[str, Any]) -> dict[str, Any]:
    stats = publisher.stats
    before = (stats.records, stats.delivered, stats.lost, stats.conflated)
    cpu0, started = time.process_time(), time.monotonic()
    planter = Planter(source, int(command["dislocations_per_s"]), bool(command["sticky"]))
    sent = await publish_paced(publisher, planter, int(command["rate"]), float(command["duration_s"]))
    paced_s = time.monotonic() - started
    flushed = await _flushed(publisher)
    return {
        "sent_ticks": sent,
        "sent_ticks_per_s": sent / paced_s,
        "records": stats.records - before[0],
        "delivered_ticks": stats.delivered - before[1],
        "lost_ticks": stats.lost - before[2],
        "conflated_in_ingest": stats.conflated - before[3],
        "flushed": flushed,
        "cpu_s": time.process_time() - cpu0,
        "elapsed_s": time.monotonic() - started,
    }


async def warm_up(publisher: Publisher, source: TickSource) -> float:
    """One quote per symbol, delivered, before any measured step; returns the seconds it took.

    The producer learns a topic's partitions at the first record for it, one topic at a time, and
    the publisher's single drain task waits meanwhile: the first records of 480 new topics would
    otherwise hold every step-one tick in the queue for seconds.
    """
    started, now_ns = time.monotonic(), time.time_ns()
    first: dict[str, Quote] = {}
    for quote in source.normal:
        first.setdefault(quote.base, quote)
    await publisher.publish(stamped(q, now_ns) for q in first.values())
    await _flushed(publisher, WARM_UP_TIMEOUT_S)
    return time.monotonic() - started


async def serve(bootstrap: str, namespace: str) -> None:
    source = TickSource.market_mix()
    # Ingest's own batch window and conflation (ARBSTREAM_LINGER_MS, _CONFLATE_AFTER_MS included), so the
    # stage measures what ingest would send.
    ingest = IngestSettings()
    publisher = Publisher(
        bootstrap, namespace, MAX_PENDING, linger_ms=ingest.linger_ms, conflate_after_ms=ingest.conflate_after_ms
    )
    await publisher.start()
    loop = asyncio.get_running_loop()
    try:
        warm_up_s = await warm_up(publisher, source)
        gc_tuning.freeze_startup_objects()  # it stands in for ingest, which does the same
        _reply({"ready": True, "instruments": len(source.instruments), "warm_up_s": warm_up_s})
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            _reply(await run_command(publisher, source, orjson.loads(line)))
    finally:
        await publisher.stop()


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(message).decode() + "\n")
    sys.stdout.flush()


READY_TIMEOUT_S = 60.0


@dataclass
class FeedProcess:
    """The bench's handle on a ``market_feed`` process: send a command, await its figures."""

    bootstrap: str
    namespace: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    async def start(self) -> dict[str, Any]:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", __name__, self.bootstrap, self.namespace],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=REPO_ROOT,
                preexec_fn=die_with_parent,
            )
        return await asyncio.wait_for(self._answer(), READY_TIMEOUT_S + WARM_UP_TIMEOUT_S)

    async def offer(self, rate: int, duration_s: float, dislocations_per_s: int, sticky: bool) -> dict[str, Any]:
        command = {"rate": rate, "duration_s": duration_s, "dislocations_per_s": dislocations_per_s, "sticky": sticky}
        stdin = self._pipe(self.proc.stdin if self.proc else None)
        stdin.write(orjson.dumps(command) + b"\n")
        stdin.flush()
        return await asyncio.wait_for(self._answer(), duration_s + FLUSH_TIMEOUT_S + 10)

    def cpu_seconds(self) -> float:
        return pid_cpu_s(self.proc.pid) if self.proc else 0.0

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()  # EOF: the feed flushes and exits
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    async def _answer(self) -> dict[str, Any]:
        stdout = self._pipe(self.proc.stdout if self.proc else None)
        line = await asyncio.get_running_loop().run_in_executor(None, stdout.readline)
        if not line:
            raise FatalError(f"the market feed exited; see {self.log_path.name}")
        answer: dict[str, Any] = orjson.loads(line)
        return answer

    @staticmethod
    def _pipe(pipe: IO[bytes] | None) -> IO[bytes]:
        if pipe is None:
            raise FatalError("the market feed is not running")
        return pipe


if __name__ == "__main__":
    gc_tuning.tune()
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
