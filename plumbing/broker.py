"""Local Apache Kafka (KRaft: one node, or a small cluster for fault tests) from Maven Central jars.

The jars are resolved by Maven from ``deploy/kafka/pom.xml`` into ``.cache/``
(outside git). :class:`LocalKafka` formats a data directory, starts the JVM on
127.0.0.1, waits until a produce/consume round trip succeeds and stops it with
SIGTERM, then SIGKILL after a timeout. The JVM is also tied to its parent with
``PR_SET_PDEATHSIG`` so a crashed or killed parent leaves no orphan broker.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from plumbing.errors import BrokerNotReadyError, BrokerStartError
from plumbing.kafka import wait_until_ready
from plumbing.settings import REPO_ROOT, BrokerSettings, CommonSettings

log = logging.getLogger(__name__)

KAFKA_DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
POM = KAFKA_DEPLOY_DIR / "pom.xml"
LOG4J = KAFKA_DEPLOY_DIR / "log4j.properties"
_COMPLETE_MARKER = ".complete"
_PR_SET_PDEATHSIG = 1


def ensure_jars(settings: BrokerSettings) -> Path:
    """Fetch the broker classpath with Maven unless the cache already holds it."""
    libs = settings.kafka_libs_dir
    if (libs / _COMPLETE_MARKER).exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerStartError("Maven (mvn) is not on PATH; it is needed once to fetch the Kafka jars")
    libs.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        f"-Dmaven.repo.local={settings.cache_dir / 'm2'}",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs}",
    ]
    log.info("fetching Kafka %s jars into %s", settings.kafka_version, libs)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BrokerStartError(f"Maven could not fetch the Kafka jars:\n{done.stdout}\n{done.stderr}")
    (libs / _COMPLETE_MARKER).write_text(settings.kafka_version)
    return libs


def new_cluster_id() -> str:
    """16 random bytes, base64url without padding (22 chars), never starting with '-'.

    StorageTool's argument parser would read a leading '-' as an option (as Kafka's own
    Uuid.randomUuid avoids too); it happened here once in a test run.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on host:port (or it cannot be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bind:
        # The JVM binds with SO_REUSEADDR too; without it a TIME_WAIT left by a
        # broker stopped a moment ago would look like a conflict.
        bind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            bind.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def resident_memory_mb(pid: int) -> float | None:
    """Resident set size of a process in MiB, from /proc (None when unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class NodeRole:
    """A node's place in its cluster: one node alone (the default) or one of a KRaft quorum."""

    node_id: int = 1
    voters: str | None = None
    """``controller.quorum.voters`` of a cluster; None = this node alone."""
    replication: int = 1
    """Replication of internal topics and the default of new ones (``min.insync.replicas`` = r - 1)."""


INDEX_INTERVAL_BYTES = 64 * 1024


def _server_properties(host: str, port: int, controller_port: int, log_dirs: Path, role: NodeRole) -> str:
    replication = str(role.replication)
    min_isr = str(max(1, role.replication - 1))
    props = {
        "process.roles": "broker,controller",
        "node.id": str(role.node_id),
        "controller.quorum.voters": role.voters or f"{role.node_id}@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dirs),
        # Topics a client creates by subscribing to them: as arbstream's default (decision 0029).
        "num.partitions": str(CommonSettings.model_fields["topic_partitions"].default),
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        "log.cleaner.dedupe.buffer.size": str(32 * 1024 * 1024),
        "log.message.timestamp.after.max.ms": str(2**63 - 1),
        "auto.create.topics.enable": "true",
        # An offset/time index entry per 64 KiB of a partition's log, not per 4 KiB: on the whole
        # market (480 partitions of small record batches) index appends were ~27 % of the broker's
        # CPU samples (JFR); 64 KiB cut its cores per 10k ticks/s by 17-45 % (README, decision 0032).
        # The cost: a fetch from an arbitrary offset scans up to 64 KiB to find it.
        "log.index.interval.bytes": str(INDEX_INTERVAL_BYTES),
    }
    if role.voters is not None:
        # A killed node is fenced after this long and its partitions get new leaders (default 9 s).
        props["broker.session.timeout.ms"] = "3000"
        props["broker.heartbeat.interval.ms"] = "500"
    return "".join(f"{key}={value}\n" for key, value in props.items())


RAM_DISK = Path("/dev/shm")
RAM_DISK_MIN_FREE = 8 << 30
"""A quick bench run writes well under a gigabyte, a full one a few; the test suite ~200 MB."""


def ram_disk_root(ram_disk: Path = RAM_DISK, min_free: int = RAM_DISK_MIN_FREE) -> Path | None:
    """Where a local broker for the bench or the tests keeps its data: a RAM disk when there is one
    with room (the caller deletes what it put there: it is memory).

    On this machine's virtual disk the broker's produce round trips were ~3x slower than on tmpfs
    from the start (publisher alone at 40,000 ticks/s: p50 50-77 vs 17-19 ms) and collapsed once
    earlier stages' data was being written back (the third run on one broker: 45-84k of 160k
    ticks delivered, p50 0.6-1.0 s; on tmpfs no change). That measures the VM's disk, not
    arbstream; a production broker has its own disks. None: the system's temporary directory."""
    try:
        free = shutil.disk_usage(ram_disk).free
    except OSError:
        return None
    return ram_disk if free >= min_free else None


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LocalKafka:
    """One single-node KRaft broker process."""

    settings: BrokerSettings
    data_dir: Path | None = None
    port: int | None = None
    controller_port: int | None = None
    role: NodeRole = field(default_factory=NodeRole)
    cluster_id: str | None = None
    """Shared by every node of a cluster; None = a new one when the data directory is formatted."""
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    startup_seconds: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir or self.settings.kafka_data_dir).resolve()
        self.port = self.port or self.settings.kafka_port
        self.controller_port = self.controller_port or self.settings.kafka_controller_port

    @property
    def bootstrap(self) -> str:
        return f"{self.settings.kafka_host}:{self.port}"

    @property
    def log_file(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "broker.log"

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise BrokerStartError("java not found (set JAVA_HOME or put java on PATH); Kafka needs Java 11+")
        return java

    def _check_ports(self) -> None:
        host = self.settings.kafka_host
        for port in (self.port, self.controller_port):
            assert port is not None
            if port_in_use(host, port):
                raise BrokerStartError(
                    f"port {host}:{port} is already in use - is another broker running "
                    f"(`arbstream broker`, `make run`)? Stop it, or point arbstream at it with "
                    f"KAFKA_BOOTSTRAP={host}:{self.port}, or choose ARBSTREAM_KAFKA_PORT / "
                    f"ARBSTREAM_KAFKA_CONTROLLER_PORT."
                )

    def _format(self, java: str, classpath: str, properties: Path, log_dirs: Path) -> None:
        """Format a new data directory; an existing one keeps its cluster id (and its data)."""
        if (log_dirs / "meta.properties").exists():
            return
        cluster_id = self.cluster_id or new_cluster_id()
        cmd = [
            java,
            "-Xmx256m",
            f"-Dlog4j.configuration=file:{LOG4J}",
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(properties),
            "--ignore-formatted",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerStartError(f"formatting {self.data_dir} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        """Format (first time only), start the JVM and wait for a real round trip."""
        started = time.monotonic()
        self.launch()
        self.wait_ready(started)

    def prepare(self) -> Path:
        """Check the ports, write ``server.properties``, format the data directory (first time only)."""
        assert self.data_dir is not None and self.port is not None and self.controller_port is not None
        libs = ensure_jars(self.settings)
        self._check_ports()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        properties = self.data_dir / "server.properties"
        log_dirs = self.data_dir / "logs"
        host = self.settings.kafka_host
        properties.write_text(_server_properties(host, self.port, self.controller_port, log_dirs, self.role))
        self._format(self._java(), f"{libs}/*", properties, log_dirs)
        return properties

    def launch(self) -> None:
        """Start the JVM without waiting (a cluster starts its nodes together).

        Call it from the main thread: ``PR_SET_PDEATHSIG`` fires when the *thread* that forked
        the child ends, so a JVM started from a worker thread would die with that thread.
        """
        properties = self.prepare()
        java, classpath = self._java(), f"{self.settings.kafka_libs_dir}/*"
        heap = self.settings.kafka_heap
        cmd = [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            # Client JIT only for cluster nodes: several JVMs start at once on a shared CPU, and
            # fault tests need start-up time more than peak throughput.
            *(["-XX:TieredStopAtLevel=1"] if self.role.voters else []),
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{LOG4J}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(properties),
        ]
        with self.log_file.open("ab") as sink:
            self.process = subprocess.Popen(
                cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent
            )
        (properties.parent / "broker.pid").write_text(str(self.process.pid))

    def wait_ready(self, started: float) -> None:
        """Until a produce/consume round trip through this node succeeds; stops it and raises on failure."""
        assert self.process is not None
        try:
            asyncio.run(wait_until_ready(self.bootstrap, self.settings.kafka_start_timeout_s, is_alive=self.is_running))
        except BrokerNotReadyError as exc:
            tail = self.log_tail()
            self.stop()
            raise BrokerStartError(f"{exc}\n--- last lines of {self.log_file} ---\n{tail}") from exc
        self.startup_seconds = time.monotonic() - started
        log.info("Kafka ready at %s in %.1fs (pid %s)", self.bootstrap, self.startup_seconds, self.process.pid)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL, as a crash: no clean shutdown (fault tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> int | None:
        """SIGTERM, wait for a clean shutdown, SIGKILL after the timeout. Returns the exit code."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.settings.kafka_stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.warning(
                    "broker pid %s ignored SIGTERM for %.0fs; killing", proc.pid, self.settings.kafka_stop_timeout_s
                )
                proc.kill()
                proc.wait()
        assert self.data_dir is not None
        (self.data_dir / "broker.pid").unlink(missing_ok=True)
        return proc.returncode

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class KafkaCluster:
    """``size`` KRaft nodes, each broker and controller (the fastest layout to start: no separate
    quorum processes), replication ``size`` and ``min.insync.replicas`` ``size - 1``: a cluster
    that keeps accepting ``acks=all`` writes with one node down (decision 0022)."""

    settings: BrokerSettings
    data_dir: Path
    size: int = 3
    nodes: list[LocalKafka] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        host = self.settings.kafka_host
        ports = [(free_port(host), free_port(host)) for _ in range(self.size)]
        voters = ",".join(f"{i + 1}@{host}:{controller}" for i, (_, controller) in enumerate(ports))
        cluster_id = new_cluster_id()
        for i, (port, controller) in enumerate(ports):
            role = NodeRole(node_id=i + 1, voters=voters, replication=self.size)
            node_dir = self.data_dir / f"node{i + 1}"
            self.nodes.append(LocalKafka(self.settings, node_dir, port, controller, role, cluster_id))

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self) -> None:
        """Every JVM at once (a lone voter cannot elect a controller), then each node's round trip."""
        started = time.monotonic()
        try:
            # Formatting and JVM start-up are CPU-bound child processes: run them side by side.
            with ThreadPoolExecutor(self.size) as pool:
                list(pool.map(LocalKafka.prepare, self.nodes))
            for node in self.nodes:
                node.launch()
            for node in self.nodes:
                node.wait_ready(started)
        except BrokerStartError:
            self.stop()
            raise

    def restart(self, node: LocalKafka) -> None:
        """Start a stopped or killed node again on its data directory and ports."""
        node.start()

    def stop(self) -> None:
        """Every node at once: stopped one by one, the last ones lose their quorum and hang."""
        with ThreadPoolExecutor(self.size) as pool:
            list(pool.map(LocalKafka.stop, self.nodes))

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
