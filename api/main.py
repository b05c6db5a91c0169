"""FastAPI application factory and ``arbstream api`` entry point."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import health, routes
from api.context import ApiContext
from api.dashboard import add_dashboard
from api.follower import Follower, Topics
from api.history import SpreadHistory
from api.hub import Hub
from api.metrics import ApiMetrics
from api.models import InfoOut
from api.readmodel import ReadModel
from api.settings import ApiSettings
from api.stream import Publisher
from api.universe import Universe, load_universe
from api.ws import router as ws_router
from api.ws import websocket_endpoint
from arbstream import __version__
from arbstream.kafka import resolve_bootstrap

DESCRIPTION = """Cross-venue arbitrage of crypto perpetual futures, from the processors' state.

Prices are per ONE base unit; Decimal numbers are JSON strings; data endpoints
answer 503 until the read model has loaded. WebSocket: `/ws` (see api/stream.py).
"""


def build_context(
    settings: ApiSettings, bootstrap: str | None, model: ReadModel | None = None, universe: Universe | None = None
) -> ApiContext:
    metrics = ApiMetrics()
    ctx = ApiContext(
        settings=settings,
        config=settings.arb_config(),
        model=model or ReadModel(settings.alerts_keep, settings.episodes_keep),
        metrics=metrics,
        universe=universe if universe is not None else load_universe(settings),
        bootstrap=bootstrap,
    )
    if ctx.model.history is None:
        ctx.model.attach_history(
            SpreadHistory(ctx.config.quote_bridges, settings.spread_history_points, settings.spread_history_interval_ms)
        )
    ctx.hub = Hub(metrics)
    ctx.publisher = Publisher(ctx, ctx.hub)
    if bootstrap is not None:
        topics = Topics.from_settings(settings)
        ctx.follower = Follower(
            bootstrap, topics, ctx.model, ctx.publisher.on_changes, metrics, settings.discover_interval_s
        )
        ctx.follower.universe = ctx.universe  # ingest's instruments/listings topics feed it
    return ctx


def create_app(ctx: ApiContext, dashboard_dist: Path | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if ctx.follower is not None:
            ctx.follower.start()
        assert ctx.publisher is not None
        periodic = asyncio.create_task(ctx.publisher.run_periodic())
        try:
            yield
        finally:
            periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await periodic
            if ctx.follower is not None:
                await ctx.follower.stop()

    app = FastAPI(title="arbstream", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.ctx = ctx
    app.add_middleware(
        CORSMiddleware, allow_origins=ctx.settings.allowed_origins(), allow_methods=["GET", "POST"], allow_headers=["*"]
    )
    app.include_router(health.router)
    app.include_router(routes.router)
    app.include_router(ws_router)
    app.add_api_websocket_route("/ws", websocket_endpoint)
    dist = dashboard_dist if dashboard_dist is not None else ctx.settings.dashboard_dist
    if (dist / "index.html").exists():
        add_dashboard(app, dist)  # registered last: its catch-all route must not shadow the API's
    else:

        @app.get("/")
        async def root() -> InfoOut:
            """Service info (the dashboard is served here once dashboard/dist is built)."""
            return health.info_of(ctx)

    return app


def run_api(settings: ApiSettings) -> int:
    ctx = build_context(settings, resolve_bootstrap(settings.kafka_bootstrap))
    uvicorn.run(create_app(ctx), host=settings.api_host, port=settings.api_port, log_level="info")
    return 0
