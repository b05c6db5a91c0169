"""``GET /health`` and service info.

Status: ``starting`` (HTTP 503) until the read model has caught up with the
topics' end offsets seen at startup; then ``ok``, or ``degraded`` when the
broker does not answer or the consumer lags more than ``max_lag_records``.
Venue problems are reported per venue (and listed in ``venues_unhealthy``);
they are the venues' state, not the API's, so they do not degrade the status.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response

from api.context import ApiContext, now_ns
from api.models import BrokerOut, ConsumerOut, HealthOut, InfoOut
from api.routes import context
from api.views_prices import iso
from api.views_venues import unhealthy_venues, venues_out
from arbstream import __version__

router = APIRouter()


def info_of(ctx: ApiContext) -> InfoOut:
    return InfoOut(
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


@router.get("/health", responses={503: {"model": HealthOut, "description": "starting: read model still loading"}})
async def health(ctx: Annotated[ApiContext, Depends(context)], response: Response) -> HealthOut:
    """Overall status, broker reachability, consumer lag, and every venue's connection health."""
    follower, model, now = ctx.follower, ctx.model, now_ns()
    reachable = await follower.broker_reachable() if follower is not None else False
    lag = await follower.lag() if follower is not None else None
    lag_total = sum(lag.values()) if lag is not None else None
    reasons = []
    if not model.complete:
        reasons.append("read model loading")
    if not reachable:
        reasons.append("broker unreachable")
    if follower is not None and follower.error is not None:
        reasons.append(f"read model consumer stopped: {follower.error}")
    if lag_total is not None and lag_total > ctx.settings.max_lag_records:
        reasons.append(f"consumer lag {lag_total} records")
    status: Literal["starting", "ok", "degraded"] = (
        "starting" if not model.complete else ("degraded" if reasons else "ok")
    )
    if status == "starting":
        response.status_code = 503
    return HealthOut(
        status=status,
        complete=model.complete,
        broker=BrokerOut(reachable=reachable, bootstrap=ctx.bootstrap),
        consumer=ConsumerOut(
            caught_up=model.complete,
            lag_total=lag_total,
            lag_by_topic=lag or {},
            records_applied=follower.records_applied if follower is not None else 0,
            load_seconds=follower.load_seconds if follower is not None else None,
        ),
        venues=venues_out(model, ctx.universe, now, ctx.config),
        venues_unhealthy=unhealthy_venues(model),
        reasons=reasons,
        timestamp=iso(now),
    )
