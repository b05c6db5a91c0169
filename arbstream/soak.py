"""``arbstream soak --minutes N``: the demo stack under periodic injected faults.

The stack (own broker data directory, namespace ``soak``, free ports) runs simulator, ingest,
worker and API. Every ``fault_every_s`` one fault is injected, round robin over
:data:`arbstream.soak_report.FAULT_KINDS`; the soak then waits until data flows again (the
venue streams again, the new worker processes, ingest delivers and the worker processes after
the broker restart) and until ``/health`` is back at its pre-fault baseline. Memory (RSS) of
every process is sampled all along. Broken invariants: a fault not recovered or ``/health`` not
back within their bounds, an alert event id seen twice, a process that died on its own.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import msgspec
from aiokafka import AIOKafkaConsumer
from pydantic import Field

from arbstream.services import child_env
from plumbing.broker import LocalKafka, die_with_parent, free_port, resident_memory_mb
from plumbing.settings import DEFAULT_CACHE_DIR, UpSettings
from schemas.topics import OPPORTUNITIES, topic_name

SERVICES = ("simulator", "ingest", "worker", "api")
_ARGS = {"simulator": ["simulate"], "ingest": ["ingest"], "worker": ["worker"], "api": ["api"]}


class SoakSettings(UpSettings):
    """``arbstream soak`` (``ARBSTREAM_SOAK_*``); the services read their own settings from the environment."""

    namespace: str = "soak"
    kafka_data_dir: Path = DEFAULT_CACHE_DIR / "kafka-data-soak"
    soak_fault_every_s: float = Field(default=60.0, gt=0, description="one injected fault per this period")
    soak_sample_every_s: float = Field(default=15.0, gt=0, description="RSS of every process this often")
    soak_recovery_bound_s: float = Field(default=90.0, gt=0, description="a fault not recovered by then breaks")
    soak_health_bound_s: float = Field(default=60.0, gt=0, description="/health back at baseline within this")
    soak_stall_s: float = Field(default=5.0, gt=0, description="length of an injected venue stall")
    soak_broker_back_s: float = Field(
        default=300.0,
        gt=0,
        description="a restarted broker not serving by then ends the soak with a breach (whole market: ~1,500 "
        "partitions to load)",
    )
    soak_out_dir: Path = Path("soak-results")


class Stack:
    """The soak's processes: a local broker and the services, each logging to its own file."""

    def __init__(self, settings: SoakSettings, logs: Path) -> None:
        self.settings, self.logs = settings, logs
        self.broker = LocalKafka(settings, port=free_port(), controller_port=free_port())
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics_port, self.api_port, self.sim_port = free_port(), free_port(), free_port()
        self.env: dict[str, str] = {}

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def start_broker(self) -> None:
        assert self.broker.data_dir is not None
        shutil.rmtree(self.broker.data_dir, ignore_errors=True)  # every soak starts from nothing
        self.broker.start()
        settings = self.settings.model_copy(update={"demo": True, "simulator_port": self.sim_port})
        environ = {
            **os.environ,
            "ARBSTREAM_WORKER_DATA_DIR": str(self.logs / "worker-data"),
            "ARBSTREAM_INSTRUMENTS_CACHE_DIR": str(self.logs / "instruments"),
            "ARBSTREAM_METRICS_PORT": str(self.metrics_port),
            "ARBSTREAM_API_PORT": str(self.api_port),
        }
        self.env = child_env(settings, self.broker.bootstrap, environ)

    def spawn(self, name: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as sink:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "arbstream.cli", *_ARGS[name]],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def pids(self) -> dict[str, int]:
        pids = {name: proc.pid for name, proc in self.procs.items() if proc.poll() is None}
        if self.broker.process is not None and self.broker.is_running():
            pids["broker"] = self.broker.process.pid
        return pids

    def rss(self) -> dict[str, float | None]:
        return {name: resident_memory_mb(pid) for name, pid in self.pids().items()}

    def dead(self) -> dict[str, int]:
        return {name: code for name, proc in self.procs.items() if (code := proc.poll()) is not None}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.broker.stop()


class Probes:
    """What the soak reads: ingest's Prometheus counters, the API's /health, worker-stats and alerts."""

    def __init__(self, stack: Stack, http: aiohttp.ClientSession) -> None:
        self.stack, self.http = stack, http
        self.alerts: Counter[str] = Counter()
        self.last_reasons: list[str] = []
        self._alert_offsets: set[tuple[int, int]] = set()
        """Offsets already counted: the follower re-reads from the start after a broker restart."""
        self.processed: dict[str, tuple[int, int]] = {}
        """Worker id -> (started_ts_ns, processed), from the latest worker-stats record."""

    async def ingest(self) -> dict[str, dict[str, float]]:
        """{family: {venue or '': value}} summed over connections (streaming: the minimum)."""
        url = f"http://127.0.0.1:{self.stack.metrics_port}/metrics"
        async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
            text = await response.text()
        return parse_metrics(text)

    async def api_gauges(self) -> dict[str, float]:
        """The API's unlabelled ``/metrics`` values by family (empty while the API does not answer)."""
        url = f"http://127.0.0.1:{self.stack.api_port}/metrics"
        try:
            async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                families = parse_metrics(await response.text(), "arbstream_api_")
        except (aiohttp.ClientError, TimeoutError):
            return {}
        return {family: row[""] for family, row in families.items() if "" in row}

    async def health(self) -> str:
        """``/health``'s status (``unreachable`` when it does not answer); its reasons kept in ``last_reasons``."""
        url = f"http://127.0.0.1:{self.stack.api_port}/health"
        try:
            async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return "unreachable"
        self.last_reasons = [str(reason) for reason in body.get("reasons", [])]
        return str(body.get("status", "?"))

    def processed_since(self, since_ns: int) -> int:
        """Ticks processed by workers that started at or after ``since_ns`` (0: every worker)."""
        return sum(done for started, done in self.processed.values() if started >= since_ns)

    async def follow(self, bootstrap: str, namespace: str) -> None:
        """Alerts (from the beginning: a fresh namespace) and worker stats, until cancelled."""
        stats_topic, alerts_topic = topic_name("worker-stats", namespace), topic_name(OPPORTUNITIES, namespace)
        while True:
            consumer = AIOKafkaConsumer(
                stats_topic, alerts_topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
            )
            try:
                await consumer.start()
                async for record in consumer:
                    if record.topic == alerts_topic:
                        self._alert(record.partition, record.offset, record.value or b"")
                    else:
                        self._stats(record.value or b"")
            except Exception:  # noqa: BLE001 - a broker restart: reconnect (alerts re-read are counted once per offset)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()

    def _alert(self, partition: int, offset: int, value: bytes) -> None:
        if (partition, offset) not in self._alert_offsets:
            self._alert_offsets.add((partition, offset))
            self.alerts[str(msgspec.json.decode(value)["event_id"])] += 1

    def _stats(self, value: bytes) -> None:
        body = msgspec.json.decode(value)
        self.processed[str(body["worker_id"])] = (int(body["started_ts_ns"]), int(body["processed"]))


def parse_metrics(text: str, prefix: str = "arbstream_ingest_") -> dict[str, dict[str, float]]:
    """Prometheus text of ingest (or the API, by ``prefix``) -> {family: {venue: value}}; counters
    summed, ``streaming`` minimum."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        name, value = line.rsplit(" ", 1)
        family, _, labels = name.partition("{")
        venue = labels.split('venue="', 1)[1].split('"', 1)[0] if 'venue="' in labels else ""
        row = out.setdefault(family, {})
        if family == "arbstream_ingest_streaming":
            row[venue] = min(row.get(venue, 1.0), float(value))
        else:
            row[venue] = row.get(venue, 0.0) + float(value)
    return out
