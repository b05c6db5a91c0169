"""Shared fixtures. The broker is real, always: KAFKA_BOOTSTRAP / ARBSTREAM_KAFKA_BOOTSTRAP
if set, else a Redpanda container when a Docker daemon answers, else the local Kafka
from the Maven jars (started once per session on free ports in a temporary data dir).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from plumbing.broker import LocalKafka, free_port, ram_disk_root
from plumbing.settings import BrokerSettings

REDPANDA_IMAGE = "docker.redpanda.com/redpandadata/redpanda:v26.1.1"


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 - no daemon, no socket, no permission: all mean "no Docker"
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("ARBSTREAM_KAFKA_BOOTSTRAP") or os.environ.get("KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    if _docker_answers():
        from testcontainers.kafka import RedpandaContainer

        with RedpandaContainer(REDPANDA_IMAGE) as redpanda:
            yield redpanda.get_bootstrap_server()
        return
    # In RAM when there is room (plumbing.broker.ram_disk_root: the VM's disk stalls a broker
    # whose earlier writes are being written back); ~200 MB for the whole suite, deleted after.
    ram = ram_disk_root()
    data_dir = Path(tempfile.mkdtemp(prefix="arbstream-kafka-", dir=ram)) if ram else tmp_path_factory.mktemp("kafka")
    broker = LocalKafka(BrokerSettings(), data_dir=data_dir, port=free_port(), controller_port=free_port())
    try:
        broker.start()
        yield broker.bootstrap
    finally:
        broker.stop()
        if ram:
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def namespace() -> str:
    """A fresh topic namespace per test, so tests never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}"
