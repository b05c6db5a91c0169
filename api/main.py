"""FastAPI application factory and ``arbstream api`` entry point."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import errors, funding_routes, health, routes, routes_admin, views_backtests
from api.context import ApiContext
from api.dashboard import add_dashboard
from api.direct_ws import DirectSendProtocol
from api.follower import Follower, Topics
from api.history import SpreadHistory
from api.hub import Hub
from api.metrics import ApiMetrics
from api.models_health import InfoOut
from api.readmodel import ReadModel
from api.settings import ApiSettings
from api.stream import Publisher
from api.supervise import Backoff, Supervisor
from api.universe import Universe, load_universe
from api.ws import router as ws_router
from api.ws import websocket_endpoint
from plumbing import __version__, gc_tuning
from plumbing.kafka import resolve_bootstrap
from plumbing.topic_configs import align_topic_configs
from schemas.topics import EVENTS_CONFIG, FUNDING_OPPORTUNITIES, HEALTH_CONFIG, topic_name

log = logging.getLogger(__name__)

DESCRIPTION = """Cross-venue arbitrage of crypto perpetual futures, from the processors' state.

Prices are per ONE base unit; Decimal numbers are JSON numbers with their exact digits; data endpoints
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
    # The views show only the tracked universe: a removed or delisted instrument's last quote
    # (kept by the compacted topics) disappears as soon as the universe says so.
    ctx.model.track(ctx.universe.tracks)
    ctx.universe.listen(ctx.model.retrack)
    if ctx.model.history is None:
        ctx.model.attach_history(
            SpreadHistory(ctx.config.quote_bridges, settings.spread_history_points, settings.spread_history_interval_ms)
        )
    # Read when scraped: what the API holds in memory, each bounded (a soak samples them).
    model_held = ctx.model
    metrics.alerts_held.set_function(lambda: len(model_held.alerts))
    metrics.closed_held.set_function(lambda: len(model_held.closed))
    history = model_held.history
    if history is not None:  # the spread history is most of the API's memory at market size
        metrics.history_samples.set_function(lambda: history.samples)
        metrics.history_pairs.set_function(lambda: history.pairs)
    ctx.hub = Hub(metrics)
    ctx.publisher = Publisher(ctx, ctx.hub)
    if bootstrap is not None:
        topics = Topics.from_settings(settings)
        ctx.follower = Follower(
            bootstrap,
            topics,
            ctx.model,
            ctx.publisher.on_changes,
            metrics,
            settings.discover_interval_s,
            events_lookback_s=settings.events_lookback_s,
            events_keep={topics.opportunities: settings.alerts_keep, topics.episodes: settings.episodes_keep},
        )
        ctx.follower.universe = ctx.universe  # ingest's instruments/listings topics feed it
    ctx.tasks = supervised_tasks(ctx)
    funding_routes.attach_funding(ctx)
    return ctx


def supervised_tasks(ctx: ApiContext) -> list[Supervisor]:
    """The API's background jobs, each restarted with backoff after a failure (api/supervise.py)."""
    settings, publisher = ctx.settings, ctx.publisher
    assert publisher is not None
    backoff = Backoff(settings.task_backoff_initial_s, settings.task_backoff_max_s)
    tasks = [Supervisor("periodic-push", publisher.run_periodic, critical=False, backoff=backoff)]
    if ctx.follower is not None:
        # Critical: while it is down the model is frozen, so data endpoints answer 503.
        tasks.insert(0, Supervisor("read-model-follower", ctx.follower.run, critical=True, backoff=backoff))
    return tasks


async def align_read_topics(settings: ApiSettings, bootstrap: str) -> None:
    """Topics created by older versions keep Kafka's 7-day/1 GiB segments, under which the
    health topic's 1 h retention never applied: bring their settings up to date (issue 13)."""
    topics = Topics.from_settings(settings)
    funding = topic_name(FUNDING_OPPORTUNITIES, settings.namespace)
    wanted = {t: EVENTS_CONFIG for t in (topics.opportunities, topics.episodes, funding)}
    wanted[topics.health] = HEALTH_CONFIG
    try:
        await align_topic_configs(bootstrap, wanted)
    except Exception as exc:  # noqa: BLE001 - best effort: the API serves without it, and says why
        log.warning("could not update the settings of %s (start-up will grow with uptime): %r", sorted(wanted), exc)


def create_app(
    ctx: ApiContext, dashboard_dist: Path | None = None, on_started: Callable[[], object] | None = None
) -> FastAPI:
    """``on_started`` runs once the background tasks have started (the service's entry point
    freezes its startup objects there, :mod:`plumbing.gc_tuning`)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for task in ctx.tasks:
            task.start()
        if on_started is not None:
            on_started()
        align = None
        if ctx.bootstrap is not None and ctx.settings.align_topic_configs:
            align = asyncio.create_task(align_read_topics(ctx.settings, ctx.bootstrap))
        try:
            yield
        finally:
            if align is not None:
                align.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await align
            for task in reversed(ctx.tasks):
                await task.stop()

    app = FastAPI(title="arbstream", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.ctx = ctx
    app.add_middleware(
        CORSMiddleware, allow_origins=ctx.settings.allowed_origins(), allow_methods=["GET", "POST"], allow_headers=["*"]
    )
    # HTTP errors keep the seed's {"error": ...} field beside FastAPI's detail (issue 14), 422s too.
    app.add_exception_handler(StarletteHTTPException, errors.error_body)
    app.add_exception_handler(RequestValidationError, errors.validation_error_body)
    app.include_router(health.router)
    app.include_router(routes.router)
    app.include_router(routes_admin.router)
    app.include_router(ws_router)
    app.include_router(views_backtests.router)
    app.include_router(funding_routes.router)
    app.add_api_websocket_route("/ws", websocket_endpoint)
    dist = dashboard_dist if dashboard_dist is not None else ctx.settings.dashboard_dist
    if (dist / "index.html").exists():
        # Registered last: its catch-all route must not shadow the API's. "/" answers JSON to non-browsers.
        add_dashboard(app, dist, lambda: health.info_of(ctx))
    else:

        @app.get("/")
        async def root() -> InfoOut:
            """Service info (the dashboard is served here once dashboard/dist is built)."""
            return health.info_of(ctx)

    return app


def run_api(settings: ApiSettings) -> int:
    gc_tuning.tune()
    ctx = build_context(settings, resolve_bootstrap(settings.kafka_bootstrap))
    uvicorn.run(
        create_app(ctx, on_started=gc_tuning.freeze_startup_objects),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        ws=DirectSendProtocol,  # frames written straight to the socket (api.direct_ws, decision 0037)
        # Protocol-level hard stop (1009); below it /ws answers an oversized message with a clear error.
        ws_max_size=4 * settings.ws_max_message_bytes,
    )
    return 0
