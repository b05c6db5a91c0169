"""PNG charts of a backtest report (matplotlib, no display needed).

Charts are drawn from the report's own numbers (floats only for plotting; the report keeps
the exact decimals), one colour per compared run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: headless, deterministic backend

import matplotlib.pyplot as plt

from arbstream.backtest.report import NamedRun
from schemas.arbitrage import EpisodeClosed

_SAVE = {"dpi": 110, "metadata": {"Software": None}}


def draw(report: dict[str, Any], runs: Sequence[NamedRun], out: Path) -> list[str]:
    """Write the charts into ``out``; returns their file names (for the Markdown report)."""
    out.mkdir(parents=True, exist_ok=True)
    drawn = [
        _pairs(report, out),
        _histogram(runs, out, "durations.png", "episode duration (s)", lambda r: [e.duration_ms / 1000 for e in r]),
        _histogram(
            runs,
            out,
            "net_spread.png",
            "episode peak net spread (bps)",
            lambda r: [float(e.peak_net_spread) * 1e4 for e in r],
        ),
        _capacity(runs, out),
        _pnl(report, out),
    ]
    return [name for name in drawn if name]


def _durations_s(closed: Sequence[EpisodeClosed]) -> list[float]:
    return [e.duration_ms / 1000 for e in closed]


def _peaks_bps(closed: Sequence[EpisodeClosed]) -> list[float]:
    return [float(e.peak_net_spread) * 1e4 for e in closed]


def _pairs(report: dict[str, Any], out: Path) -> str:
    first = next(iter(report["runs"].values()))
    pairs = first["pairs"][:20][::-1]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.3 * len(pairs) + 1)))
    ax.barh([p["pair"] for p in pairs], [p["episodes"] for p in pairs], color="#4c78a8", label="episodes")
    ax.barh([p["pair"] for p in pairs], [p["alerts"] for p in pairs], color="#f58518", label="alerts")
    ax.set_xlabel("count")
    ax.set_title("Episodes and alerts per symbol and venue pair (top 20)")
    ax.legend(loc="lower right")
    return _save(fig, out, "pairs.png")


def _histogram(
    runs: Sequence[NamedRun], out: Path, name: str, label: str, values: Callable[[Sequence[EpisodeClosed]], list[float]]
) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for run in runs:
        data = values(run.result.closed)
        if data:
            ax.hist(data, bins=30, alpha=0.6, label=f"{run.name} (n={len(data)})")
    ax.set_xlabel(label)
    ax.set_ylabel("episodes")
    ax.legend()
    return _save(fig, out, name)


def _capacity(runs: Sequence[NamedRun], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for run in runs:
        data = [float(a.notional) for a in run.result.alerts]
        if data:
            ax.hist(data, bins=30, alpha=0.6, label=f"{run.name} (n={len(data)})")
    ax.set_xlabel("executable notional at alert (size × buy price)")
    ax.set_ylabel("alerts")
    ax.legend()
    return _save(fig, out, "capacity.png")


def _pnl(report: dict[str, Any], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, summary in report["runs"].items():
        alerts = summary["alerts"]
        if not alerts:
            continue
        start = alerts[0]["detected_ts_ns"]
        total, xs, ys = 0.0, [], []
        for alert in alerts:
            total += float(alert["profit"])
            xs.append((alert["detected_ts_ns"] - start) / 60e9)
            ys.append(total)
        ax.step(xs, ys, where="post", label=name)
    ax.set_xlabel("minutes since the first alert")
    ax.set_ylabel("cumulative naive PnL")
    ax.set_title(f"Naive PnL at {next(iter(report['runs'].values()))['naive_pnl']['notional_per_alert']} per alert")
    ax.legend()
    return _save(fig, out, "pnl.png")


def _save(fig: Any, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, **_SAVE)
    plt.close(fig)
    return name
