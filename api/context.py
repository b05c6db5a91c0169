"""Everything a request handler needs, built once per app and kept on ``app.state.ctx``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from api.metrics import ApiMetrics
from api.readmodel import ReadModel
from api.settings import ApiSettings
from api.universe import Universe
from processors.arbitrage import ArbConfig

if TYPE_CHECKING:
    from api.follower import Follower
    from api.hub import Hub
    from api.stream import Publisher


@dataclass
class ApiContext:
    settings: ApiSettings
    config: ArbConfig
    model: ReadModel
    metrics: ApiMetrics
    universe: Universe
    follower: Follower | None = None
    hub: Hub | None = None
    publisher: Publisher | None = None
    bootstrap: str | None = None


def now_ns() -> int:
    return time.time_ns()
