"""arbstream.bench helpers: a JVM's compiling time (its threads in /proc), where the local broker works."""

from __future__ import annotations

import os
from pathlib import Path

from arbstream.bench.machine import jit_cpu_s
from plumbing.broker import ram_disk_root

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _thread(proc: Path, pid: int, tid: int, comm: str, utime: int, stime: int) -> None:
    task = proc / str(pid) / "task" / str(tid)
    task.mkdir(parents=True)
    # /proc/<pid>/task/<tid>/stat: "tid (comm) state ppid ...", utime and stime are fields 14 and 15.
    rest = ["S", "1", *["0"] * 9, str(utime), str(stime), *["0"] * 30]
    (task / "stat").write_text(f"{tid} ({comm}) {' '.join(rest)}\n")


def test_only_the_compiler_threads_count(tmp_path: Path) -> None:
    _thread(tmp_path, 42, 1, "java", 500, 20)
    _thread(tmp_path, 42, 2, "C2 CompilerThre", 300, 10)
    _thread(tmp_path, 42, 3, "C1 CompilerThre", 40, 5)
    _thread(tmp_path, 42, 4, "data-plane-kafk", 900, 700)
    _thread(tmp_path, 42, 5, "odd (name) C2 C", 77, 0)  # a thread name may hold parentheses
    assert jit_cpu_s(42, tmp_path) == (300 + 10 + 40 + 5) / CLOCK_TICKS


def test_a_process_without_compiler_threads_or_gone_spent_nothing_compiling(tmp_path: Path) -> None:
    assert jit_cpu_s(os.getpid()) == 0.0
    assert jit_cpu_s(42, tmp_path) == 0.0


def test_the_broker_works_in_ram_when_there_is_room(tmp_path: Path) -> None:
    assert ram_disk_root(tmp_path, min_free=0) == tmp_path
    assert ram_disk_root(tmp_path, min_free=1 << 60) is None  # not enough room: the system's temporary directory
    assert ram_disk_root(tmp_path / "absent", min_free=0) is None
