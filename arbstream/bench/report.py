"""Turn stage results into one summary: ratios to the broker limit, a Markdown file, a rich table."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from arbstream.bench.common import BASES, Result

Row = tuple[str, str, str, str]
"""(stage, figure, value, ratio to the broker limit)."""
HEADER: Row = ("Stage", "Figure", "Value", "× broker limit")


def broker_limit(stages: Result) -> float | None:
    """min(produce, consume) msgs/s of stage 2: a pipeline stage that reads and writes cannot beat both."""
    value = stages.get("broker_limit", {}).get("limit_msgs_per_s")
    return value if isinstance(value, float) and value > 0 else None


def ratios(stages: Result) -> dict[str, float | None]:
    limit = broker_limit(stages)
    figures = {
        "parse_slowest_venue": stages.get("parse", {}).get("slowest_frames_per_s"),
        "parse_median_venue": stages.get("parse", {}).get("median_frames_per_s"),
        "broker_produce": stages.get("broker_limit", {}).get("produce_msgs_per_s"),
        "broker_consume": stages.get("broker_limit", {}).get("consume_msgs_per_s"),
        "ingest": stages.get("ingest", {}).get("ticks_per_s"),
        "ingest_per_core": stages.get("ingest", {}).get("ticks_per_cpu_s"),
        "worker_drain": stages.get("processors", {}).get("drain_ticks_per_s"),
        "worker_logic_only": stages.get("processors", {}).get("logic_only_ticks_per_cpu_s"),
    }
    return {k: (v / limit if isinstance(v, float) and limit else None) for k, v in figures.items()}


def _num(value: Any, digits: int = 0) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else (f"{value:.2f}×" if value >= 0.01 else f"{value:.4f}×")


def _skipped(stage: Result) -> str | None:
    if stage.get("status") in {"not measured", "failed"}:
        return f"{stage['status']}: {stage.get('reason', '').splitlines()[0] if stage.get('reason') else ''}"
    return None


def _latency(block: Result) -> str:
    return f"{_num(block.get('p50_ms'), 1)} / {_num(block.get('p99_ms'), 1)} / {_num(block.get('p99_9_ms'), 1)}"


def _parse_rows(parse: Result, r: dict[str, float | None]) -> list[Row]:
    venues = parse["venues"]
    slowest = min(venues, key=lambda name: venues[name]["frames_per_s"])
    return [
        (
            "1 Parse",
            f"frames/s, one core, slowest venue ({slowest})",
            _num(parse["slowest_frames_per_s"]),
            _ratio(r["parse_slowest_venue"]),
        ),
        (
            "1 Parse",
            f"frames/s, one core, median of {len(venues)} venues",
            _num(parse["median_frames_per_s"]),
            _ratio(r["parse_median_venue"]),
        ),
    ]


def _broker_rows(limit: Result, r: dict[str, float | None]) -> list[Row]:
    size = f"{limit['message_bytes']} B msgs"
    return [
        (
            "2 Broker",
            f"produce msgs/s ({size}, linger 5 ms, acks=all)",
            _num(limit["produce_msgs_per_s"]),
            _ratio(r["broker_produce"]),
        ),
        (
            "2 Broker",
            f"consume msgs/s ({_num(limit['consume_mb_per_s'], 1)} MB/s)",
            _num(limit["consume_msgs_per_s"]),
            _ratio(r["broker_consume"]),
        ),
    ]


def _ingest_rows(ingest: Result, r: dict[str, float | None]) -> list[Row]:
    observed = f"ticks/s per process (ingest CPU {ingest['ingest_cpu']:.2f}; bound by {ingest['bound_by']})"
    capacity = f"ticks per ingest CPU-second (one core's capacity; {len(BASES)} bases, saturated)"
    rows: list[Row] = [
        ("3 Ingest", observed, _num(ingest["ticks_per_s"]), _ratio(r["ingest"])),
        ("3 Ingest", capacity, _num(ingest["ticks_per_cpu_s"]), _ratio(r["ingest_per_core"])),
    ]
    market = ingest.get("market")
    if market and "ticks_per_cpu_s" in market:
        whole = (
            f"ticks per ingest CPU-second, whole market ({market['bases']} bases, {market['instruments']:,} "
            f"instruments) at {market['offered_updates_per_s']:,} updates/s offered (delivered "
            f"{market['ticks_per_s']:,.0f}/s, ingest CPU {market['ingest_cpu']:.2f}, conflated "
            f"{market['conflated_per_s']:,.0f}/s)"
        )
        rows.append(("3 Ingest", whole, _num(market["ticks_per_cpu_s"]), "—"))
    elif market:
        rows.append(("3 Ingest", "ticks per ingest CPU-second, whole market", _skipped(market) or "not measured", "—"))
    return rows


def _processor_rows(proc: Result, r: dict[str, float | None]) -> list[Row]:
    rows: list[Row] = [
        (
            "4 Worker",
            f"backlog drain ticks/s (CPU {proc['drain_worker_cpu']:.2f})",
            _num(proc["drain_ticks_per_s"]),
            _ratio(r["worker_drain"]),
        ),
        (
            "4 Worker",
            "per-tick logic alone, no Kafka, ticks per CPU-second",
            _num(proc["logic_only_ticks_per_cpu_s"]),
            _ratio(r["worker_logic_only"]),
        ),
        (
            "4 Worker",
            f"changelog bytes per processed tick ({_num(proc['changelog_records'])} records)",
            _num(proc["changelog_bytes_per_tick"], 1),
            "—",
        ),
    ]
    market = proc.get("market_mix", {})
    if "drain_ticks_per_s" in market:
        mix = f"{market['bases']} bases, {_num(market['instruments'])} instruments"
        figure = f"backlog drain ticks/s, market mix ({mix}; CPU {market['drain_worker_cpu']:.2f})"
        rows.append(("4 Worker", figure, _num(market["drain_ticks_per_s"]), "—"))
        figure = f"per-tick logic alone, market mix, ticks per CPU-second ({mix})"
        rows.append(("4 Worker", figure, _num(market["logic_only_ticks_per_cpu_s"]), "—"))
    for level in proc["latency"]:
        rows.append(("4 Latency", _latency_figure(level), _latency(level["tick_to_topic"]), "—"))
    for key in ("overload", "overload_jumping"):
        overload = proc.get(key, {})
        if "tick_to_topic" in overload:
            counts = overload["worker_counts"]
            conflated = f"{_num(counts['conflated'])} conflated / {_num(counts['processed'])} processed"
            share = f"worker at {overload['worker_cpu_share']:.0%} CPU time, offered 3× that capacity"
            if overload.get("skip_behind_ms"):
                share += f", backlog jump at {overload['skip_behind_ms']} ms"
            elif "skip_behind_ms" in overload:
                share += ", no backlog jump"
            label = f"OVERLOAD ({share}), {conflated}{_skipped_records(counts)}; tick→topic"
            figure = _latency_figure(overload).replace("tick→topic", label)
            rows.append(("4 Overload", figure, _latency(overload["tick_to_topic"]), "—"))
    scale = proc.get("scale_out", {})
    if "speedup" in scale:
        one, two = scale["workers_1"], scale["workers_2"]
        figure = (
            f"drain ticks/s 1 → 2 workers ({'+'.join(scale['bases'])}; "
            f"CPU {one['workers_cpu']:.2f} → {two['workers_cpu']:.2f}; speedup {scale['speedup']:.2f}×)"
        )
        value = f"{_num(one['drain_ticks_per_s'])} → {_num(two['drain_ticks_per_s'])}"
        rows.append(("4 Scale-out", figure, value, "—"))
    return rows


def _latency_figure(level: Result) -> str:
    processed = f"processed {_num(level['processed_ticks_per_s'])}/s, worker CPU {level['worker_cpu']:.2f}"
    state = f"SATURATED: {processed}" if level["saturated"] else f"keeps up; {processed}"
    offered = f"{level['offered_ticks_per_s']:,}/s (sent {_num(level['sent_ticks_per_s'])}/s)"
    return f"tick→topic p50/p99/p99.9 ms @ {offered} ({state}, n={level['tick_to_topic']['samples']})"


def _cpu_cells(step: Result) -> str:
    """CPU cores per 10k ticks/s of each process, the figure that sizes a cluster."""
    per = step["cpu_cores_per_10k_ticks_per_s"]
    cells = ", ".join(f"{name} {_num(per[name], 2)}" for name in ("feed", "worker", "broker"))
    jit = step.get("cpu_cores", {}).get("broker_jit")
    return cells if jit is None else f"{cells} (+ broker JIT compiling {_num(jit, 2)} cores)"


def _market_figure(step: Result, label: str) -> str:
    counts = step["worker_counts"]
    state = "SATURATED" if step["saturated"] else "keeps up"
    if step["producer_limited"]:
        state += ", feed-bound"
    return (
        f"{label} {step['offered_ticks_per_s']:,}/s offered (sent {_num(step['sent_ticks_per_s'])}/s, "
        f"{_num(step['ticks_per_record'], 1)} ticks/record): {state}; "
        f"processed {_num(step['processed_ticks_per_s'])}/s, "
        f"{_num(counts['conflated'])} conflated / {_num(counts['processed'])} processed"
        f"{_skipped_records(counts)}; "
        f"CPU cores per 10k ticks/s: {_cpu_cells(step)}; tick→opportunity p50/p99/p99.9 ms "
        f"(n={step['tick_to_opportunity']['samples']})"
    )


def _skipped_records(counts: Result) -> str:
    """Only when the worker jumped over a stale backlog (``ARBSTREAM_WORKER_SKIP_BEHIND_MS``)."""
    skipped = counts.get("skipped_records", 0)
    return f" / {_num(skipped)} records skipped" if skipped else ""


def _market_rows(market: Result, _r: dict[str, float | None]) -> list[Row]:
    mix = f"{market['bases']} bases, {_num(market['instruments'])} instruments, {market['partitions']} partitions"
    rows: list[Row] = [
        ("4b Market", f"sustained ticks/s end to end, one worker ({mix})", _num(market["sustained_ticks_per_s"]), "—")
    ]
    if "idle_cpu_cores" in market:
        rows.append(("4b Market", "worker CPU cores with no ticks (holding the partitions)", _idle(market), "—"))
    for step in market["ladder"]:
        rows.append(("4b Market", _market_figure(step, "ladder"), _latency(step["tick_to_opportunity"]), "—"))
    overload = market["overload"]
    if "tick_to_opportunity" in overload:
        figure = _market_figure(overload, f"OVERLOAD {OVERLOAD_LABEL}")
        rows.append(("4b Market", figure, _latency(overload["tick_to_opportunity"]), "—"))
    else:
        rows.append(("4b Market", f"overload: {overload.get('reason', '')}", "—", "—"))
    return rows


OVERLOAD_LABEL = "3× sustained,"


def _idle(market: Result) -> str:
    return _num(market["idle_cpu_cores"]["worker"], 2)


def _websocket_rows(ws: Result, _r: dict[str, float | None]) -> list[Row]:
    rows: list[Row] = []
    for level in ws["levels"]:
        delivered = _num((level.get("delivered_ratio") or math.nan) * 100, 1)
        clients = f"{level['clients']:,} client" + ("s" if level["clients"] != 1 else "")
        cpu = f"API CPU {level['api_cpu']:.2f}, bench CPU {level['bench_cpu']:.2f}"
        setup = f"; all connected and subscribed in {level['setup_s']:.1f} s" if "setup_s" in level else ""
        api_part = ""
        if "api_delivery_p99_ms" in level:
            p50, p99 = _num(level["api_delivery_p50_ms"]), _num(level["api_delivery_p99_ms"])
            api_part = f"; the API's part, publish → last socket, p50/p99 ≤ {p50} / {p99} ms"
        if "after_worker_p99_ms" in level:
            p50, p99 = _num(level["after_worker_p50_ms"], 1), _num(level["after_worker_p99_ms"], 1)
            api_part += f"; worker emit → client p50/p99 {p50} / {p99} ms"
        figure = (
            f"delivery p50/p99/p99.9 ms, {clients} ({delivered} % delivered, n={level['samples']}; {cpu}{setup}"
            f"{api_part})"
        )
        rows.append(("5 WebSocket", figure, _latency(level), "—"))
    return rows


def _recovery_rows(rec: Result, _r: dict[str, float | None]) -> list[Row]:
    parts = f"join wait {_num(rec['group_wait_s'], 1)} s, restore {_num(rec['table_restore_s'], 1)} s"
    records = f"{_num(rec['changelog_records'])} changelog records of {_num(rec['changelog_record_bytes'])} B"
    figure = f"SIGKILL → replacement processing, s ({parts}; {records}; session timeout {rec['session_timeout_s']} s)"
    return [("6 Recovery", figure, _num(rec["recovery_s"], 1), "—")]


def _api_rows(api: Result, _r: dict[str, float | None]) -> list[Row]:
    market = f"{api['symbols']}×{api['venues']} market, {_num(api['applied_updates_per_s'])} state updates/s"
    rows: list[Row] = []
    for scenario in api["scenarios"].values():
        cost = f"API {_num(scenario['api_cpu_ms_per_request'], 1)} CPU-ms/request"
        size = f"{_num(scenario['bytes'] / 1024)} KiB, {cost}, n={scenario['samples']}"
        rows.append(("7 API", f"GET {scenario['path']} p50/p99/p99.9 ms ({size}; {market})", _latency(scenario), "—"))
    return rows


def _replay_rows(replay: Result, _r: dict[str, float | None]) -> list[Row]:
    sample = f"{replay['recording']} recording: {_num(replay['frames'])} frames, {_num(replay['events'])} events"
    return [
        (
            "8 Replay",
            f"replay --speed max to the broker, ticks/s (events/s with health), until acknowledged ({sample})",
            f"{_num(replay['publish_ticks_per_s'])} ({_num(replay['publish_events_per_s'])})",
            "—",
        ),
        (
            "8 Replay",
            "replay parse only (no publishing), events/s wall clock / per CPU-second",
            f"{_num(replay['replay_events_per_s'])} / {_num(replay['replay_events_per_cpu_s'])}",
            "—",
        ),
        (
            "8 Replay",
            "backtest (replay + worker engine), ticks/s wall clock / per CPU-second",
            f"{_num(replay['backtest_ticks_per_s'])} / {_num(replay['backtest_ticks_per_cpu_s'])}",
            "—",
        ),
    ]


def _dashboard_rows(page: Result, _r: dict[str, float | None]) -> list[Row]:
    runs = page["runs"]

    def median(key: str, inner: str | None = None) -> float:
        return float(statistics.median(run[key][inner] if inner else run[key] for run in runs))

    load = f"{_num(page['instruments'])} instruments, {_num(page['offered_updates_per_s'])} updates/s, {len(runs)} runs"
    latency = f"{_num(median('message_to_screen_ms', 'p50'), 1)} / {_num(median('message_to_screen_ms', 'p99'), 1)}"
    return [
        ("9 Dashboard", f"Prices screen fps while updating ({load})", _num(median("fps"), 1), "—"),
        ("9 Dashboard", "Prices screen fps while scrolling the matrix", _num(median("fps_while_scrolling"), 1), "—"),
        ("9 Dashboard", "message → screen p50 / p99 ms", latency, "—"),
        ("9 Dashboard", "renderer main thread, CPU-s per s", _num(median("main_thread_cpu_per_s"), 2), "—"),
    ]


BUILDERS = {
    "parse": ("1 Parse", _parse_rows),
    "broker_limit": ("2 Broker", _broker_rows),
    "ingest": ("3 Ingest", _ingest_rows),
    "processors": ("4 Worker", _processor_rows),
    "market": ("4b Market", _market_rows),
    "websocket": ("5 WebSocket", _websocket_rows),
    "recovery": ("6 Recovery", _recovery_rows),
    "api": ("7 API", _api_rows),
    "replay": ("8 Replay", _replay_rows),
    "dashboard": ("9 Dashboard", _dashboard_rows),
}


def summary_rows(stages: Result) -> list[Row]:
    r = ratios(stages)
    rows: list[Row] = []
    for name, (label, build) in BUILDERS.items():
        if name in stages:
            skipped = _skipped(stages[name])
            rows += [(label, skipped, "—", "—")] if skipped else build(stages[name], r)
    return rows


def venue_rows(stages: Result) -> list[tuple[str, ...]]:
    parse = stages.get("parse", {})
    if "venues" not in parse:
        return []
    limit = broker_limit(stages)
    return [
        (
            name,
            _num(v["frames_per_s"]),
            _num(v["book_frames_per_s"]),
            _num(v["funding_frames_per_s"]),
            _ratio(v["frames_per_s"] / limit if limit else None),
        )
        for name, v in parse["venues"].items()
    ]


VENUE_HEADER = ("Venue", "frames/s", "book frames/s", "funding frames/s", "× broker limit")


def _md_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _machine_lines(report: Result) -> list[str]:
    m = report["machine"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items() if v)
    return [
        f"- CPU: {m['cpu_model']}, {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable)",
        f"- RAM: {m['ram_gib']} GiB; busy CPUs before start (other processes): {m['busy_cpus_before_start']}",
        f"- OS: {m['os']}; Python: {m['python']}; Kafka: {m['kafka']}" + (f"; {m['java']}" if m.get("java") else ""),
        f"- Libraries: {libs}",
    ]


def contention_line(stages: Result) -> str:
    """Per stage, CPUs used by processes the bench did not start (a busy neighbour lowers the figures)."""
    parts = [f"{name} {stage['cpu']['other_processes_cpus']:.2f}" for name, stage in stages.items() if "cpu" in stage]
    return "CPUs used by other processes during each stage: " + ", ".join(parts) if parts else ""


def markdown(report: Result) -> str:
    stages = report["stages"]
    parts = [
        f"# arbstream bench — {report['mode']} run, {report['started_at']} ({report['duration_s']:.0f} s)",
        "",
        *_machine_lines(report),
        "",
        "Each figure is the median of several runs (see the JSON for every run). "
        '"× broker limit" divides a throughput by min(produce, consume) msgs/s of stage 2.',
        "",
        _md_table(HEADER, summary_rows(stages)),
        "",
        contention_line(stages),
    ]
    if venue_rows(stages):
        parts += ["", "## Parse throughput per venue (one core)", "", _md_table(VENUE_HEADER, venue_rows(stages))]
    return "\n".join(parts) + "\n"


def print_tables(report: Result, console: Console | None = None) -> None:
    console = console or Console()
    for line in _machine_lines(report):
        console.print(line, highlight=False)
    tables: list[tuple[str, tuple[str, ...], Sequence[tuple[str, ...]]]] = [
        (f"arbstream bench ({report['mode']})", HEADER, summary_rows(report["stages"]))
    ]
    if venue_rows(report["stages"]):
        tables.append(("Parse throughput per venue", VENUE_HEADER, venue_rows(report["stages"])))
    for title, header, rows in tables:
        table = Table(title=title, show_lines=False)
        for column in header:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(contention_line(report["stages"]), highlight=False)
