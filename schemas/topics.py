"""Topic names. Every topic name in arbstream goes through :func:`topic_name`.

A namespace prefix keeps tests, replays and backtests apart from live topics
on the same cluster: namespace ``bt1`` turns ``ticks.BTC`` into ``bt1.ticks.BTC``.
"""

from __future__ import annotations

import re

HEALTH = "health"
OPPORTUNITIES = "opportunities"
OPPORTUNITY_EPISODES = "opportunity-episodes"
FUNDING_OPPORTUNITIES = "funding-opportunities"
FUNDING_SETTLEMENTS = "funding-settlements"
"""Keyed by ``<instrument id>|<settlement ns>``: every settled funding rate (``FundingSettlement``),
kept 35 days (decision 0018); the API's funding history is materialised from it."""
INSTRUMENTS = "instruments"
"""Compacted, keyed by instrument id: the tracked universe (``Instrument``; a tombstone on delisting)."""
LISTINGS = "listings"
"""Compacted, keyed by venue: ``ListingStatus`` (which listing source each venue uses, how old)."""
PRICES = "prices"
"""Compacted, keyed and partitioned by symbol: ``SymbolPrices``, the worker's latest ``Quote`` of
every instrument of the symbol, at most once per ``ARBSTREAM_PRICES_INTERVAL_MS`` for a symbol
whose quotes changed (what the API shows as prices; decision 0041)."""
WORKER_STATS = "worker-stats"
"""Keyed by worker id: each worker's ``WorkerStats`` (processed, conflated, ... ticks) every second."""
TICKS_PREFIX = "ticks."
REJECTED_TICKS = "rejected-ticks"
"""Keyed by symbol: every tick the worker rejected (``RejectedTick``: the tick, where it was, why)."""

HEALTH_CONFIG = {
    "retention.ms": str(3_600_000),
    "cleanup.policy": "delete",
    "segment.ms": str(600_000),
    "segment.bytes": str(16 * 2**20),
}
"""Health is periodic snapshots that every worker and API replica reads from the beginning:
an hour of it is plenty and keeps their start-up fast. Retention only deletes whole closed
segments, so segments roll every 10 min (Kafka's default is 7 days / 1 GiB, under which the
hour never applied and start-up grew with uptime)."""
EVENTS_CONFIG = {
    "retention.ms": str(7 * 86_400_000),
    "cleanup.policy": "delete",
    "segment.ms": str(3_600_000),
    "segment.bytes": str(64 * 2**20),
}
"""Alerts and closed episodes: a week, in hourly segments so the week is a week (not up to two)."""

SETTLEMENTS_CONFIG = {
    "retention.ms": str(35 * 86_400_000),
    "cleanup.policy": "compact,delete",
    "segment.ms": str(86_400_000),
    "segment.bytes": str(64 * 2**20),
}
"""35 days (the 30-day averages need 30 whole days); compaction drops the duplicates that several
API replicas write for one settlement (same key); daily segments so the 35 days stay 35 days."""

_LEGAL = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def topic_name(name: str, namespace: str = "") -> str:
    """Return the physical topic for logical ``name`` under ``namespace``."""
    full = f"{namespace}.{name}" if namespace else name
    if not _LEGAL.match(full) or full in {".", ".."}:
        raise ValueError(f"illegal Kafka topic name {full!r}")
    return full


def ticks_topic(base: str, namespace: str = "") -> str:
    """Per-symbol tick topic, e.g. ``ticks.BTC`` for canonical base ``BTC``."""
    return topic_name(f"{TICKS_PREFIX}{base.upper()}", namespace)


def ticks_pattern(namespace: str = "") -> str:
    """Regex matching every ``ticks.<BASE>`` topic of ``namespace`` (and no other namespace's)."""
    return "^" + re.escape(topic_name(TICKS_PREFIX + "X", namespace)[:-1]) + r"[A-Za-z0-9_-]+$"


def base_of_ticks_topic(topic: str, namespace: str = "") -> str:
    """``bt1.ticks.BTC`` -> ``BTC`` (the inverse of :func:`ticks_topic`)."""
    prefix = topic_name(TICKS_PREFIX + "X", namespace)[:-1]
    if not topic.startswith(prefix):
        raise ValueError(f"{topic!r} is not a tick topic of namespace {namespace!r}")
    return topic[len(prefix) :]


def symbols_changelog(app_name: str, namespace: str = "") -> str:
    """The worker's compacted per-symbol state (episodes, cooldowns, funding; no quotes), keyed by symbol."""
    return f"{topic_name(app_name, namespace)}-symbols-changelog"
