"""What ``arbstream soak`` measured, as plain data: faults, breaches, memory; JSON, Markdown, a rich table.

Pure functions over the records the soak collects, so tests check the arithmetic directly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

FAULT_KINDS = ("drop", "stall", "malformed", "worker_kill", "broker_restart")
"""Injected in this order, round robin: venue faults through the simulator's ``/control/*``,
then the worker SIGKILLed (and restarted), then the broker restarted."""


@dataclass
class Fault:
    kind: str
    target: str
    """The venue for venue faults, else the process."""
    at_s: float
    """Seconds since the soak started when it was injected."""
    recovered_s: float | None = None
    """Seconds from the fault's end (injection; a stall's end) until data flowed again; None = never."""
    health_back_s: float | None = None
    """Seconds from recovery until ``/health`` was back at its baseline; None = not within the bound."""


@dataclass
class Breach:
    at_s: float
    what: str


@dataclass
class SoakReport:
    minutes: float
    fault_every_s: float
    baseline_health: str = ""
    faults: list[Fault] = field(default_factory=list)
    breaches: list[Breach] = field(default_factory=list)
    memory_mb: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """Per process: (seconds since start, RSS MiB) samples."""
    gauges: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """Per named gauge (e.g. the API's spread-history samples): (seconds since start, value) samples."""
    alerts: int = 0
    duplicate_alerts: int = 0
    elapsed_s: float = 0.0

    def sample(self, at_s: float, rss: dict[str, float | None]) -> None:
        for name, mb in rss.items():
            if mb is not None:
                self.memory_mb.setdefault(name, []).append((round(at_s, 1), round(mb, 1)))

    def gauge(self, at_s: float, name: str, value: float) -> None:
        self.gauges.setdefault(name, []).append((round(at_s, 1), value))

    def breach(self, at_s: float, what: str) -> None:
        self.breaches.append(Breach(round(at_s, 1), what))


def fault_counts(faults: list[Fault]) -> dict[str, dict[str, int]]:
    """Per kind: injected, recovered (data flows again), health back (at baseline within the bound)."""
    counts = {kind: {"injected": 0, "recovered": 0, "health_back": 0} for kind in FAULT_KINDS}
    for fault in faults:
        row = counts.setdefault(fault.kind, {"injected": 0, "recovered": 0, "health_back": 0})
        row["injected"] += 1
        row["recovered"] += fault.recovered_s is not None
        row["health_back"] += fault.health_back_s is not None
    return counts


def recovery_times(faults: list[Fault]) -> dict[str, dict[str, float]]:
    """Per kind: median and worst seconds to recover (recovered faults only)."""
    by_kind: dict[str, list[float]] = {}
    for fault in faults:
        if fault.recovered_s is not None:
            by_kind.setdefault(fault.kind, []).append(fault.recovered_s)
    return {
        kind: {"median_s": round(sorted(times)[len(times) // 2], 1), "max_s": round(max(times), 1)}
        for kind, times in by_kind.items()
    }


def memory_summary(memory_mb: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, float]]:
    """Per process: first, last and peak RSS, and the change per hour over the run (a slope, MiB/h).

    The slope is a least-squares fit over every sample, so one GC spike does not read as a leak.
    """
    names = {"start": "start_mb", "end": "end_mb", "peak": "peak_mb", "slope_per_h": "slope_mb_per_h"}
    return {
        process: {names.get(key, key): value for key, value in row.items()}
        for process, row in series_summary(memory_mb).items()
    }


def series_summary(series: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, float]]:
    """Per series: sample count, first, last and peak value, and a least-squares slope per hour."""
    summary: dict[str, dict[str, float]] = {}
    for name, samples in series.items():
        if samples:
            summary[name] = {
                "samples": len(samples),
                "start": samples[0][1],
                "end": samples[-1][1],
                "peak": max(value for _, value in samples),
                "slope_per_h": round(_slope(samples) * 3600, 1),
            }
    return summary


def _slope(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (m - mean_m) for t, m in samples) / var


def to_dict(report: SoakReport) -> dict[str, object]:
    return {
        **asdict(report),
        "fault_counts": fault_counts(report.faults),
        "recovery_times": recovery_times(report.faults),
        "memory_summary": memory_summary(report.memory_mb),
        "gauge_summary": series_summary(report.gauges),
    }


def to_markdown(report: SoakReport) -> str:
    lines = [
        f"# Soak: {report.elapsed_s / 60:.1f} min, a fault every {report.fault_every_s:.0f} s",
        "",
        f"Baseline `/health`: `{report.baseline_health}`. Alerts: {report.alerts}, "
        f"duplicated event ids: {report.duplicate_alerts}.",
        "",
        "| fault | injected | recovered | /health back | median s | worst s |",
        "|---|---|---|---|---|---|",
    ]
    times = recovery_times(report.faults)
    for kind, row in fault_counts(report.faults).items():
        kind_times = times.get(kind, {})
        lines.append(
            f"| {kind} | {row['injected']} | {row['recovered']} | {row['health_back']} | "
            f"{kind_times.get('median_s', '-')} | {kind_times.get('max_s', '-')} |"
        )
    lines += [
        "",
        "| process | samples | RSS start MiB | RSS end MiB | peak MiB | slope MiB/h |",
        "|---|---|---|---|---|---|",
    ]
    for name, mem in memory_summary(report.memory_mb).items():
        lines.append(
            f"| {name} | {mem['samples']:.0f} | {mem['start_mb']} | {mem['end_mb']} | {mem['peak_mb']} | "
            f"{mem['slope_mb_per_h']} |"
        )
    if report.gauges:
        lines += ["", "| gauge | samples | start | end | peak | slope per h |", "|---|---|---|---|---|---|"]
        for name, held in series_summary(report.gauges).items():
            lines.append(
                f"| {name} | {held['samples']:.0f} | {held['start']:,.0f} | {held['end']:,.0f} | {held['peak']:,.0f} | "
                f"{held['slope_per_h']:,.0f} |"
            )
    lines += ["", f"## Invariants broken: {len(report.breaches)}", ""]
    lines += [f"- {b.at_s:.0f} s: {b.what}" for b in report.breaches] or ["none"]
    return "\n".join(lines) + "\n"


def write(report: SoakReport, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "soak.json", out_dir / "soak.md"
    json_path.write_text(json.dumps(to_dict(report), indent=2))
    md_path.write_text(to_markdown(report))
    return json_path, md_path


def print_tables(report: SoakReport, console: Console | None = None) -> None:
    console = console or Console()
    faults = Table(title=f"faults ({report.elapsed_s / 60:.1f} min)")
    for column in ("fault", "injected", "recovered", "/health back", "median s", "worst s"):
        faults.add_column(column)
    times = recovery_times(report.faults)
    for kind, row in fault_counts(report.faults).items():
        kind_times = times.get(kind, {})
        faults.add_row(
            kind,
            str(row["injected"]),
            str(row["recovered"]),
            str(row["health_back"]),
            str(kind_times.get("median_s", "-")),
            str(kind_times.get("max_s", "-")),
        )
    memory = Table(title="memory (RSS, MiB)")
    for column in ("process", "samples", "start", "end", "peak", "slope /h"):
        memory.add_column(column)
    for name, mem in memory_summary(report.memory_mb).items():
        memory.add_row(
            name,
            f"{mem['samples']:.0f}",
            f"{mem['start_mb']:.0f}",
            f"{mem['end_mb']:.0f}",
            f"{mem['peak_mb']:.0f}",
            f"{mem['slope_mb_per_h']:+.1f}",
        )
    console.print(faults)
    console.print(memory)
    console.print(f"invariants broken: {len(report.breaches)}; alerts {report.alerts}, dup {report.duplicate_alerts}")
    for breach in report.breaches:
        console.print(f"  [red]{breach.at_s:.0f} s[/red] {breach.what}")
