"""What a backtest found, as numbers: JSON (deterministic), Markdown and PNG charts.

Every figure comes from the run's events, never from a clock, and the JSON is written with
sorted keys and exact decimal strings: the same recording and settings give byte-identical
reports. The naive PnL takes each alert at face value — buy at the alert's ask, sell at its
bid, taker fees paid, at most ``notional`` (and at most the alert's executable size) per alert,
no slippage, no latency, no inventory limits — an upper bound, stated as such in the report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import orjson

from arbstream.backtest.run import BacktestResult
from schemas.arbitrage import EpisodeClosed, Opportunity

CENT = Decimal("0.01")
SPREAD_PLACES = Decimal("0.0000001")


@dataclass(frozen=True)
class NamedRun:
    name: str
    settings: dict[str, str]
    """The settings given as overrides or differing from the defaults (env included), as text."""
    result: BacktestResult
    config: dict[str, Any] = field(default_factory=dict)
    """``effective``: the engine's full configuration; ``from_environment``: settings the env changed."""


def percentiles(values: Sequence[Decimal | int]) -> dict[str, str]:
    """Nearest-rank p50/p90/p99/max (exact, no interpolation); empty when there are no values."""
    if not values:
        return {}
    ordered = sorted(Decimal(v) for v in values)

    def rank(p: int) -> str:
        index = max(0, -(-p * len(ordered) // 100) - 1)
        return str(ordered[index])

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": str(ordered[-1])}


def trade_pnl(alert: Opportunity, notional: Decimal) -> tuple[Decimal, Decimal]:
    """(notional traded, profit after fees) of taking one alert with at most ``notional``."""
    traded = min(notional, alert.notional)
    return traded, (traded * alert.net_spread).quantize(CENT, ROUND_HALF_EVEN)


def pair_key(symbol: str, buy: str, sell: str) -> str:
    return f"{symbol}:{buy}->{sell}"


def summarise(run: NamedRun, notional: Decimal) -> dict[str, Any]:
    result = run.result
    closed, alerts = result.closed, result.alerts
    by_pair: dict[str, list[EpisodeClosed]] = defaultdict(list)
    for episode in closed:
        by_pair[pair_key(episode.symbol, episode.buy_venue, episode.sell_venue)].append(episode)
    alerted_pairs = Counter(pair_key(a.symbol, a.buy.venue, a.sell.venue) for a in alerts)
    trades = [(a, *trade_pnl(a, notional)) for a in sorted(alerts, key=lambda a: (a.detected_ts_ns, a.event_id))]
    suppressed = [e for e in closed if not e.alerted]
    return {
        "settings": run.settings,
        "effective_settings": run.config.get("effective", {}),
        "settings_from_environment": run.config.get("from_environment", []),
        "counts": {
            "ticks": result.ticks,
            "rejected_ticks": result.rejected,
            "health_events": result.health_events,
            "alerts": len(alerts),
            "episodes_closed": len(closed),
            "episodes_open_at_end": len(result.still_open),
            "suppressed_by_cooldown": len(suppressed),
            "funding_alerts": len(result.funding),
            "funding_episodes_closed": len(result.funding_closed),
        },
        "pairs": [
            {
                "pair": key,
                "episodes": len(episodes),
                "alerts": alerted_pairs.get(key, 0),
                "duration_ms": percentiles([e.duration_ms for e in episodes]),
                "peak_net_spread": percentiles([e.peak_net_spread for e in episodes]),
            }
            for key, episodes in sorted(by_pair.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        ],
        "duration_ms": percentiles([e.duration_ms for e in closed]),
        "peak_net_spread": percentiles([e.peak_net_spread for e in closed]),
        "avg_net_spread": percentiles([e.avg_net_spread.quantize(SPREAD_PLACES) for e in closed]),
        "capacity_notional": percentiles([a.notional.quantize(CENT) for a in alerts]),
        "naive_pnl": {
            "notional_per_alert": str(notional),
            "trades": len(trades),
            "traded_notional": str(sum((t for _, t, _ in trades), Decimal(0)).quantize(CENT)),
            "profit": str(sum((p for _, _, p in trades), Decimal(0))),
            "assumptions": "each alert taken at its quoted prices, taker fees paid, no slippage/latency/limits",
        },
        "alerts": [
            {
                "event_id": a.event_id,
                "detected_ts_ns": a.detected_ts_ns,
                "net_spread": str(a.net_spread.quantize(SPREAD_PLACES)),
                "notional": str(a.notional.quantize(CENT)),
                "profit": str(profit),
                "cooldown_broken": a.cooldown_broken,
            }
            for a, _, profit in trades
        ],
        "funding_closed": [
            {"event_id": c.event_id, "close_reason": c.close_reason, "duration_ms": c.duration_ms, "alerted": c.alerted}
            for c in sorted(result.funding_closed, key=lambda c: (c.end_ts_ns, c.event_id))
        ],
        "suppressed": sorted(e.event_id for e in suppressed),
        "open_at_end": [o.event_id for o in result.still_open],
    }


def build(runs: Sequence[NamedRun], recording: dict[str, Any], notional: Decimal) -> dict[str, Any]:
    return {
        "report": "arbstream backtest",
        "recording": recording,
        "runs": {run.name: summarise(run, notional) for run in runs},
    }


def to_json(report: dict[str, Any]) -> bytes:
    return orjson.dumps(report, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def to_markdown(report: dict[str, Any], charts: Sequence[str]) -> str:
    runs = report["runs"]
    names = list(runs)
    recording = report["recording"]
    lines = [
        "# Backtest report",
        "",
        f"Recording: {', '.join(recording['sources'])} — {recording['ticks']:,} ticks replayed, "
        f"{recording['first_utc']} → {recording['last_utc']} UTC.",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label, path in _ROWS:
        lines.append(f"| {label} | " + " | ".join(str(_dig(runs[n], path)) for n in names) + " |")
    for name in names:
        if runs[name]["settings"]:
            settings = ", ".join(f"`{k}={v}`" for k, v in sorted(runs[name]["settings"].items()))
            lines += ["", f"Settings of **{name}**: {settings}"]
            if runs[name]["settings_from_environment"]:
                from_env = ", ".join(runs[name]["settings_from_environment"])
                lines.append(f"(from ARBSTREAM_* environment variables: {from_env})")
    lines += [
        "",
        f"## Episodes per pair ({names[0]})",
        "",
        "| pair | episodes | alerts | p50 duration ms | max peak net |",
    ]
    lines.append("|---|---|---|---|---|")
    for pair in runs[names[0]]["pairs"][:30]:
        duration, peak = pair["duration_ms"].get("p50", ""), pair["peak_net_spread"].get("max", "")
        lines.append(f"| {pair['pair']} | {pair['episodes']} | {pair['alerts']} | {duration} | {peak} |")
    lines += ["", "Naive PnL: " + runs[names[0]]["naive_pnl"]["assumptions"] + " (an upper bound).", ""]
    lines += [f"![{chart}]({chart})" for chart in charts]
    return "\n".join(lines) + "\n"


_ROWS = (
    ("alerts", ("counts", "alerts")),
    ("episodes closed", ("counts", "episodes_closed")),
    ("open at end", ("counts", "episodes_open_at_end")),
    ("suppressed by cooldown", ("counts", "suppressed_by_cooldown")),
    ("funding alerts", ("counts", "funding_alerts")),
    ("funding episodes closed", ("counts", "funding_episodes_closed")),
    ("duration p50 / p99 ms", ("duration_ms", "p50|p99")),
    ("peak net spread p50 / max", ("peak_net_spread", "p50|max")),
    ("capacity p50 (notional)", ("capacity_notional", "p50")),
    ("naive PnL", ("naive_pnl", "profit")),
    ("rejected ticks", ("counts", "rejected_ticks")),
)


def _dig(summary: dict[str, Any], path: tuple[str, str]) -> str:
    section = summary[path[0]]
    return " / ".join(str(section.get(key, "–")) for key in path[1].split("|"))


def write(report: dict[str, Any], out: Path, charts: Sequence[str]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_bytes(to_json(report))
    md_path.write_text(to_markdown(report, charts))
    return [json_path, md_path, *(out / c for c in charts)]
