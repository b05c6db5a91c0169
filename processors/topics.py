"""Every topic the worker reads or writes, named once from its settings."""

from __future__ import annotations

from dataclasses import dataclass

from processors.settings import WorkerSettings
from schemas.topics import (
    FUNDING_OPPORTUNITIES,
    HEALTH,
    OPPORTUNITIES,
    OPPORTUNITY_EPISODES,
    PRICES,
    REJECTED_TICKS,
    WORKER_STATS,
    symbols_changelog,
    ticks_pattern,
    topic_name,
)


@dataclass(frozen=True)
class WorkerTopics:
    group: str
    ticks_pattern: str
    health: str
    opportunities: str
    episodes: str
    funding: str
    changelog: str
    prices: str
    stats: str
    rejected: str

    @classmethod
    def of(cls, settings: WorkerSettings) -> WorkerTopics:
        ns = settings.namespace
        return cls(
            group=topic_name(settings.app_name, ns),
            ticks_pattern=ticks_pattern(ns),
            health=topic_name(HEALTH, ns),
            opportunities=topic_name(OPPORTUNITIES, ns),
            episodes=topic_name(OPPORTUNITY_EPISODES, ns),
            funding=topic_name(FUNDING_OPPORTUNITIES, ns),
            changelog=symbols_changelog(settings.app_name, ns),
            prices=topic_name(PRICES, ns),
            stats=topic_name(WORKER_STATS, ns),
            rejected=topic_name(REJECTED_TICKS, ns),
        )
