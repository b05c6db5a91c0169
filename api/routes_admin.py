"""The API's administrative routes: ``POST /api/reload-config`` (the seed's) and ``/metrics``.

Kept apart from :mod:`api.routes` (the read-only views) so the one state-changing call and its
admin rule (:func:`api.security.require_admin`) are in one short module.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.context import ApiContext, now_ns
from api.control import request_ingest_reload
from api.models import ErrorOut, ReloadOut
from api.routes import context
from api.security import require_admin
from api.universe import configured_instruments
from api.views_prices import iso
from plumbing.errors import ConfigError

router = APIRouter()


@router.post(
    "/api/reload-config",
    dependencies=[Depends(require_admin)],
    responses={
        401: {"model": ErrorOut, "description": "ARBSTREAM_ADMIN_TOKEN is set: missing or wrong bearer token"},
        403: {"model": ErrorOut, "description": "no admin token configured and not a local call, or a foreign Origin"},
        422: {"model": ErrorOut, "description": "invalid symbol configuration"},
    },
)
async def reload_config(ctx: Annotated[ApiContext, Depends(context)]) -> ReloadOut:
    """Re-read ARBSTREAM_SYMBOLS_FILE (against the venues' listings) here, and ask ingest (over the
    `control` topic) to re-read its symbol settings and follow them: ingest re-plans its
    subscriptions and publishes the new universe on `instruments`, which every API follows; the
    worker picks up new `ticks.*` topics by itself. Answers once ingest was told, not once it applied."""
    try:
        configured = await asyncio.to_thread(configured_instruments, ctx.settings)
    except ConfigError as exc:
        raise HTTPException(422, detail=f"configuration kept unchanged: {exc}") from exc
    before = ctx.universe.ids
    ctx.universe.set_configured(configured)
    after = ctx.universe.ids
    notified = await request_ingest_reload(ctx.bootstrap, ctx.settings.namespace)
    told = "ingest re-reads its symbol settings" if notified else "ingest NOT reached (no broker)"
    return ReloadOut(
        status="success",
        message=f"configuration reloaded: {len(ctx.universe.symbols)} symbols on {len(ctx.universe.venues)} "
        f"venues ({len(after - before)} instruments added, {len(before - after)} removed); {told}",
        exchanges=sorted(ctx.universe.venues),
        total_symbols=len(ctx.universe.symbols),
        ingest_notified=notified,
        symbols=sorted(ctx.universe.symbols),
        venues=sorted(ctx.universe.venues),
        instruments=len(after),
        added=sorted(after - before),
        removed=sorted(before - after),
        timestamp=iso(now_ns()),
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(ctx: Annotated[ApiContext, Depends(context)]) -> Response:
    """Prometheus text format."""
    ctx.metrics.symbols.set(len(ctx.model.symbols))
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
