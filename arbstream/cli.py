"""The ``arbstream`` console script: one entry point, one subcommand per service.

Each subcommand reads its own settings object from the environment here, at the
entry point, and passes it down.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from plumbing.errors import ArbstreamError

Handler = Callable[[argparse.Namespace], int]


def _cmd_broker(args: argparse.Namespace) -> int:
    from arbstream.services import run_broker_foreground
    from plumbing.broker import ensure_jars
    from plumbing.settings import BrokerSettings

    settings = BrokerSettings()
    if args.fetch_only:
        libs = ensure_jars(settings)
        size_mb = sum(p.stat().st_size for p in libs.glob("*.jar")) / 2**20
        print(f"Kafka {settings.kafka_version} jars in {libs}: {len(list(libs.glob('*.jar')))} jars, {size_mb:.1f} MiB")
        return 0
    return run_broker_foreground(settings)


def _cmd_up(args: argparse.Namespace) -> int:
    from arbstream.services import run_up
    from plumbing.settings import UpSettings

    settings = UpSettings()
    if args.demo:
        settings = settings.model_copy(update={"demo": True})
    return run_up(settings)


def _cmd_worker(args: argparse.Namespace) -> int:
    from processors.faust_app import run_worker
    from processors.settings import WorkerSettings

    return run_worker(WorkerSettings())


def _cmd_api(args: argparse.Namespace) -> int:
    from api.main import run_api
    from api.settings import ApiSettings

    return run_api(ApiSettings())


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.main import run_ingest
    from ingest.settings import IngestSettings

    return run_ingest(IngestSettings())


def _cmd_record(args: argparse.Namespace) -> int:
    from ingest.main import run_ingest
    from ingest.settings import IngestSettings

    settings = IngestSettings(record_dir=args.out)
    return run_ingest(settings, publish=args.publish)


def _cmd_replay(args: argparse.Namespace) -> int:
    from ingest.replay import run_replay
    from ingest.replay_topics import OffsetRange
    from ingest.settings import IngestSettings

    offsets = OffsetRange(args.from_offset, args.to_offset)
    return run_replay(IngestSettings(), args.sources, args.speed, args.start, args.end, args.topics, offsets)


def _cmd_backtest(args: argparse.Namespace) -> int:
    from arbstream.backtest import run_cli
    from ingest.replay_topics import OffsetRange

    return run_cli(
        args.sources,
        args.sample,
        args.topics,
        args.set or [],
        args.compare or [],
        args.out,
        args.notional,
        args.start,
        args.end,
        [s for s in (args.symbols or "").split(",") if s.strip()],
        [v for v in (args.venues or "").split(",") if v.strip()],
        OffsetRange(args.from_offset, args.to_offset),
    )


def _offset_arguments(cmd: argparse.ArgumentParser) -> None:
    """With --topics: a range in offsets instead of times (one bound for every tick partition)."""
    cmd.add_argument("--from-offset", type=int, help="with --topics: first offset of every tick partition")
    cmd.add_argument("--to-offset", type=int, help="with --topics: stop before this offset of every tick partition")


def _cmd_simulate(args: argparse.Namespace) -> int:
    from ingest.settings import SimulatorSettings
    from ingest.simulator.main import run_simulator

    return run_simulator(SimulatorSettings())


def _cmd_normalize(args: argparse.Namespace) -> int:
    from ingest.settings import IngestSettings
    from ingest.tools import run_normalize

    return run_normalize(args.venue, args.file, IngestSettings())


def _cmd_instruments(args: argparse.Namespace) -> int:
    from ingest.instruments import dump
    from ingest.main import tracked_instruments
    from ingest.settings import IngestSettings
    from ingest.tools import run_refresh

    settings = IngestSettings()
    if args.action == "refresh":
        return run_refresh(settings)
    print(dump([i for group in tracked_instruments(settings).values() for i in group]))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from arbstream.bench.runner import run_cli

    stages = [name.strip() for name in args.stages.split(",")] if args.stages else None
    return run_cli(quick=args.quick, out=args.out, stages=stages, mix=args.mix, partitions=args.partitions)


def _cmd_soak(args: argparse.Namespace) -> int:
    from arbstream.soak import SoakSettings
    from arbstream.soak_run import run_soak

    settings = SoakSettings()
    if args.fault_every is not None:
        settings = settings.model_copy(update={"soak_fault_every_s": args.fault_every})
    return run_soak(settings, args.minutes, args.out)


def _cmd_schemas(args: argparse.Namespace) -> int:
    from schemas.export import export

    for path in export():
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arbstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, tuple[str, Handler]] = {
        "broker": ("run the local Kafka broker in the foreground", _cmd_broker),
        "up": ("start broker (unless KAFKA_BOOTSTRAP is set) and every service", _cmd_up),
        "ingest": ("connect to the venues and publish quotes and funding", _cmd_ingest),
        "worker": ("run a Faust processor worker", _cmd_worker),
        "api": ("serve the REST/WebSocket API and dashboard", _cmd_api),
        "simulate": ("serve the exchange simulator (every implemented venue's protocol)", _cmd_simulate),
        "record": ("record raw venue frames to rotating .jsonl.gz files", _cmd_record),
        "replay": ("publish recorded frames' events with their recorded times (backtests)", _cmd_replay),
        "backtest": ("replay recordings through the processors and write a report", _cmd_backtest),
        "normalize": ("print normalised JSON lines for raw frames (offline)", _cmd_normalize),
        "instruments": ("list tracked instruments, or refresh the venues' listings", _cmd_instruments),
        "schemas": ("write the JSON Schema of every topic to schemas/json/", _cmd_schemas),
        "bench": ("measure every stage's throughput/latency next to the broker's limit", _cmd_bench),
        "soak": ("the demo stack under periodic injected faults: memory, recoveries, invariants", _cmd_soak),
    }
    for name, (help_text, handler) in commands.items():
        cmd = sub.add_parser(name, help=help_text)
        cmd.set_defaults(handler=handler)
        if name == "broker":
            cmd.add_argument("--fetch-only", action="store_true", help="only download the jars")
        if name == "up":
            cmd.add_argument("--demo", action="store_true", help="feed from the exchange simulator")
        if name == "record":
            cmd.add_argument("--out", type=Path, required=True, help="directory for the recordings")
            cmd.add_argument("--publish", action="store_true", help="also publish to Kafka like ingest")
        if name == "replay":
            cmd.add_argument("sources", nargs="*", type=Path, help="recording files or directories")
            cmd.add_argument("--topics", metavar="NAMESPACE", help="replay this namespace's tick topics instead")
            cmd.add_argument("--speed", default="max", help="max (as fast as possible), 1x (real time), 10x ...")
            cmd.add_argument("--from", dest="start", help="first receipt time replayed (ISO-8601 UTC or ns)")
            cmd.add_argument("--to", dest="end", help="replay stops before this receipt time (ISO-8601 UTC or ns)")
            _offset_arguments(cmd)
        if name == "backtest":
            cmd.add_argument("sources", nargs="*", type=Path, help="recording files or directories")
            cmd.add_argument("--sample", action="store_true", help="the bundled sample recording")
            cmd.add_argument("--topics", metavar="NAMESPACE", help="replay the ticks.* topics of this namespace")
            cmd.add_argument("--set", action="append", metavar="KEY=VALUE", help="a worker setting (repeatable)")
            cmd.add_argument("--compare", action="append", metavar="KEY=VALUE", help="settings of a second run")
            cmd.add_argument("--out", type=Path, help="report directory (default: backtest-results/<UTC time>)")
            cmd.add_argument("--notional", default="10000", help="quote notional per alert for the naive PnL")
            cmd.add_argument("--from", dest="start", help="first receipt time (ISO-8601 UTC or ns)")
            cmd.add_argument("--to", dest="end", help="stop before this receipt time (ISO-8601 UTC or ns)")
            _offset_arguments(cmd)
            cmd.add_argument("--symbols", help="comma list of bases (default: all recorded)")
            cmd.add_argument("--venues", help="comma list of venues (default: all recorded)")
        if name == "normalize":
            cmd.add_argument("--venue", required=True, help="venue whose protocol the frames speak")
            cmd.add_argument("file", nargs="?", help="frames, one per line (default: stdin)")
        if name == "instruments":
            cmd.add_argument("action", choices=["list", "refresh"], nargs="?", default="list")
        if name == "bench":
            cmd.add_argument("--quick", action="store_true", help="fewer, shorter runs (a few minutes)")
            cmd.add_argument("--out", type=Path, help="directory for the results (default: bench-results/)")
            cmd.add_argument("--stages", help="comma list of stages to run (default: all)")
            cmd.add_argument(
                "--mix",
                choices=["market", "bench"],
                default="market",
                help="ticks of the broker stages: the simulator's whole market (default) or BTC and ETH only",
            )
            cmd.add_argument(
                "--partitions", type=int, help="partitions per topic of the broker stages (default: the plan's)"
            )
        if name == "soak":
            cmd.add_argument("--minutes", type=float, default=60.0, help="how long faults are injected")
            cmd.add_argument("--fault-every", type=float, help="seconds between faults (ARBSTREAM_SOAK_FAULT_EVERY_S)")
            cmd.add_argument("--out", type=Path, help="report directory (default: soak-results/<UTC time>)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler: Handler = args.handler
    try:
        return handler(args)
    except ArbstreamError as exc:
        print(f"arbstream {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
