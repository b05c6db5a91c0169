"""The configuration a backtest ran with, as the report records it.

``WorkerSettings`` reads ``ARBSTREAM_*`` variables as well as the ``--set`` overrides, so a
report that listed only the overrides could not be reproduced (``ARBSTREAM_COOLDOWN_S=0`` in
the shell quadruples the alerts of a report showing no settings at all). Each run records the
full configuration the engine was built with, and which of it differs from the defaults and
came from the environment. Numbers stay exact: Decimals are written as strings.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

from processors.settings import WorkerSettings

DECISION_FIELDS = (
    "taker_fees",
    "default_taker_fee",
    "max_quote_age_ms",
    "max_quote_age_ms_by_venue",
    "open_threshold",
    "close_threshold",
    "min_persist_ms",
    "min_ticks",
    "cooldown_s",
    "cooldown_break_ratio",
    "quote_bridges",
    "funding_open_apr",
    "funding_close_apr",
    "funding_hold_h",
    "funding_max_age_ms",
    "funding_cooldown_s",
    "worker_sweep_interval_ms",
    "worker_sweep_grace_ms",
)
"""The worker settings a backtest's results depend on (the rest only tune Kafka and Faust)."""


def plain(value: Any) -> Any:
    """JSON-ready, exact: Decimals as strings, mappings with sorted keys."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _default(name: str) -> Any:
    return WorkerSettings.model_fields[name].get_default(call_default_factory=True)


def _differs(name: str, value: Any) -> Any:
    """The part of ``value`` that differs from the default (for a mapping: its changed keys)."""
    default = _default(name)
    if isinstance(value, dict) and isinstance(default, dict):
        return {k: v for k, v in value.items() if default.get(k) != v}
    return value if value != default else None


def _text(value: Any) -> str:
    value = plain(value)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def changed_settings(settings: WorkerSettings, overrides: dict[str, Any]) -> dict[str, str]:
    """Every decision setting given as an override or differing from its default, as text."""
    out: dict[str, str] = {}
    for name in sorted({*overrides, *DECISION_FIELDS}):
        value = getattr(settings, name)
        differs = _differs(name, value) if name in DECISION_FIELDS else value
        if name in overrides or differs not in (None, {}):
            out[name] = _text(differs if isinstance(differs, dict) and name not in overrides else value)
    return out


def from_environment(settings: WorkerSettings, overrides: dict[str, Any]) -> list[str]:
    """Decision settings that differ from the defaults though no override set them: the environment did."""
    return [n for n in DECISION_FIELDS if n not in overrides and _differs(n, getattr(settings, n)) not in (None, {})]


def effective_config(settings: WorkerSettings) -> dict[str, Any]:
    """The full configuration of the run's engine (arbitrage, funding, sweep), defaults included."""
    return {
        "arbitrage": plain(dataclasses.asdict(settings.arb_config())),
        "funding": plain(dataclasses.asdict(settings.funding_config())),
        "sweep": {"interval_ms": settings.worker_sweep_interval_ms, "grace_ms": settings.worker_sweep_grace_ms},
        "conflate_after_ms": 0,
    }
