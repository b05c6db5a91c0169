"""JSON Schema of every topic's messages, exported to ``schemas/json/`` for downstream consumers.

Regenerate with ``arbstream schemas``; a test fails when the committed files
drift from the types.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from schemas.arbitrage import EpisodeClosed, FundingEvent, Opportunity, RejectedTick, SymbolState, WorkerStats
from schemas.control import ControlRequest
from schemas.funding import FundingSettlement
from schemas.market import Health, Instrument, ListingStatus, SymbolPrices, TickBatch

SCHEMA_DIR = Path(__file__).resolve().parent / "json"

TOPIC_TYPES: dict[str, Any] = {
    "ticks": TickBatch,
    "health": Health,
    "opportunities": Opportunity,
    "opportunity-episodes": EpisodeClosed,
    "funding-opportunities": FundingEvent,
    "funding-settlements": FundingSettlement,
    "symbols-changelog": SymbolState,
    "instruments": Instrument,
    "listings": ListingStatus,
    "rejected-ticks": RejectedTick,
    "prices": SymbolPrices,
    "worker-stats": WorkerStats,
    "control": ControlRequest,
}
"""Logical topic (``ticks`` stands for every ``ticks.<BASE>``) -> message type."""


def topic_schema(topic: str) -> dict[str, Any]:
    schema: dict[str, Any] = msgspec.json.schema(TOPIC_TYPES[topic])
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://arbstream.dev/schemas/{topic}.schema.json"
    return schema


def render(topic: str) -> str:
    return json.dumps(topic_schema(topic), indent=2, sort_keys=True) + "\n"


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for topic in TOPIC_TYPES:
        path = directory / f"{topic}.schema.json"
        path.write_text(render(topic))
        written.append(path)
    return written
