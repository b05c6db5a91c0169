"""Process supervision for ``arbstream broker`` and ``arbstream up``."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

from plumbing.broker import LocalKafka, die_with_parent, resident_memory_mb
from plumbing.errors import FatalError
from plumbing.settings import DEFAULT_CACHE_DIR, BrokerSettings, UpSettings

log = logging.getLogger(__name__)


class _StopFlag:
    """Set by SIGINT/SIGTERM so the foreground loops shut down in order."""

    def __init__(self) -> None:
        self.event = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        self.event.set()


def run_broker_foreground(settings: BrokerSettings) -> int:
    """Start the local broker, report it, and stop it on Ctrl-C / SIGTERM."""
    stop = _StopFlag()
    broker = LocalKafka(settings)
    broker.start()
    assert broker.process is not None
    print(
        f"Kafka {settings.kafka_version} ready at {broker.bootstrap} "
        f"(started in {broker.startup_seconds:.1f}s, pid {broker.process.pid}, "
        f"RSS {resident_memory_mb(broker.process.pid) or 0:.0f} MiB, data {broker.data_dir}). Ctrl-C stops it.",
        flush=True,
    )
    while not stop.event.wait(0.5):
        if not broker.is_running():
            print(f"broker exited unexpectedly; see {broker.log_file}:\n{broker.log_tail()}", file=sys.stderr)
            return 1
    code = broker.stop()
    print(f"broker stopped (exit code {code})", flush=True)
    return 0


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]


def _spawn(name: str, args: list[str], env: dict[str, str]) -> _Child:
    cmd = [sys.executable, "-m", "arbstream.cli", *args]
    log.info("starting %s: %s", name, " ".join(args))
    return _Child(name, subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent))


def _terminate(children: list[_Child], timeout_s: float = 15.0) -> None:
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    for child in reversed(children):
        try:
            child.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s ignored SIGTERM; killing", child.name)
            child.process.kill()
            child.process.wait()


DEMO_NAMESPACE = "demo"
UP_WORKER_INSTANCE_ID = "{hostname}-worker"
"""The one worker of ``arbstream up``; its group (and so the id's scope) is per namespace."""


def demo_settings(settings: UpSettings) -> UpSettings:
    """The demo's own topic namespace and broker data directory (issue 13, item 7).

    Simulated quotes must never reach a live run: ``make demo`` then ``make run``
    (same local broker, same topics) used to show the simulator's prices as live.
    The demo writes under namespace ``demo`` (``<ns>-demo`` if one is set) and,
    with the local broker, keeps its data in ``<kafka data dir>-demo``.
    """
    namespace = f"{settings.namespace}-{DEMO_NAMESPACE}" if settings.namespace else DEMO_NAMESPACE
    data_dir = settings.kafka_data_dir.with_name(settings.kafka_data_dir.name + "-demo")
    return settings.model_copy(update={"namespace": namespace, "kafka_data_dir": data_dir})


def child_env(settings: UpSettings, bootstrap: str, environ: dict[str, str]) -> dict[str, str]:
    """The environment of every child of ``arbstream up`` (pass :func:`demo_settings` for a demo)."""
    env = {**environ, "ARBSTREAM_KAFKA_BOOTSTRAP": bootstrap, "ARBSTREAM_NAMESPACE": settings.namespace}
    # Static group membership: the worker this supervisor restarts after a crash takes its partitions
    # back at once, instead of after the dead member's session timeout (30 s; issue 12's recovery).
    env.setdefault("ARBSTREAM_WORKER_INSTANCE_ID", UP_WORKER_INSTANCE_ID)
    if settings.demo:
        env["ARBSTREAM_SIMULATOR_URL"] = f"http://127.0.0.1:{settings.simulator_port}"
        env["ARBSTREAM_SIMULATOR_PORT"] = str(settings.simulator_port)
        env["ARBSTREAM_DEMO"] = "true"
        # Local state too: a live worker must not restore simulated table state, and a live ingest
        # without network must not fall back to the simulator's listings as its "cached" ones.
        env.setdefault("ARBSTREAM_WORKER_DATA_DIR", str(DEFAULT_CACHE_DIR / "faust-demo"))
        env.setdefault("ARBSTREAM_INSTRUMENTS_CACHE_DIR", str(DEFAULT_CACHE_DIR / "instruments-demo"))
    return env


def _wait_for_http(url: str, child: _Child, timeout_s: float = 60.0) -> None:
    """Until ``url`` answers 200; fails early if the child process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise FatalError(f"{child.name} exited with code {child.process.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise FatalError(f"{child.name} did not serve {url} within {timeout_s:.0f} s (see its log above)")


RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
MAX_RESTARTS = 5
RESTART_WINDOW_S = 300.0
"""A service that dies is restarted with backoff (each death logged with its exit code); one that
dies MAX_RESTARTS times within RESTART_WINDOW_S stops the whole stack, loudly."""


def _supervise(children: list[_Child], commands: dict[str, list[str]], env: dict[str, str], stop: _StopFlag) -> int:
    """Until stopped: restart a child that died (with backoff); 1 when one keeps dying."""
    restarts: dict[str, list[float]] = {}
    while not stop.event.wait(0.5):
        for index, child in enumerate(children):
            if child.process.poll() is None:
                continue
            recent = [t for t in restarts.get(child.name, []) if time.monotonic() - t < RESTART_WINDOW_S]
            code = child.process.returncode
            if len(recent) >= MAX_RESTARTS:
                log.error("%s exited with code %s, %d times in %.0f s; stopping everything", child.name, code,
                          len(recent) + 1, RESTART_WINDOW_S)  # fmt: skip
                return 1
            delay = RESTART_BACKOFF_S[min(len(recent), len(RESTART_BACKOFF_S) - 1)]
            log.error("%s exited with code %s; restarting it in %.0f s (restart %d of %d allowed in %.0f s)",
                      child.name, code, delay, len(recent) + 1, MAX_RESTARTS, RESTART_WINDOW_S)  # fmt: skip
            if stop.event.wait(delay):
                return 0
            restarts[child.name] = [*recent, time.monotonic()]
            children[index] = _spawn(child.name, commands[child.name], env)
    return 0


def run_up(settings: UpSettings) -> int:
    """Broker (unless external) + ingest (+ simulator in demo) + worker + api, until Ctrl-C."""
    stop = _StopFlag()
    if settings.demo:
        settings = demo_settings(settings)
    broker: LocalKafka | None = None
    bootstrap = settings.kafka_bootstrap
    if bootstrap is None:
        broker = LocalKafka(settings)
        broker.start()
        bootstrap = broker.bootstrap
    env = child_env(settings, bootstrap, dict(os.environ))
    plan: list[tuple[str, list[str]]] = []
    if settings.demo:
        plan.append(("simulator", ["simulate"]))
    plan += [("ingest", ["ingest"]), ("worker", ["worker"]), ("api", ["api"])]
    commands = dict(plan)
    children: list[_Child] = []
    exit_code = 1
    try:
        for name, args in plan:
            children.append(_spawn(name, args, env))
            if name == "simulator":  # ingest fetches its listings from it at start: let it serve first
                _wait_for_http(f"{env['ARBSTREAM_SIMULATOR_URL']}/control/status", children[-1])
        demo_note = f" (DEMO: simulated venues, namespace {settings.namespace!r})" if settings.demo else ""
        print(
            f"\narbstream is up{demo_note}: "
            f"dashboard http://{settings.api_host}:{settings.api_port}  broker {bootstrap}  Ctrl-C stops.\n",
            flush=True,
        )
        exit_code = _supervise(children, commands, env, stop)
    finally:
        _terminate(children)
        if broker is not None:
            broker.stop()
    return exit_code
