"""``arbstream backtest``: what the tracker would have found in a recording, with given settings.

Replays recordings (``arbstream record``) through today's parsers and the worker's unchanged
per-tick engine (:mod:`arbstream.backtest.run`), once per settings variant, and writes
``report.json`` (byte-identical for the same inputs), ``report.md`` and PNG charts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from arbstream.backtest import charts, report
from arbstream.backtest.run import run_backtest
from arbstream.errors import ConfigError
from arbstream.settings import REPO_ROOT
from ingest.replay import Replayer, parse_time
from processors.settings import WorkerSettings

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


def backtest(
    sources: Sequence[Path],
    variants: Sequence[tuple[str, dict[str, Any]]],
    out: Path,
    notional: Decimal = Decimal(10_000),
    start: str | None = None,
    end: str | None = None,
    symbols: frozenset[str] = frozenset(),
    venues: frozenset[str] = frozenset(),
) -> list[Path]:
    """Run every settings variant over the same replay and write one report comparing them."""
    runs: list[report.NamedRun] = []
    counts = None
    for name, overrides in variants:
        settings = worker_settings(overrides)
        replayer = Replayer(sources, start_ns=parse_time(start), end_ns=parse_time(end))
        result = run_backtest(replayer.events(), settings, symbols, venues)
        runs.append(report.NamedRun(name, {k: _text(v) for k, v in sorted(overrides.items())}, result))
        counts = replayer.counts
    assert counts is not None
    recording = {
        "sources": sorted(p.name for p in sources),
        "frames": counts.frames,
        "malformed_frames": counts.malformed,
        "ticks": runs[0].result.ticks,
        "first_ts_ns": counts.first_ts_ns,
        "last_ts_ns": counts.last_ts_ns,
        "first_utc": _utc(counts.first_ts_ns),
        "last_utc": _utc(counts.last_ts_ns),
        "symbols": sorted(symbols),
        "venues": sorted(venues),
    }
    built = report.build(runs, recording, notional)
    drawn = charts.draw(built, runs, out)
    return report.write(built, out, drawn)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _utc(ts_ns: int | None) -> str:
    return "" if ts_ns is None else datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def run_cli(
    sources: Sequence[Path],
    sample: bool,
    settings: Sequence[str],
    compare: Sequence[str],
    out: Path | None,
    notional: str,
    start: str | None,
    end: str | None,
    symbols: Sequence[str],
    venues: Sequence[str],
) -> int:
    if sample:
        sources = [*sources, SAMPLE_DIR]
    if not sources:
        raise ConfigError("nothing to backtest: give recording files/directories or --sample")
    variants = [("base", parse_overrides(settings))]
    if compare:
        variants.append(("compare", {**variants[0][1], **parse_overrides(compare)}))
    try:
        amount = Decimal(notional)
    except ArithmeticError as exc:
        raise ConfigError(f"--notional {notional!r} is not a number") from exc
    out = out or REPORTS_DIR / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    written = backtest(
        sources,
        variants,
        out,
        amount,
        start,
        end,
        frozenset(s.upper() for s in symbols),
        frozenset(v.lower() for v in venues),
    )
    for path in written:
        print(path)
    return 0
