"""Foundation: topic naming, settings, compose file structure, the CLI surface."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from plumbing.settings import BrokerSettings, CommonSettings
from schemas.topics import ticks_topic, topic_name
from tests.helpers import REPO_ROOT


def test_topic_name_applies_namespace() -> None:
    assert topic_name("health") == "health"
    assert topic_name("health", "bt1") == "bt1.health"
    assert ticks_topic("btc") == "ticks.BTC"
    assert ticks_topic("ETH", "t1") == "t1.ticks.ETH"


@pytest.mark.parametrize("bad", ["with space", "", "a/b", "x" * 250])
def test_topic_name_rejects_illegal(bad: str) -> None:
    with pytest.raises(ValueError, match="illegal Kafka topic name"):
        topic_name(bad)


def test_bootstrap_from_either_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARBSTREAM_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "10.0.0.1:9092")
    assert CommonSettings().kafka_bootstrap == "10.0.0.1:9092"
    monkeypatch.setenv("ARBSTREAM_KAFKA_BOOTSTRAP", "10.0.0.2:9092")
    monkeypatch.delenv("KAFKA_BOOTSTRAP")
    assert CommonSettings().kafka_bootstrap == "10.0.0.2:9092"


def test_settings_prefix_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBSTREAM_KAFKA_PORT", "19999")
    monkeypatch.setenv("ARBSTREAM_NAMESPACE", "replay_7")
    settings = BrokerSettings()
    assert settings.kafka_port == 19999
    assert settings.namespace == "replay_7"
    monkeypatch.setenv("ARBSTREAM_NAMESPACE", "bad namespace")
    with pytest.raises(ValueError, match="namespace"):
        BrokerSettings()


def test_cli_lists_every_service() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "arbstream.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("up", "broker", "ingest", "worker", "api"):
        assert f"    {command}" in out


def test_docker_compose_structure() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"redpanda", "console", "ingest", "worker", "api"}
    assert services["redpanda"]["image"].startswith("docker.redpanda.com/redpandadata/redpanda:v")
    assert services["console"]["image"].startswith("docker.redpanda.com/redpandadata/console:v")
    for name in ("ingest", "worker", "api"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["command"][0] == name
        env = service["environment"]
        assert env["ARBSTREAM_KAFKA_BOOTSTRAP"] == "redpanda:9092"
        assert "redpanda" in service["depends_on"]
    # `--scale worker=N` needs no fixed container name or host port on the worker.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    # Bound to localhost unless ARBSTREAM_BIND_ADDRESS says otherwise (decision 0014).
    assert services["api"]["ports"] == ["${ARBSTREAM_BIND_ADDRESS:-127.0.0.1}:8000:8000"]
    assert (REPO_ROOT / "deploy" / "Dockerfile").read_text().count("ENTRYPOINT") == 1


def test_cluster_ids_never_start_with_a_dash() -> None:
    from plumbing.broker import new_cluster_id

    ids = [new_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
