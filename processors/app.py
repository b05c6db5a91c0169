"""Starting ``arbstream worker``: the topics it reads and writes, created before the Faust app starts.

Data flow: every ``ticks.<BASE>`` topic (read by pattern; keyed by instrument id, partitioned
by base — :func:`plumbing.kafka.tick_partition`) -> per-symbol state in memory ->
``opportunities``, ``opportunity-episodes``, ``funding-opportunities``, ``prices`` (latest
quote per instrument, rate-limited), ``worker-stats`` and the compacted
``<app>-symbols-changelog`` (episodes, cooldowns, funding; decision 0015). The logic lives in
:mod:`processors.arbitrage`, :mod:`processors.funding` and :mod:`processors.engine`.
"""

from __future__ import annotations

import logging

from plumbing.errors import ConfigError
from plumbing.kafka import ensure_topics, partition_counts
from processors.settings import WorkerSettings
from processors.topics import WorkerTopics
from schemas.topics import EVENTS_CONFIG, HEALTH_CONFIG, symbols_changelog, ticks_topic

log = logging.getLogger(__name__)

SYMBOLS_TABLE = "symbols"
# Rows are written on transitions and every few seconds, not per tick; small segments and an
# eager cleaner still keep what a recovering worker (or a starting API) reads to a few segments.
CHANGELOG_CONFIG = {
    "segment.bytes": str(16 * 2**20),
    "segment.ms": str(60_000),
    "min.cleanable.dirty.ratio": "0.1",
}
PRICES_CONFIG = {"cleanup.policy": "compact", **CHANGELOG_CONFIG}
STATS_CONFIG = HEALTH_CONFIG


def changelog_topic(settings: WorkerSettings) -> str:
    return symbols_changelog(settings.app_name, settings.namespace)


def external_topics(settings: WorkerSettings) -> list[str]:
    """Event topics the worker writes plus the tick topics named in its settings, created up front."""
    topics = WorkerTopics.of(settings)
    ticks = [ticks_topic(s, settings.namespace) for s in settings.symbols]
    return [*ticks, topics.opportunities, topics.episodes, topics.funding]


async def prepare_topics(bootstrap: str, settings: WorkerSettings) -> None:
    """Create the worker's topics (compacted ones with their settings) and check the named tick topics.

    A tick topic whose partition count differs from ``topic_partitions`` would still work (the
    worker routes by each topic's own count) but spreads symbols unlike everything else, so a
    mistake there is reported instead of silently accepted.
    """
    topics = WorkerTopics.of(settings)
    parts = settings.topic_partitions
    await ensure_topics(bootstrap, external_topics(settings), parts)
    # Created before anyone reads them: a reader subscribing first could get them auto-created by
    # the broker as non-compacted topics.
    await ensure_topics(bootstrap, [topics.changelog], parts, {"cleanup.policy": "compact", **CHANGELOG_CONFIG})
    await ensure_topics(bootstrap, [topics.prices], parts, PRICES_CONFIG)
    await ensure_topics(bootstrap, [topics.health], parts, HEALTH_CONFIG)
    await ensure_topics(bootstrap, [topics.stats], parts, STATS_CONFIG)
    await ensure_topics(bootstrap, [topics.rejected], parts, EVENTS_CONFIG)
    tick_names = [ticks_topic(s, settings.namespace) for s in settings.symbols]
    wrong = {name: n for name, n in (await partition_counts(bootstrap, tick_names)).items() if n != parts}
    if wrong:
        raise ConfigError(
            f"tick topics must have ARBSTREAM_TOPIC_PARTITIONS={parts} partitions "
            f"(every symbol-keyed topic is partitioned alike), found {wrong}; set ARBSTREAM_TOPIC_PARTITIONS "
            "to match, or recreate the topics"
        )
