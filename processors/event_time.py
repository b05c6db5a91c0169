"""The worker's event-time clock: how far the market has moved, though a symbol's ticks stopped.

A symbol's episodes are judged at its ticks' receipt times (decision 0004), so an episode whose
symbol goes silent would never close. The clock is the newest receipt time the worker processed
on any of its partitions, moved on at wall-clock speed since that tick was read: when every
tick stops (ingest down, a replay finished) event time still advances, and a replay running
faster than real time is never overtaken by it. The sweep closes episodes whose legs expired
more than ``grace`` before the clock (decision 0024).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class EventClock:
    def __init__(self, wall_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self._wall_ns = wall_ns
        self.newest_ns = 0
        """Newest event time seen (0: none yet)."""
        self._seen_at_ns = 0

    def observe(self, event_ns: int) -> None:
        """A tick of event time ``event_ns`` was processed (older ones change nothing)."""
        if event_ns > self.newest_ns:
            self.newest_ns = event_ns
            self._seen_at_ns = self._wall_ns()

    def now(self) -> int | None:
        """Event time now, or None before the first tick."""
        if not self.newest_ns:
            return None
        return self.newest_ns + max(0, self._wall_ns() - self._seen_at_ns)
