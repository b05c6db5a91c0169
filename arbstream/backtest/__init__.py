"""``arbstream backtest``: what the tracker would have found in a recording, with given settings.

Replays recordings (``arbstream record``) through today's parsers and the worker's unchanged
per-tick engine (:mod:`arbstream.backtest.run`), once per settings variant, and writes
``report.json`` (byte-identical for the same inputs), ``report.md`` and PNG charts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from arbstream.backtest import charts, config, report
from arbstream.backtest.run import run_backtest
from ingest.replay import ReplayCounts, Replayer, ReplayEvent, parse_time
from ingest.replay_progress import ReplayProgress
from ingest.replay_topics import WHOLE_TOPICS, OffsetRange, TopicRange, read_range
from plumbing.errors import ConfigError
from plumbing.kafka import resolve_bootstrap
from plumbing.settings import REPO_ROOT, CommonSettings
from processors.settings import WorkerSettings
from schemas.market import Health

REPORTS_DIR = REPO_ROOT / "backtest-results"
"""Where reports go by default, one directory per run; the API serves them from here."""
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
"""A small recording made by the simulator with planted dislocations (see ``sample.py``)."""


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` settings (``cooldown_s=60``, ``ARBSTREAM_TAKER_FEES={"okx":"0.0002"}``)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"setting {pair!r}: expected KEY=VALUE, e.g. cooldown_s=60")
        name = key.strip().lower().removeprefix("arbstream_")
        if name not in WorkerSettings.model_fields:
            raise ConfigError(f"setting {key!r} is not a worker setting (see processors/settings.py)")
        text = value.strip()
        overrides[name] = json.loads(text) if text[:1] in "{[" else text
    return overrides


def worker_settings(overrides: dict[str, Any]) -> WorkerSettings:
    try:
        settings = WorkerSettings(**overrides)
        settings.arb_config()  # cross-field rules (hysteresis) fail here, before any replay
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"backtest settings {overrides}: {exc}") from exc
    return settings


class FileSource:
    """Recordings (``arbstream record``), re-parsed with today's parsers; replayed per run."""

    def __init__(self, paths: Sequence[Path], start: str | None = None, end: str | None = None) -> None:
        self.paths, self.start_ns, self.end_ns = list(paths), parse_time(start), parse_time(end)
        self.counts = ReplayCounts()
        self._replayer = Replayer(self.paths, start_ns=self.start_ns, end_ns=self.end_ns)

    def events(self) -> Iterable[ReplayEvent]:
        self._replayer = Replayer(self.paths, start_ns=self.start_ns, end_ns=self.end_ns)
        self.counts = self._replayer.counts
        return self._replayer.events()

    def progress(self, label: str) -> ReplayProgress:
        """The bar of the replay :meth:`events` last started."""
        return self._replayer.progress(label)

    def describe(self) -> dict[str, Any]:
        return {
            "sources": sorted(p.name for p in self.paths),
            "frames": self.counts.frames,
            "malformed_frames": self.counts.malformed,
        }


class TopicSource:
    """The tick and health topics of a namespace on the broker (read once, replayed per run)."""

    def __init__(
        self,
        bootstrap: str,
        namespace: str,
        start: str | None,
        end: str | None,
        bases: Sequence[str],
        offsets: OffsetRange = WHOLE_TOPICS,
    ):
        self.bootstrap, self.namespace, self.bases = bootstrap, namespace, list(bases)
        self.start_ns, self.end_ns, self.offsets = parse_time(start), parse_time(end), offsets
        self.counts = TopicRange()
        self._events: list[ReplayEvent] | None = None

    def events(self) -> Iterable[ReplayEvent]:
        if self._events is None:
            self._events = asyncio.run(
                read_range(
                    self.bootstrap, self.namespace, self.start_ns, self.end_ns, self.bases, self.counts, self.offsets
                )
            )
        return self._events

    def progress(self, label: str) -> ReplayProgress:
        """A bar over the span of the ticks read (known: they are in memory)."""
        ticks = [e.receipt_ts_ns for e in self._events or () if not isinstance(e, Health)]
        return ReplayProgress(label, ticks[0] if ticks else None, ticks[-1] if ticks else None)

    def describe(self) -> dict[str, Any]:
        return {
            "sources": [f"topics:{self.namespace or '(no namespace)'}"],
            "records": self.counts.records,
            "undecodable_records": self.counts.undecodable,
        }


def backtest(
    source: FileSource | TopicSource,
    variants: Sequence[tuple[str, dict[str, Any]]],
    out: Path,
    notional: Decimal = Decimal(10_000),
    symbols: frozenset[str] = frozenset(),
    venues: frozenset[str] = frozenset(),
) -> list[Path]:
    """Run every settings variant over the same replay and write one report comparing them."""
    runs: list[report.NamedRun] = []
    for name, overrides in variants:
        settings = worker_settings(overrides)
        events = source.events()
        # On stderr (and only on a terminal): stdout carries the report's paths.
        with source.progress(f"backtest {name}") as shown:
            result = run_backtest(shown.track(events), settings, symbols, venues)
        recorded = {
            "effective": config.effective_config(settings),
            "from_environment": config.from_environment(settings, overrides),
        }
        runs.append(report.NamedRun(name, config.changed_settings(settings, overrides), result, recorded))
    first = runs[0].result
    recording = {
        **source.describe(),
        "ticks": first.ticks,
        "first_ts_ns": first.first_ts_ns,
        "last_ts_ns": first.last_ts_ns,
        "first_utc": _utc(first.first_ts_ns),
        "last_utc": _utc(first.last_ts_ns),
        "symbols": sorted(symbols),
        "venues": sorted(venues),
    }
    built = report.build(runs, recording, notional)
    drawn = charts.draw(built, runs, out)
    return report.write(built, out, drawn)


def _utc(ts_ns: int | None) -> str:
    return "" if ts_ns is None else datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def run_cli(
    sources: Sequence[Path],
    sample: bool,
    topics: str | None,
    settings: Sequence[str],
    compare: Sequence[str],
    out: Path | None,
    notional: str,
    start: str | None,
    end: str | None,
    symbols: Sequence[str],
    venues: Sequence[str],
    offsets: OffsetRange = WHOLE_TOPICS,
) -> int:
    if sample:
        sources = [*sources, SAMPLE_DIR]
    if bool(sources) == (topics is not None):
        raise ConfigError("backtest one source: recording files/directories, --sample, or --topics NAMESPACE")
    if topics is None and offsets != WHOLE_TOPICS:
        raise ConfigError("--from-offset/--to-offset are positions in the broker's topics: use them with --topics")
    variants = [("base", parse_overrides(settings))]
    if compare:
        variants.append(("compare", {**variants[0][1], **parse_overrides(compare)}))
    try:
        amount = Decimal(notional)
    except ArithmeticError as exc:
        raise ConfigError(f"--notional {notional!r} is not a number") from exc
    source: FileSource | TopicSource
    if topics is not None:
        bootstrap = resolve_bootstrap(CommonSettings().kafka_bootstrap)
        source = TopicSource(bootstrap, topics, start, end, symbols, offsets)
    else:
        source = FileSource(sources, start, end)
    out = out or REPORTS_DIR / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    wanted = frozenset(s.upper() for s in symbols), frozenset(v.lower() for v in venues)
    for path in backtest(source, variants, out, amount, *wanted):
        print(path)
    return 0
