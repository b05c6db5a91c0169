"""Supervision of the API's background tasks (issue 13, item 5).

An ``asyncio`` task that raises ends silently unless someone looks: the read
model would freeze while every data endpoint kept answering 200. Each
background job therefore runs under a :class:`Supervisor`, which restarts it
with exponential backoff after any exception (or an unexpected return), logs
the error with its traceback, and keeps what ``/health`` reports: the state,
the number of restarts and the last error. A *critical* task (the read-model
follower) makes the model "not live" while it is not running: data endpoints
then answer 503 instead of serving a frozen model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from plumbing.aio import cancel_requested

log = logging.getLogger(__name__)

TaskState = Literal["starting", "running", "restarting", "stopped"]


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.5
    max_s: float = 30.0
    reset_after_s: float = 60.0
    """A run that lasted this long was healthy: the next failure starts from ``initial_s`` again."""

    def next_delay(self, previous_s: float | None) -> float:
        return self.initial_s if previous_s is None else min(previous_s * 2, self.max_s)


@dataclass(frozen=True)
class TaskReport:
    """What /health shows for one supervised task."""

    name: str
    state: TaskState
    critical: bool
    restarts: int
    last_error: str | None
    last_error_at_ns: int | None
    retry_in_s: float | None


class Supervisor:
    """Runs ``job()`` until stopped, restarting it after every failure.

    ``job`` is a factory: each restart gets a fresh coroutine. It should run
    forever; returning is treated as a failure too (a follower that "finished"
    is as dead as one that raised).
    """

    def __init__(
        self,
        name: str,
        job: Callable[[], Awaitable[None]],
        *,
        critical: bool,
        backoff: Backoff | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.name = name
        self.critical = critical
        self.state: TaskState = "starting"
        self.restarts = 0
        self.last_error: str | None = None
        self.last_error_at_ns: int | None = None
        self._job = job
        self._backoff = backoff or Backoff()
        self._on_failure = on_failure
        self._retry_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"supervised:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.state = "stopped"

    def report(self) -> TaskReport:
        retry_in = max(0.0, self._retry_at - time.monotonic()) if self._retry_at is not None else None
        return TaskReport(
            self.name, self.state, self.critical, self.restarts, self.last_error, self.last_error_at_ns, retry_in
        )

    async def _supervise(self) -> None:
        delay: float | None = None
        while True:
            self.state = "running"
            started = time.monotonic()
            try:
                await self._job()
                error: BaseException = RuntimeError(f"{self.name} returned; it should run until stopped")
            except asyncio.CancelledError as exc:
                if cancel_requested():
                    raise
                # Not ours: a library raised CancelledError out of the job (aiokafka's consumer.stop()
                # after a broker outage does). Re-raising would end supervision with no log and a
                # "running" state: the silent death this class exists to prevent.
                error = exc
            except Exception as exc:  # noqa: BLE001 - the point: any failure is reported and restarted
                error = exc
            self._record(error)
            if time.monotonic() - started >= self._backoff.reset_after_s:
                delay = None
            delay = self._backoff.next_delay(delay)
            self.state = "restarting"
            self._retry_at = time.monotonic() + delay
            log.error("%s failed (%r); restart %d in %.1fs", self.name, error, self.restarts + 1, delay, exc_info=error)
            await asyncio.sleep(delay)
            self._retry_at = None
            self.restarts += 1

    def _record(self, error: BaseException) -> None:
        self.last_error = repr(error)[:500]
        self.last_error_at_ns = time.time_ns()
        if self._on_failure is not None:
            self._on_failure(error)
