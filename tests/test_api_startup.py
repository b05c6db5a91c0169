"""Issue 13, items 7 and 8: the demo's own namespace and data, topic segment settings, and a
bounded API start-up (alerts read from the last day / the last N, not from offset 0)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from api.follower import Topics
from arbstream.services import child_env, demo_settings
from plumbing.kafka import ensure_topics
from plumbing.settings import UpSettings
from plumbing.topic_configs import align_topic_configs
from schemas.arbitrage import encode as encode_event
from schemas.topics import EVENTS_CONFIG, HEALTH_CONFIG
from tests.test_api_reliability import in_process_api, produce, status_of, wait_for
from tests.test_api_support import in_process_model, scenario_settings

DAY_MS = 86_400_000


# --- item 8: segment settings and a bounded start-up --------------------------------------------


@pytest.mark.integration
def test_existing_health_topic_gets_segment_settings_and_keeps_other_overrides(
    kafka_bootstrap: str, namespace: str
) -> None:
    topic = f"{namespace}.health"
    old = {"retention.ms": "3600000", "cleanup.policy": "delete", "max.message.bytes": "2000000"}

    async def scenario() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]], dict[str, str]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=old)])
            first = await align_topic_configs(
                kafka_bootstrap, {topic: HEALTH_CONFIG, f"{namespace}.missing": HEALTH_CONFIG}
            )
            again = await align_topic_configs(kafka_bootstrap, {topic: HEALTH_CONFIG})
            [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            entries = response.to_object()["resources"][0]["config_entries"]
            return first, again, {e["config_names"]: e["config_value"] for e in entries}
        finally:
            await admin.close()

    first, again, now = asyncio.run(scenario())
    assert first == {topic: {"segment.ms": "600000", "segment.bytes": str(16 * 2**20)}}  # missing topic skipped
    assert again == {}
    assert (now["segment.ms"], now["segment.bytes"], now["retention.ms"]) == ("600000", str(16 * 2**20), "3600000")
    assert now["max.message.bytes"] == "2000000", "an operator's own override survives"


def _alerts(count: int, prefix: str, timestamp_ms: int) -> list[tuple[bytes, bytes, int | None]]:
    [template] = [a for a in in_process_model(time.time_ns()).alerts.values() if a.symbol == "BTC"]
    copies = [msgspec.structs.replace(template, event_id=f"{prefix}{i}") for i in range(count)]
    return [(b"BTC", encode_event(a), timestamp_ms) for a in copies]


@pytest.mark.integration
def test_start_up_reads_only_recent_alerts(kafka_bootstrap: str, namespace: str) -> None:
    topics = Topics.from_settings(scenario_settings(namespace=namespace))
    asyncio.run(ensure_topics(kafka_bootstrap, [topics.opportunities], 1))
    now_ms = int(time.time() * 1000)
    records = (
        _alerts(40, "old", now_ms - 3 * DAY_MS) + _alerts(6, "hour", now_ms - 3_600_000) + _alerts(4, "new", now_ms)
    )
    asyncio.run(produce(kafka_bootstrap, topics.opportunities, records))

    def loaded_alerts(**overrides: Any) -> tuple[list[str], int]:
        with in_process_api(kafka_bootstrap, namespace, **overrides) as (url, ctx):
            wait_for("the read model to load", lambda: status_of(url, "/api/summary")[0] == 200)
            assert ctx.follower is not None
            return list(ctx.model.alerts), ctx.follower.records_applied

    # The last day, not the 40 records of three days ago.
    assert loaded_alerts(events_lookback_s=86_400) == (
        [f"hour{i}" for i in range(6)] + [f"new{i}" for i in range(4)],
        10,
    )
    # The last N records when that is fewer (N = the alerts the model keeps anyway).
    assert loaded_alerts(events_lookback_s=86_400, alerts_keep=3) == (["new1", "new2", "new3"], 3)
    # An old topic read whole only when asked to look back that far.
    assert loaded_alerts(events_lookback_s=7 * 86_400)[1] == 50


# --- item 7: the demo's own namespace and data directory ----------------------------------------


def test_demo_children_use_their_own_namespace_and_data(tmp_path: Path) -> None:
    live = UpSettings(kafka_data_dir=tmp_path / "kafka-data")
    demo = demo_settings(live.model_copy(update={"demo": True}))
    assert (demo.namespace, demo.kafka_data_dir) == ("demo", tmp_path / "kafka-data-demo")
    env = child_env(demo, "127.0.0.1:9092", {"PATH": "/bin"})
    assert env["ARBSTREAM_NAMESPACE"] == "demo" and env["ARBSTREAM_DEMO"] == "true"
    assert env["ARBSTREAM_SIMULATOR_URL"] == "http://127.0.0.1:8765"
    assert env["ARBSTREAM_WORKER_DATA_DIR"].endswith("faust-demo")
    assert env["ARBSTREAM_INSTRUMENTS_CACHE_DIR"].endswith("instruments-demo")
    # The live run: no namespace, the shared data dir, nothing simulated.
    live_env = child_env(live, "127.0.0.1:9092", {"PATH": "/bin"})
    assert live_env["ARBSTREAM_NAMESPACE"] == "" and live.kafka_data_dir == tmp_path / "kafka-data"
    assert not {"ARBSTREAM_DEMO", "ARBSTREAM_SIMULATOR_URL", "ARBSTREAM_WORKER_DATA_DIR"} & live_env.keys()
    # The supervised worker is a static group member, so its restart after a crash needs no rebalance.
    assert env["ARBSTREAM_WORKER_INSTANCE_ID"] == live_env["ARBSTREAM_WORKER_INSTANCE_ID"] == "{hostname}-worker"
    assert child_env(live, "b:9092", {"ARBSTREAM_WORKER_INSTANCE_ID": "mine"})["ARBSTREAM_WORKER_INSTANCE_ID"] == "mine"
    # A namespaced setup keeps its prefix and still stays apart from its own live topics.
    assert demo_settings(UpSettings(namespace="team1", demo=True)).namespace == "team1-demo"


@pytest.mark.integration
def test_api_start_aligns_topics_created_by_older_versions(kafka_bootstrap: str, namespace: str) -> None:
    topics = Topics.from_settings(scenario_settings(namespace=namespace))
    asyncio.run(ensure_topics(kafka_bootstrap, [topics.health, topics.opportunities], 1))  # broker defaults

    async def overrides(topic: str) -> dict[str, str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            entries = response.to_object()["resources"][0]["config_entries"]
            return {e["config_names"]: e["config_value"] for e in entries if e["config_source"] == 1}
        finally:
            await admin.close()

    assert asyncio.run(overrides(topics.health)) == {}
    with in_process_api(kafka_bootstrap, namespace, align_topic_configs=True):
        wait_for("the health topic's settings", lambda: asyncio.run(overrides(topics.health)) == HEALTH_CONFIG)
        assert asyncio.run(overrides(topics.opportunities)) == EVENTS_CONFIG
