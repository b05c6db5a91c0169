"""What the figures were measured on: they mean little without the machine next to them."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from arbstream.bench.common import Result

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LIBRARIES = ("aiokafka", "msgspec", "aiohttp", "websockets")


def _cpuinfo_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _java() -> str | None:
    java = shutil.which("java")
    if java is None:
        return None
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stderr or done.stdout).splitlines()
    return lines[0].strip() if lines else None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def pid_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (0 when it is gone)."""
    try:
        return _cpu_ticks_of(Path(f"/proc/{pid}/stat").read_text()) / _CLOCK_TICKS
    except (OSError, IndexError):
        return 0.0


def _cpu_ticks_of(stat: str) -> int:
    """User + system clock ticks from a ``/proc/<pid>[/task/<tid>]/stat`` line (the name, in
    parentheses, may itself hold spaces and parentheses: the fields start after the last one)."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


JIT_THREAD_PREFIXES = ("C1 CompilerThre", "C2 CompilerThre")
"""HotSpot's compiler threads (thread names are cut to 15 characters in ``/proc``)."""


def jit_cpu_s(pid: int, proc: Path = Path("/proc")) -> float:
    """CPU seconds a JVM spent compiling (its C1/C2 compiler threads; 0 when it is gone).

    A broker started for the bench compiles its hot paths during the first minutes: a third of
    its CPU in a quick market stage went to C2 (2026-12-07), which a long-running broker does not
    spend per tick, so sizing figures leave it out and report it beside them."""
    total = 0
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        if stat[stat.index("(") + 1 :].startswith(JIT_THREAD_PREFIXES):
            total += _cpu_ticks_of(stat)
    return total / _CLOCK_TICKS


def _own_cpu_s(extra_pids: Sequence[int]) -> float:
    """CPU seconds of the bench, its reaped children (stopped services) and still-running ``extra_pids``."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime
    return reaped + sum(pid_cpu_s(pid) for pid in extra_pids)


class CpuMeter:
    """CPUs the rest of the machine used while a stage ran: machine busy time minus the bench's own.

    On a shared machine a neighbour's work lowers every figure; this says by how much it competed.
    """

    def __init__(self, extra_pids: Sequence[int] = ()) -> None:
        self.extra_pids = list(extra_pids)
        self._started = time.monotonic()
        self._busy = _cpu_ticks()[0] / _CLOCK_TICKS
        self._own = _own_cpu_s(self.extra_pids)

    def result(self) -> Result:
        wall = max(1e-9, time.monotonic() - self._started)
        busy = _cpu_ticks()[0] / _CLOCK_TICKS - self._busy
        own = _own_cpu_s(self.extra_pids) - self._own
        return {"bench_cpus": round(own / wall, 2), "other_processes_cpus": round(max(0.0, busy - own) / wall, 2)}


def busy_cpus(seconds: float = 1.0) -> float | None:
    """CPUs' worth of work the whole machine is doing right now (other users' processes included).

    Sampled before the bench starts: on a shared machine, figures measured next to
    a busy neighbour are lower, and the reader should know.
    """
    try:
        busy0, total0 = _cpu_ticks()
        time.sleep(seconds)
        busy1, total1 = _cpu_ticks()
    except (OSError, IndexError, ValueError):
        return None
    cpus = os.cpu_count() or 1
    return round((busy1 - busy0) / max(1, total1 - total0) * cpus, 2)


def describe(kafka: str | None, background_busy_cpus: float | None) -> Result:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": _cpuinfo_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kafka": kafka,
        "java": _java() if kafka and "local" in kafka else None,
        "libraries": {name: _version(name) for name in LIBRARIES},
        "load_average_1m": round(os.getloadavg()[0], 2),
        "busy_cpus_before_start": background_busy_cpus,
    }
