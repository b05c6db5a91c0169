"""Settings of ``arbstream api``.

The API answers questions about the worker's state (cooldown left, which legs
are stale, fees behind a net spread), so it must read the *same* numbers the
worker uses: it inherits every field of :class:`processors.settings.WorkerSettings`
(``ARBSTREAM_COOLDOWN_S``, ``ARBSTREAM_TAKER_FEES``, ``ARBSTREAM_APP_NAME`` for
the changelog topic name, ...) and adds its own HTTP/WebSocket knobs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from plumbing.settings import DEFAULT_CACHE_DIR, REPO_ROOT, CommaList, split_commas
from plumbing.settings import ApiSettings as BaseApiSettings
from processors.settings import WorkerSettings

DEV_DASHBOARD_PORT = 5173
"""Vite's dev server port (issue 7); allowed by default so `npm run dev` can call the API."""
SEED_FRONTEND_PORT = 3000
"""Where future_rtd's Next.js frontend runs (`npm run dev`): allowed by default on this machine so
a seed frontend pointed at arbstream keeps working (issue 14)."""


class ApiSettings(WorkerSettings, BaseApiSettings):
    symbols_file: Path | None = Field(
        default=None, description="BASE:NATIVE_SYMBOL:venue lines (as for ingest); re-read by POST /api/reload-config"
    )
    instruments_cache_dir: Path = DEFAULT_CACHE_DIR / "instruments"
    cors_origins: CommaList = Field(
        default=[],
        description="allowed browser origins (comma list); empty = the API's own origin, the dev dashboard "
        "and a local seed frontend (port 3000)",
    )
    dashboard_dist: Path = REPO_ROOT / "dashboard" / "dist"
    backtest_dir: Path = Field(
        default=REPO_ROOT / "backtest-results",
        description="where `arbstream backtest` writes reports (served read-only)",
    )
    demo: bool = Field(default=False, description="the venues are the simulator (`arbstream up --demo` sets it)")

    ws_queue_size: int = Field(default=1_000, ge=1, description="events buffered per WebSocket client before dropping")
    ws_coalesce_ms: int = Field(default=100, ge=0, description="price updates per instrument: at most one per interval")
    ws_send_timeout_s: float = Field(default=10.0, gt=0, description="a client whose socket blocks longer is dropped")
    ws_top_n: int = Field(default=20, ge=1, le=1000, description="rows of the arbitrage_opportunities top list")
    ws_refresh_s: float = Field(default=1.0, gt=0, description="period of market_summary / arbitrage top list pushes")

    # Memory grows with symbols x ordered venue pairs (182 for 14 venues) x points: keep it modest.
    spread_history_points: int = Field(
        default=600,
        ge=1,
        description="spread samples kept per (symbol, venue pair): those of the last points x interval (10 min)",
    )
    spread_history_interval_ms: int = Field(
        default=1_000, ge=1, description="at most one spread sample per venue pair per interval"
    )

    alerts_keep: int = Field(default=1_000, ge=1, description="recent alerts kept in memory")
    episodes_keep: int = Field(default=10_000, ge=1, description="closed episodes kept in memory for /api/episodes")
    max_lag_records: int = Field(default=10_000, ge=0, description="/health is degraded beyond this consumer lag")
    discover_interval_s: float = Field(default=5.0, gt=0, description="how often to look for new topics/partitions")
    align_topic_configs: bool = Field(
        default=True, description="at start, update older health/event topics to the current segment settings"
    )
    events_lookback_s: float = Field(
        default=86_400.0, gt=0, description="start-up reads alerts/closed episodes of this far back at most"
    )

    # Supervision and the /health rule (issue 13, decision 0014).
    task_backoff_initial_s: float = Field(default=0.5, gt=0, description="first restart delay of a failed task")
    task_backoff_max_s: float = Field(default=30.0, gt=0, description="restart delays double up to this")
    health_report_max_age_s: float = Field(
        default=30.0, gt=0, description="a venue counts as streaming only with a health report younger than this"
    )
    health_max_data_age_s: float = Field(
        default=60.0, gt=0, description="/health is down when the newest tick is older than this"
    )
    health_worker_max_age_s: float = Field(
        default=30.0, gt=0, description="a worker without a worker-stats record for this long is listed as gone"
    )
    workers_gone_keep_s: float = Field(
        default=600.0, gt=0, description="a gone worker's last counters stay on /health this long, then are dropped"
    )

    # Security defaults (issue 13, decision 0014).
    admin_token: str | None = Field(
        default=None,
        description="bearer token for state-changing endpoints; unset = only loopback clients of a "
        "loopback-bound API (and no foreign browser origin)",
    )
    ws_max_connections: int = Field(default=2_000, ge=1, description="WebSocket clients at once; more are refused")
    ws_max_message_bytes: int = Field(
        default=16_384, ge=256, description="largest client message; a bigger one closes the socket (1009)"
    )
    ws_max_list: int = Field(default=1_000, ge=1, description="longest symbols/venues list in a subscribe op")
    ws_snapshots_per_min: int = Field(
        default=30, ge=1, description="subscribe/resync ops per client per minute (each costs a full snapshot)"
    )

    _split_origins = field_validator("cors_origins", mode="before")(split_commas)

    def allowed_origins(self) -> list[str]:
        if self.cors_origins:
            return self.cors_origins
        hosts = {self.api_host, "localhost", "127.0.0.1"}
        own = {f"http://{host}:{port}" for host in hosts for port in (self.api_port, DEV_DASHBOARD_PORT)}
        # Loopback only: a seed frontend elsewhere is someone else's page until ARBSTREAM_CORS_ORIGINS lists it.
        seed = {f"http://{host}:{SEED_FRONTEND_PORT}" for host in ("localhost", "127.0.0.1")}
        return sorted(own | seed)
