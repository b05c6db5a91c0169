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
INSTRUMENTS = "instruments"
"""Compacted, keyed by instrument id: the tracked universe (``Instrument``; a tombstone on delisting)."""
LISTINGS = "listings"
"""Compacted, keyed by venue: ``ListingStatus`` (which listing source each venue uses, how old)."""
TICKS_PREFIX = "ticks."

HEALTH_CONFIG = {"retention.ms": str(3_600_000), "cleanup.policy": "delete"}
"""Health is periodic snapshots that every worker and API replica reads from the beginning:
an hour of it is plenty and keeps their start-up fast."""

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
