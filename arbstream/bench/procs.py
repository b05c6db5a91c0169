"""The services under test, run as real ``arbstream <subcommand>`` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from plumbing.broker import die_with_parent
from plumbing.settings import REPO_ROOT

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def service_env(bootstrap: str, namespace: str, **extra: str) -> dict[str, str]:
    """The caller's environment, pointed at the bench broker and namespace.

    The bare ``KAFKA_BOOTSTRAP`` is dropped so it cannot win over the bench's own broker.
    """
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP"}
    env.update({"ARBSTREAM_KAFKA_BOOTSTRAP": bootstrap, "ARBSTREAM_NAMESPACE": namespace, **extra})
    return env


@dataclass
class Service:
    """One ``arbstream`` subprocess with its log file."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    module: str = "arbstream.cli"
    """What ``python -m`` runs (a bench stage may serve from its own module)."""
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def command(self) -> list[str]:
        """``python -m <module> <args>``; with ``ARBSTREAM_BENCH_PROFILE=<dir>``, workers run profiled
        (:mod:`arbstream.bench.profiled`), each profile in that directory named after its log."""
        profile_dir = os.environ.get("ARBSTREAM_BENCH_PROFILE", "")
        if self.args[:1] == ["worker"] and profile_dir:
            Path(profile_dir).mkdir(parents=True, exist_ok=True)
            out = Path(profile_dir).resolve() / f"{self.log_path.stem}.profile"
            return [sys.executable, "-m", "arbstream.bench.profiled", str(out), *self.args]
        return [sys.executable, "-m", self.module, *self.args]

    def start(self) -> Service:
        with self.log_path.open("ab") as sink:
            self.proc = subprocess.Popen(
                self.command(),
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO_ROOT,
                # A crashed or interrupted bench must not leave services behind.
                preexec_fn=die_with_parent,
            )
        self._attach_sampler()
        return self

    def _attach_sampler(self) -> None:
        """With ``ARBSTREAM_BENCH_PYSPY=<dir>``, py-spy samples every thread of each worker (Faust's
        consumer thread too, which the pyinstrument profile cannot see), ingest and API until it
        exits, and writes ``<dir>/<log stem>.pyspy.txt`` (collapsed stacks: one line per stack and
        its count)."""
        out_dir = os.environ.get("ARBSTREAM_BENCH_PYSPY", "")
        if self.args[:1] not in (["worker"], ["ingest"], ["api"]) or not out_dir or self.proc is None:
            return
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        out = Path(out_dir).resolve() / f"{self.log_path.stem}.pyspy.txt"
        sampler = [str(Path(sys.executable).parent / "py-spy"), "record", "--threads", "--nonblocking", "-r", "50"]
        subprocess.Popen(
            [*sampler, "-f", "raw", "-o", str(out), "-p", str(self.proc.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM and wait; SIGKILL if it does not exit in time."""
        if self.proc is None:
            return
        self.signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None:
            self.signal(signal.SIGKILL)
            self.proc.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (0 when it is gone)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        # After the command name: state is field 3, utime 14 and stime 15 (1-based) of the full line.
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
