"""Run an ``arbstream`` service under pyinstrument: ``python -m arbstream.bench.profiled OUT SUBCOMMAND ...``.

The bench starts workers this way when ``ARBSTREAM_BENCH_PROFILE`` names a directory (see
:class:`arbstream.bench.procs.Service`). pyinstrument samples the main thread's stack every
millisecond (the event loop, where Faust's agents and the engine run; Faust's consumer thread is
not sampled), so the profiled process runs at nearly full speed. When the service exits (the bench
stops it with SIGTERM, which Faust turns into a clean shutdown) the profile is written as
``OUT.pyisession`` (the raw samples), ``OUT.flat.txt`` (functions by total time, callees
included), ``OUT.self.txt`` (by own time) and ``OUT.txt`` (call tree).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer

INTERVAL_S = 0.001


def write_profile(profiler: Profiler, out: Path) -> None:
    """The raw session first: rendering takes seconds, and the bench SIGKILLs a worker that has not
    exited 20 s after SIGTERM."""
    session = profiler.last_session
    if session is None:
        return
    session.save(str(out.with_suffix(".pyisession")))  # `pyinstrument --load` renders it any other way
    total = ConsoleRenderer(flat=True, flat_time="total", show_all=True)
    out.with_suffix(".flat.txt").write_text(profiler.output(total))
    own = ConsoleRenderer(flat=True, flat_time="self", show_all=True)
    out.with_suffix(".self.txt").write_text(profiler.output(own))
    out.with_suffix(".txt").write_text(profiler.output(ConsoleRenderer(show_all=False)))


def main(argv: list[str]) -> int:
    from arbstream.cli import main as cli_main

    out, args = Path(argv[0]), argv[1:]
    profiler = Profiler(interval=INTERVAL_S, async_mode="disabled")
    profiler.start()
    try:
        return cli_main(args)
    finally:
        profiler.stop()
        write_profile(profiler, out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
