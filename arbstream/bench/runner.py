"""Run the stages in order, keep going when one fails, write JSON + Markdown, print the table."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console

from arbstream.bench import report
from arbstream.bench.api_stage import run_api_stage
from arbstream.bench.broker_limit import run_broker_limit
from arbstream.bench.common import Plan, Result
from arbstream.bench.dashboard_stage import run_dashboard_stage
from arbstream.bench.ingest_stage import run_ingest_stage
from arbstream.bench.kafka_io import BrokerInfo, bench_broker
from arbstream.bench.machine import CpuMeter, busy_cpus, describe
from arbstream.bench.market_stage import LadderPlan, run_market_stage
from arbstream.bench.parse import run_parse
from arbstream.bench.processors_stage import run_processors_stage
from arbstream.bench.recovery import run_recovery
from arbstream.bench.replay_stage import run_replay_stage
from arbstream.bench.ticks import TickSource
from arbstream.bench.websocket_stage import run_websocket_stage
from plumbing import gc_tuning
from plumbing.broker import ram_disk_root
from plumbing.errors import ConfigError
from plumbing.settings import REPO_ROOT

STAGES = (
    "parse",
    "broker_limit",
    "ingest",
    "processors",
    "market",
    "websocket",
    "recovery",
    "api",
    "replay",
    "dashboard",
)
LOCAL_STAGES: dict[str, Callable[[Plan], Result]] = {
    "parse": lambda plan: run_parse(plan.parse_frames, plan.runs),
    "api": lambda plan: run_api_stage(plan.quick),
    "dashboard": lambda plan: run_dashboard_stage(plan.runs, plan.quick),
}
"""Stages that need no broker."""
DEFAULT_OUT = REPO_ROOT / "bench-results"
JSON_SCHEMA_VERSION = 1

console = Console(stderr=True)


def _failed(exc: BaseException) -> Result:
    """A stage that crashed reports why; the other stages still run."""
    return {"status": "failed", "reason": f"{exc!r}\n{traceback.format_exc(limit=5)}"}


def _announce(name: str, started: float) -> None:
    console.print(f"[bold]bench[/bold] {name} … (t+{time.monotonic() - started:.0f} s)", highlight=False)


StageFn = Callable[[str], Awaitable[Result]]


def _broker_stages(plan: Plan, broker: BrokerInfo, work_dir: Path, source: TickSource) -> dict[str, StageFn]:
    """Each broker stage as a function of its own namespace (so stages never see each other's topics)."""
    boot, parts = broker.bootstrap, plan.partitions
    market = source if source.order is not None else TickSource.market_mix()  # the stage is the market mix
    return {
        "broker_limit": lambda ns: run_broker_limit(boot, ns, source, plan.broker_messages, plan.runs, parts),
        "ingest": lambda ns: run_ingest_stage(
            boot, ns, work_dir, plan.runs, plan.ingest_window_s, plan.ingest_warmup_s, parts
        ),
        "processors": lambda ns: run_processors_stage(
            boot,
            ns,
            work_dir,
            source,
            drain_ticks=plan.drain_ticks,
            drain_runs=plan.drain_runs,
            loads=plan.latency_loads,
            duration_s=plan.latency_duration_s,
            latency_runs=plan.latency_runs,
            partitions=parts,
        ),
        "market": lambda ns: run_market_stage(boot, ns, work_dir, market, ladder_plan(plan), parts, broker.pid),
        "websocket": lambda ns: run_websocket_stage(boot, ns, work_dir, source, plan.latency_duration_s, parts),
        "recovery": lambda ns: run_recovery(boot, ns, work_dir, source, plan.recovery_ticks, plan.recovery_runs, parts),
        "replay": lambda ns: run_replay_stage(boot, ns, plan.runs),
    }


def ladder_plan(plan: Plan) -> LadderPlan:
    return LadderPlan(
        start=plan.market_start,
        cap=plan.market_rate_cap,
        floor=plan.market_floor,
        step_s=plan.market_step_s,
        catch_up_s=plan.market_catch_up_s,
    )


def tick_source(mix: str) -> TickSource:
    """The broker stages' ticks: the simulator's whole market, or BTC and ETH (``Plan.mix``)."""
    return TickSource.market_mix() if mix == "market" else TickSource.build()


async def _run_broker_stages(
    plan: Plan, broker: BrokerInfo, work_dir: Path, namespace: str, wanted: Sequence[str], started: float
) -> dict[str, Result]:
    source = tick_source(plan.mix)
    # This process produces and stamps ticks and collects alerts: a 70-130 ms full collection of its
    # heap (the whole market's instruments) would show up as pipeline latency (plumbing.gc_tuning).
    gc_tuning.tune()
    gc_tuning.freeze_startup_objects()
    results: dict[str, Result] = {}
    try:
        for name, stage in _broker_stages(plan, broker, work_dir, source).items():
            if name in wanted:
                _announce(name, started)
                stage_started, meter = time.monotonic(), CpuMeter([broker.pid] if broker.pid else [])
                try:
                    results[name] = await stage(f"{namespace}-{name}")
                except Exception as exc:  # noqa: BLE001 - one failed stage must not lose the others' figures
                    results[name] = _failed(exc)
                results[name] |= {"elapsed_s": time.monotonic() - stage_started, "cpu": meter.result()}
    finally:
        if not broker.local:
            await _delete_namespace(broker.bootstrap, namespace)
    return results


async def _delete_namespace(bootstrap: str, namespace: str) -> None:
    """On an external cluster, remove the run's topics (changelogs reach gigabytes).

    A local broker's data directory is deleted with the run anyway.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(f"{namespace}-")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def run_bench(plan: Plan, out_dir: Path = DEFAULT_OUT, stages: Sequence[str] = STAGES) -> tuple[Result, list[Path]]:
    """Measure ``stages``, write ``bench-<id>.json``/``.md`` (and ``latest.*``) under ``out_dir``."""
    started, started_at = time.monotonic(), datetime.now(UTC)
    run_id = started_at.strftime("%Y%m%dT%H%M%SZ")
    namespace = f"bench-{run_id}-{uuid.uuid4().hex[:6]}"
    results: dict[str, Result] = {}
    kafka: str | None = None
    background = busy_cpus()
    for name, local_stage in LOCAL_STAGES.items():
        if name in stages:
            _announce(name, started)
            stage_started, meter = time.monotonic(), CpuMeter()
            try:
                results[name] = local_stage(plan)
            except Exception as exc:  # noqa: BLE001 - as above
                results[name] = _failed(exc)
            results[name] |= {"elapsed_s": time.monotonic() - stage_started, "cpu": meter.result()}
    broker_wanted = [s for s in stages if s not in LOCAL_STAGES]
    if broker_wanted:
        root = ram_disk_root()
        with (
            tempfile.TemporaryDirectory(prefix="arbstream-bench-", dir=root) as tmp,
            bench_broker(Path(tmp) / "kafka") as broker,
        ):
            kafka = broker.kafka_version
            results |= asyncio.run(_run_broker_stages(plan, broker, Path(tmp), namespace, broker_wanted, started))
    summary = {
        "schema_version": JSON_SCHEMA_VERSION,
        "mode": "quick" if plan.quick else "full",
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": time.monotonic() - started,
        "namespace": namespace,
        "machine": describe(kafka, background),
        "plan": asdict(plan),
        "stages": {name: results[name] for name in STAGES if name in results},
        "ratios_to_broker_limit": report.ratios(results),
    }
    return summary, _write(summary, out_dir, run_id)


def _write(summary: Result, out_dir: Path, run_id: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"bench-{run_id}.json", out_dir / f"bench-{run_id}.md"
    # NaN marks a figure that could not be computed; JSON has no NaN, so it is written as null.
    json_path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    md_path.write_text(report.markdown(summary))
    for path in (json_path, md_path):
        shutil.copyfile(path, out_dir / f"latest{path.suffix}")
    return [json_path, md_path]


def run_cli(
    quick: bool,
    out: Path | None,
    stages: Sequence[str] | None = None,
    mix: str = "market",
    partitions: int | None = None,
) -> int:
    """``arbstream bench``: always exit 0 once results are written — a benchmark reports, it does not judge."""
    # The bench polls topics that services create moments later; aiokafka logs each miss at ERROR.
    logging.getLogger("aiokafka.cluster").setLevel(logging.CRITICAL)
    # Per-request and per-subscription INFO lines of the in-process simulator and clients drown the progress.
    for name in ("aiohttp.access", "aiokafka"):
        logging.getLogger(name).setLevel(logging.WARNING)
    stages = stages or STAGES
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ConfigError(f"unknown bench stage(s) {sorted(unknown)}; stages: {', '.join(STAGES)}")
    plan = Plan.make(quick, mix)
    plan = plan if partitions is None else dataclasses.replace(plan, partitions=partitions)
    summary, paths = run_bench(plan, out or DEFAULT_OUT, stages)
    report.print_tables(summary, Console())
    for path in paths:
        console.print(f"wrote {path}", highlight=False)
    return 0
