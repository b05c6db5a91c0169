"""Test helpers: run arbstream subcommands as real processes, read topics back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from arbstream.bench.dashboard_stage import missing_prerequisite

if TYPE_CHECKING:
    import faust

REPO_ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = REPO_ROOT / "dashboard"
CHROMIUM = Path(os.environ.get("ARBSTREAM_E2E_CHROMIUM", "/usr/bin/chromium"))


def browser_missing() -> str | None:
    """What the Chromium tests lack (Debian's chromium, playwright-core, the built dashboard), or None."""
    return missing_prerequisite(CHROMIUM)


def require_browser() -> None:
    """Skip a browser test without its prerequisites; under ``make test`` (ARBSTREAM_REQUIRE_E2E, which
    installs them) a missing one is a failure, never a skip counted as a pass."""
    missing = browser_missing()
    if missing is not None:
        if os.environ.get("ARBSTREAM_REQUIRE_E2E"):
            pytest.fail(missing)
        pytest.skip(missing)


def service_env(bootstrap: str, namespace: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP"}}
    # A service under test never reads or writes the checkout's listing cache (.cache/instruments):
    # a restricted simulated market cached there broke later tests and a developer's `make run`.
    cache = Path(tempfile.gettempdir()) / "arbstream-test-listings" / namespace
    env.update(
        {
            "ARBSTREAM_KAFKA_BOOTSTRAP": bootstrap,
            "ARBSTREAM_NAMESPACE": namespace,
            "ARBSTREAM_INSTRUMENTS_CACHE_DIR": str(cache),
            # Tests send exact sequences, often before a worker has joined: a worker that jumps over
            # what is older than the threshold (the product's default) would skip them. The jump
            # has tests of its own (test_worker_backlog.py runs it at the default).
            "ARBSTREAM_WORKER_SKIP_BEHIND_MS": "0",
            **extra,
        }
    )
    return env


@contextmanager
def running(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``arbstream <args>`` for the duration of the block; SIGTERM, then kill, on exit."""
    with log_path.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "arbstream.cli", *args],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def stacks_of(proc: subprocess.Popen[bytes]) -> str:
    """Every thread's Python stack of a running service (py-spy, a dev dependency), for a failure
    message: a worker that stalls says where."""
    if proc.poll() is not None:
        return f"(exited {proc.returncode})"
    try:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "py-spy"), "dump", "--pid", str(proc.pid)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(no stacks: {exc!r})"
    return done.stdout or done.stderr


async def consume_until(
    bootstrap: str,
    topics: list[str],
    done: object,
    timeout_s: float = 60.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topics`` from the beginning until ``done(records)`` is true or the timeout passes."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )
    records: list[ConsumerRecord[bytes, bytes]] = []
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
            if callable(done) and done(records):
                break
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return records


class TopicWatcher:
    """Consumes topics in the background from the beginning; tests wait on conditions over what arrived."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.records: list[ConsumerRecord[bytes, bytes]] = []
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            metadata_max_age_ms=1000,
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicWatcher:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for partition_records in batch.values():
                self.records.extend(partition_records)

    async def wait_for(self, condition: object, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if callable(condition) and condition(self.records):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what} ({len(self.records)} records seen)")


async def wait_http(url: str, timeout_s: float = 30) -> None:
    """Until ``url`` answers 200 (a service that just started), or AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def raw_faust_app(group: str, bootstrap: str, datadir: Path, **settings: Any) -> faust.App:
    """An in-process Faust app on the real broker with raw bytes, a memory store and one partition."""
    import faust  # here: most tests never start Faust

    return faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        store="memory://",
        datadir=str(datadir),
        topic_partitions=1,
        **settings,
    )
