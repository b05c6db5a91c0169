"""The progress bar of ``arbstream replay`` and ``arbstream backtest`` (rich, on stderr).

The bar measures the replayed clock across the range when both of its ends are known (``--from``
and ``--to``, or a range already read from the broker), otherwise the compressed bytes of the
recording read so far (a recording's end time is only known once it is read). Beside it: the
ticks replayed, ticks per wall-clock second and the replayed clock (UTC). It draws only on a
terminal, and on stderr, so a report's paths or a replay's counts on stdout stay clean.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

from schemas.market import Funding, Health, Quote

E = TypeVar("E", bound=Quote | Funding | Health)

REFRESH_S = 0.25
"""How often the bar's numbers are recomputed: per event would cost more than a tick's parse."""


def clock_text(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "—"
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ReplayProgress:
    """A rich.progress bar over a replay; :meth:`track` passes the events through and counts them."""

    def __init__(
        self,
        label: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        read: tuple[int, Callable[[], int]] | None = None,
        *,
        enabled: bool = True,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``read``: (total bytes, bytes read so far), the bar's measure when the span's end is unknown."""
        self.console = console or Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.start_ns, self.end_ns, self.read = start_ns, end_ns, read
        self.ticks = 0
        self.last_ts_ns: int | None = None
        self._clock = clock
        self._started = clock()
        self._next_refresh = self._started + REFRESH_S  # a rate over less would be noise
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=16),  # the numbers beside it matter more on an 80-column terminal
            TaskProgressColumn(),
            TextColumn("{task.fields[ticks]} ticks · {task.fields[rate]} ticks/s · {task.fields[clock]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.enabled,
            auto_refresh=False,
        )
        self.task: TaskID = self.progress.add_task(label, total=None, ticks="0", rate="0", clock="—")

    def __enter__(self) -> ReplayProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.update()
        self.progress.stop()

    def track(self, events: Iterable[E]) -> Iterator[E]:
        for event in events:
            self.tick(event)
            yield event

    def tick(self, event: Quote | Funding | Health) -> None:
        ts = event.receipt_ts_ns
        # Health carried in from before --from is older than the range: it does not move the clock.
        if self.last_ts_ns is None or ts > self.last_ts_ns:
            self.last_ts_ns = ts
        if not isinstance(event, Health):
            self.ticks += 1
            if self.start_ns is None:
                self.start_ns = ts
        if self._clock() >= self._next_refresh:
            self.update()

    def measure(self) -> tuple[float | None, float]:
        """(total, completed) of the bar: nanoseconds of the span, or bytes read."""
        if self.start_ns is not None and self.end_ns is not None:
            total = max(self.end_ns - self.start_ns, 1)
            done = 0 if self.last_ts_ns is None else self.last_ts_ns - self.start_ns
            return float(total), float(min(max(done, 0), total))
        if self.read is not None:
            return float(self.read[0]), float(min(self.read[1](), self.read[0]))
        return None, 0.0

    def update(self) -> None:
        now = self._clock()
        self._next_refresh = now + REFRESH_S
        total, completed = self.measure()
        rate = self.ticks / max(now - self._started, 1e-9)
        self.progress.update(
            self.task,
            total=total,
            completed=completed,
            ticks=f"{self.ticks:,}",
            rate=f"{rate:,.0f}",
            clock=clock_text(self.last_ts_ns),
        )
        self.progress.refresh()
