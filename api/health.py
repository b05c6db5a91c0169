"""``GET /health`` and service info.

Status: ``starting`` | ``down`` (HTTP 503) | ``degraded`` | ``ok``, by the rule
in :mod:`api.health_rule` (venues streaming, data freshness, the supervised
tasks, broker and lag; decision 0014), with one reason per problem.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Response

from api.context import ApiContext, now_ns
from api.health_rule import NS, ConnectionSignal, Signals, Thresholds, verdict
from api.models_health import BrokerOut, ConsumerOut, HealthOut, InfoOut, TaskOut, WorkerOut
from api.routes import context
from api.views_prices import iso
from api.views_venues import known_venues, unhealthy_venues, venues_out
from api.wire import wire
from plumbing import __version__

router = APIRouter()


def info_of(ctx: ApiContext) -> InfoOut:
    return InfoOut(
        message="arbstream: cross-venue arbitrage of crypto perpetual futures",
        status="running",
        service="arbstream",
        version=__version__,
        namespace=ctx.settings.namespace,
        complete=ctx.model.complete,
        demo=ctx.settings.demo,
        max_quote_age_ms=ctx.settings.max_quote_age_ms,
        max_quote_age_ms_by_venue=ctx.settings.max_quote_age_ms_by_venue,
        docs="/docs",
        websocket="/ws",
    )


@router.get("/api/info")
async def info(ctx: Annotated[ApiContext, Depends(context)]) -> InfoOut:
    """Service name, version, topic namespace, whether the read model is loaded."""
    return info_of(ctx)


def signals_of(ctx: ApiContext, now: int, reachable: bool | None, lag_total: int | None) -> Signals:
    model, follower = ctx.model, ctx.follower
    newest = model.last_tick_ts_ns
    return Signals(
        loaded=model.complete,
        tasks=[t.report() for t in ctx.tasks],
        follower_live=follower.live if follower is not None else None,
        broker_reachable=reachable,
        lag_total=lag_total,
        connections=[
            ConnectionSignal(h.venue, h.connection, h.state.value, (now - h.exchange_ts_ns) / NS)
            for h in model.health.by_connection.values()
        ],
        venues=known_venues(model, ctx.universe),
        newest_tick_age_s=(now - newest) / NS if newest is not None else None,
        worker_report_ages_s=[(now - w.ts_ns) / NS for w in model.workers.values()],
    )


def thresholds_of(ctx: ApiContext) -> Thresholds:
    s = ctx.settings
    return Thresholds(s.health_report_max_age_s, s.health_max_data_age_s, s.max_lag_records, s.health_worker_max_age_s)


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "starting (read model loading) or down (no live data)"}},
)
async def health(ctx: Annotated[ApiContext, Depends(context)]) -> Response:
    """Overall status (ok / degraded / down / starting, rule in api/health_rule.py), broker reachability,
    consumer lag, the supervised background tasks, and every venue's connection health."""
    follower, model, now = ctx.follower, ctx.model, now_ns()
    model.prune_workers(now - int(ctx.settings.workers_gone_keep_s * NS))
    reachable = await follower.broker_reachable() if follower is not None else None
    lag = await follower.lag() if follower is not None else None
    lag_total = sum(lag.values()) if lag is not None else None
    judged = verdict(signals_of(ctx, now, reachable, lag_total), thresholds_of(ctx))
    reasons = judged.reasons
    out = HealthOut(
        status=judged.status,
        complete=model.complete,
        broker=BrokerOut(reachable=reachable is True, bootstrap=ctx.bootstrap),
        consumer=ConsumerOut(
            caught_up=model.complete,
            lag_total=lag_total,
            lag_by_topic=lag or {},
            records_applied=follower.records_applied if follower is not None else 0,
            load_seconds=follower.load_seconds if follower is not None else None,
        ),
        venues=venues_out(model, ctx.universe, now, ctx.config),
        venues_unhealthy=unhealthy_venues(model),
        venues_streaming=judged.venues_streaming,
        tasks=[TaskOut(**asdict(t.report())) for t in ctx.tasks],
        workers=[
            WorkerOut(
                **{k: v for k, v in msgspec.structs.asdict(w).items() if k in WorkerOut.model_fields},
                reported_age_ms=max(0, now - w.ts_ns) // 1_000_000,
                alive=now - w.ts_ns <= ctx.settings.health_worker_max_age_s * NS,
            )
            for _, w in sorted(model.workers.items())
        ],
        reasons=reasons,
        price_fetcher_active=bool(judged.venues_streaming),
        websocket_connections=len(ctx.hub.clients) if ctx.hub is not None else 0,
        timestamp=iso(now),
    )
    return wire(out, status_code=judged.http_status)  # Decimals (taker fees) as JSON numbers
