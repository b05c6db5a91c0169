"""Bring existing topics' settings up to date (issue 13, item 8).

``ensure_topics`` only configures topics it creates. A topic created by an
older version (the health topic without segment settings, event topics with
the broker's defaults) keeps its old settings forever unless someone alters
them. :func:`align_topic_configs` compares each existing topic's *dynamic*
settings with the wanted ones and sets the difference.

Kafka's (non-incremental) AlterConfigs replaces every dynamic setting of a
topic, so the request carries the topic's other dynamic settings too: an
operator's own override (say ``max.message.bytes``) survives. The incremental
API would avoid that read-modify-write, but aiokafka does not implement it.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from plumbing.errors import FatalError

log = logging.getLogger(__name__)

DYNAMIC_TOPIC_CONFIG = 1
"""DescribeConfigs ``config_source`` of a per-topic override."""


def _entries(response: Any) -> dict[str, dict[str, str]]:
    """topic -> its per-topic overrides, from a DescribeConfigs response (v1+)."""
    out: dict[str, dict[str, str]] = {}
    for resource in response.to_object()["resources"]:
        if resource["error_code"] != 0:
            log.warning("describe configs of %s failed: %s", resource["resource_name"], resource["error_message"])
            continue
        out[resource["resource_name"]] = {
            entry["config_names"]: entry["config_value"]
            for entry in resource["config_entries"]
            if entry.get("config_source") == DYNAMIC_TOPIC_CONFIG and entry["config_value"] is not None
        }
    return out


async def align_topic_configs(bootstrap: str, wanted: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Set ``wanted`` settings on the topics that exist and differ; returns what was changed per topic.

    Topics that do not exist are skipped (their creator configures them).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = sorted(n for n in wanted if n in existing)
        if not names:
            return {}
        current: dict[str, dict[str, str]] = {}
        for response in await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names]):
            current.update(_entries(response))
        changes = {
            name: {k: v for k, v in wanted[name].items() if current.get(name, {}).get(k) != v}
            for name in names
            if name in current
        }
        changes = {name: diff for name, diff in changes.items() if diff}
        if changes:
            resources = [
                ConfigResource(ConfigResourceType.TOPIC, name, configs={**current[name], **wanted[name]})
                for name in changes
            ]
            for response in await admin.alter_configs(resources):
                for resource in response.to_object()["resources"]:
                    if resource["error_code"] != 0:
                        name, why = resource["resource_name"], resource["error_message"]
                        raise FatalError(f"altering the settings of topic {name} failed: {why}")
            log.info("aligned topic settings: %s", changes)
        return changes
    finally:
        await admin.close()
