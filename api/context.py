"""Everything a request handler needs, built once per app and kept on ``app.state.ctx``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from api.metrics import ApiMetrics
from api.readmodel import ReadModel
from api.settings import ApiSettings
from api.universe import Universe
from processors.arbitrage import ArbConfig

if TYPE_CHECKING:
    from api.follower import Follower
    from api.funding_feed import FundingFeed
    from api.hub import Hub
    from api.stream import Publisher
    from api.supervise import Supervisor


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
    tasks: list[Supervisor] = field(default_factory=list)
    """Supervised background tasks (api/supervise.py), reported on /health."""
    funding: FundingFeed | None = None
    """Funding settlements, history and alerts (api/funding_feed.py, api/funding_routes.py)."""

    def not_live(self) -> str | None:
        """Why data endpoints must answer 503 now (None: the read model is loaded and moving)."""
        if not self.model.complete:
            return "read model still loading; see /health"
        for task in self.tasks:
            if task.critical and not task.running:
                return f"read model not live: {task.name} is {task.state} after {task.last_error}; see /health"
        if self.follower is not None and not self.follower.live:
            return "read model not live: catching up after a restart; see /health"
        return None


def now_ns() -> int:
    return time.time_ns()
