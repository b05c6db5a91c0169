"""The overall status of ``GET /health`` (issue 13, item 6; decision 0014).

A pure function of what the API knows, so the rule is tested directly:

- ``starting`` (HTTP 503): the read model has not loaded yet.
- ``down`` (HTTP 503): the API cannot show live data. The read-model follower
  is not running (failed, waiting to restart) or is catching up after a
  restart; or no venue is streaming (every venue disconnected, stale, in
  error, or its last health report older than ``health_report_max_age_s``);
  or the newest tick is older than ``health_max_data_age_s`` (or there is none).
- ``degraded`` (HTTP 200): live data, but something needs attention: a venue
  is not streaming or silent, the broker does not answer, the consumer lags
  more than ``max_lag_records``, or a non-critical task is restarting.
- ``ok`` (HTTP 200): none of the above.

``down`` answers 503 so a load balancer or an uptime probe notices; every
replica of one deployment goes down together when the venues do (the data,
not the process, is what is missing), which is what a status page should say.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from api.supervise import TaskReport

Status = Literal["starting", "ok", "degraded", "down"]
NS = 1_000_000_000


@dataclass(frozen=True)
class ConnectionSignal:
    venue: str
    connection: str
    state: str
    report_age_s: float


@dataclass(frozen=True)
class Thresholds:
    report_max_age_s: float = 30.0
    max_data_age_s: float = 60.0
    max_lag_records: int = 10_000
    worker_report_max_age_s: float = 30.0
    """A worker silent this long is gone (its stats are every second by default)."""


@dataclass(frozen=True)
class Signals:
    loaded: bool
    tasks: list[TaskReport]
    follower_live: bool | None
    """None: no follower (in-process model)."""
    broker_reachable: bool | None
    """None: no broker configured."""
    lag_total: int | None
    connections: list[ConnectionSignal]
    venues: set[str]
    """Every venue configured or seen: one without any report is 'silent'."""
    newest_tick_age_s: float | None
    worker_report_ages_s: list[float] = field(default_factory=list)
    """Age of each known worker's latest ``worker-stats`` record."""


@dataclass(frozen=True)
class Verdict:
    status: Status
    http_status: int
    reasons: list[str]
    venues_streaming: list[str]


def _venue_problems(signals: Signals, limits: Thresholds) -> tuple[list[str], list[str]]:
    """(venues streaming, one reason per venue that is not)."""
    problems: dict[str, str] = {}
    reported: set[str] = set()
    for c in sorted(signals.connections, key=lambda c: (c.venue, c.connection)):
        reported.add(c.venue)
        if c.venue in problems:
            continue
        if c.state != "streaming":
            problems[c.venue] = f"venue {c.venue}: {c.connection} {c.state}"
        elif c.report_age_s > limits.report_max_age_s:
            problems[c.venue] = f"venue {c.venue}: no health report for {c.report_age_s:.0f}s"
    for venue in signals.venues - reported:
        problems[venue] = f"venue {venue}: no health report"
    streaming = sorted(reported - problems.keys())
    return streaming, [problems[v] for v in sorted(problems)]


def _task_reasons(tasks: Iterable[TaskReport], critical: bool) -> list[str]:
    return [
        f"{t.name} {t.state} (restarts {t.restarts}, last error {t.last_error})"
        for t in tasks
        if t.critical == critical and t.state != "running"
    ]


def verdict(signals: Signals, limits: Thresholds) -> Verdict:
    streaming, venue_reasons = _venue_problems(signals, limits)
    down = _task_reasons(signals.tasks, critical=True)
    if signals.follower_live is False and signals.loaded and not down:
        down.append("read model catching up after a restart")
    if not streaming:
        down.append("no venue is streaming")
    age = signals.newest_tick_age_s
    if age is None:
        down.append("no tick received")
    elif age > limits.max_data_age_s:
        down.append(f"newest tick is {age:.0f}s old (limit {limits.max_data_age_s:.0f}s)")
    degraded = _task_reasons(signals.tasks, critical=False)
    ages = signals.worker_report_ages_s
    if ages and min(ages) > limits.worker_report_max_age_s:
        # Every worker that ever reported went silent: nothing computes opportunities any more.
        degraded.append(f"no worker reporting (last report {min(ages):.0f}s ago)")
    if signals.broker_reachable is False:
        degraded.append("broker unreachable")
    if signals.lag_total is not None and signals.lag_total > limits.max_lag_records:
        degraded.append(f"consumer lag {signals.lag_total} records")
    degraded += venue_reasons
    if not signals.loaded:
        return Verdict("starting", 503, ["read model loading", *down, *degraded], streaming)
    if down:
        return Verdict("down", 503, down + degraded, streaming)
    return Verdict("degraded" if degraded else "ok", 200, degraded, streaming)
