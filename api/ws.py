"""WebSocket endpoint ``/ws``: connection lifecycle and client operations.

Client → server messages (JSON text):

- ``{"op": "subscribe", "channels": [...], "symbols": [...], "venues": [...],
  "min_net_spread": 0.002, "all_instruments": true}`` — every field optional;
  channels among ``prices, arbitrage, summary, opportunities, episodes, health, funding``
  (default all); ``symbols``/``venues`` restrict (an opportunity needs both legs
  on listed venues; seed venue spellings such as ``gateio`` mean arbstream's ``gate``,
  as on REST); ``min_net_spread`` is a fraction like the events' ``net_spread``.
  Answered with a ``snapshot``, then deltas.
- ``{"op": "resync"}`` — a fresh ``snapshot`` (after a gap in ``seq``).
- ``{"op": "ping"}`` — ``pong``.

Anything else gets an ``error`` message and the connection stays open; the
input is never echoed back. See :mod:`api.stream` for server messages and
:mod:`api.hub` for queueing, coalescing and slow clients.

Limits (issue 13, decision 0014), each with a clear error: a handshake from a
browser page whose ``Origin`` is not allowed is refused (HTTP 403, see
:mod:`api.security`); beyond ``ws_max_connections`` sockets the handshake gets
HTTP 503; a message over ``ws_max_message_bytes`` gets ``message_too_large`` and
the socket closes (1009); ``symbols``/``venues`` longer than ``ws_max_list`` are
an ``invalid_subscription``; more than ``ws_snapshots_per_min`` subscribe/resync
ops a minute get ``rate_limited`` (the subscription is unchanged).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Response, WebSocket
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api.context import ApiContext, now_ns
from api.direct_ws import direct_writer
from api.funding_stream import FundingAlertOut, FundingEpisodeOut, FundingPairsUpdate
from api.hub import CHANNELS, Channel, Client, Filter, Limits, SlowClientError
from api.models import ArbitrageRow, EpisodeClosedOut, OpportunityOut, PriceEntry, SummaryOut
from api.models_health import VenueOut
from api.security import origin_allowed
from api.stream import AlertRow, OpenEpisodesUpdate, PriceUpdate, Snapshot
from api.views_prices import iso
from api.views_venues import seed_venue

log = logging.getLogger(__name__)

MAX_LIST = 1_000


class SubscribeOp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["subscribe"]
    channels: list[Channel] = Field(default_factory=lambda: list(CHANNELS), max_length=len(CHANNELS) * 2)
    symbols: list[str] | None = Field(default=None, max_length=MAX_LIST)
    venues: list[str] | None = Field(default=None, max_length=MAX_LIST)
    min_net_spread: Decimal | None = Field(default=None, ge=-1, le=1, allow_inf_nan=False)
    all_instruments: bool = True

    def to_filter(self) -> Filter:
        return Filter(
            channels=frozenset(self.channels),
            symbols=frozenset(s.upper() for s in self.symbols) if self.symbols is not None else None,
            venues=frozenset(seed_venue(v) for v in self.venues) if self.venues is not None else None,
            min_net_spread=self.min_net_spread,
            all_instruments=self.all_instruments,
        )


class WsError(BaseModel):
    code: Literal["malformed_json", "unknown_op", "invalid_subscription", "rate_limited", "message_too_large"]
    message: str


class WsPong(BaseModel):
    timestamp: str


MESSAGE_DATA: dict[str, Any] = {
    "market_summary": SummaryOut,
    "initial_prices": dict[str, dict[str, PriceEntry]],
    "price_update": PriceUpdate,
    "arbitrage_opportunities": list[AlertRow],
    "arbitrage_top": list[ArbitrageRow],
    "opportunity": OpportunityOut,
    "episode_closed": EpisodeClosedOut,
    "episodes": OpenEpisodesUpdate,
    "venue_health": VenueOut,
    "snapshot": Snapshot,
    "funding_pairs": FundingPairsUpdate,
    "funding_alert": FundingAlertOut,
    "funding_episode_closed": FundingEpisodeOut,
    "error": WsError,
    "pong": WsPong,
}

router = APIRouter()


@router.get("/api/ws-schema")
async def ws_schema() -> dict[str, Any]:
    """JSON Schema of `data` for each WebSocket message type (envelope: `{"type", "seq", "data"}`)
    and of the subscribe op. Not part of OpenAPI, which cannot describe a WebSocket."""
    schemas = {kind: TypeAdapter(t).json_schema(mode="serialization") for kind, t in MESSAGE_DATA.items()}
    return {"messages": schemas, "subscribe": SubscribeOp.model_json_schema()}


def _error(client: Client, code: str, message: str) -> None:
    client.offer_event("error", json.dumps({"code": code, "message": message}))  # fields of WsError


def _too_long(op: SubscribeOp, limit: int) -> str | None:
    for name, values in (("symbols", op.symbols), ("venues", op.venues)):
        if values is not None and len(values) > limit:
            return f"{name}: at most {limit} entries (got {len(values)}); omit the field to mean all"
    return None


def _rate_limited(client: Client) -> bool:
    retry_in = client.snapshot_retry_in(time.monotonic())
    if retry_in is None:
        return False
    per_min = client.limits.snapshots_per_min
    message = f"at most {per_min} subscribe/resync per minute (each sends a full snapshot); retry in {retry_in:.1f}s"
    _error(client, "rate_limited", message)
    return True


def handle_text(client: Client, text: str) -> None:
    """Apply one client message; problems become ``error`` messages."""
    try:
        message: Any = json.loads(text)
    except ValueError:
        _error(client, "malformed_json", "message is not valid JSON")
        return
    op = message.get("op") if isinstance(message, dict) else None
    if op == "subscribe":
        try:
            subscribe = SubscribeOp.model_validate(message)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            _error(client, "invalid_subscription", problems)
            return
        problem = _too_long(subscribe, client.limits.max_list)
        if problem is not None:
            _error(client, "invalid_subscription", problem)
        elif not _rate_limited(client):
            client.filter = subscribe.to_filter()
            client.request_snapshot()
    elif op == "resync":
        if not _rate_limited(client):
            client.request_snapshot()
    elif op == "ping":
        client.offer_event("pong", WsPong(timestamp=iso(now_ns())).model_dump_json())
    else:
        _error(client, "unknown_op", "expected an object with op: subscribe, resync or ping")


class TooLargeError(Exception):
    """A client message over ws_max_message_bytes: the socket is closed with 1009."""


async def _receive(websocket: WebSocket, client: Client) -> None:
    limit = client.limits.max_message_bytes
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        raw = message.get("bytes")
        size = len(raw) if raw is not None else len(text.encode()) if text is not None else 0
        if size > limit:
            raise TooLargeError(f"message of {size} bytes; at most {limit} bytes (ARBSTREAM_WS_MAX_MESSAGE_BYTES)")
        if text is None and raw is not None:
            text = raw.decode(errors="replace")
        handle_text(client, text or "")


async def _refuse(websocket: WebSocket, status: int, message: str) -> None:
    """Refuse the handshake with an HTTP status and a JSON body (or a bare 403 without the extension)."""
    log.warning("refusing WebSocket from %s: %s", websocket.client, message)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        body = json.dumps({"error": message, "detail": message}).encode()  # as every HTTP error (api.errors.error_body)
        headers = {"Retry-After": "5"} if status == 503 else None
        await websocket.send_denial_response(Response(body, status, headers, media_type="application/json"))
    else:
        await websocket.close(code=1008, reason=message[:120])


def _limits(ctx: ApiContext) -> Limits:
    s = ctx.settings
    return Limits(
        s.ws_queue_size,
        s.ws_coalesce_ms / 1000,
        s.ws_send_timeout_s,
        s.ws_max_list,
        s.ws_snapshots_per_min,
        s.ws_max_message_bytes,
    )


async def websocket_endpoint(websocket: WebSocket) -> None:
    ctx: ApiContext = websocket.app.state.ctx
    hub = ctx.hub
    assert hub is not None
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.headers.get("host"), ctx.settings.allowed_origins()):
        await _refuse(websocket, 403, f"origin {origin!r:.100} is not allowed (ARBSTREAM_CORS_ORIGINS)")
        return
    if hub.connections >= ctx.settings.ws_max_connections:
        await _refuse(websocket, 503, f"too many WebSocket connections (limit {ctx.settings.ws_max_connections})")
        return
    hub.connections += 1
    try:
        await _serve(websocket, ctx)
    finally:
        hub.connections -= 1


async def _serve(websocket: WebSocket, ctx: ApiContext) -> None:
    hub, publisher = ctx.hub, ctx.publisher
    assert hub is not None and publisher is not None
    await websocket.accept()
    # Never stream a half-loaded read model: wait until it has caught up.
    await ctx.model.ready.wait()
    client = Client(
        websocket.send_text, publisher.snapshot, _limits(ctx), ctx.metrics, direct_writer(dict(websocket.scope))
    )
    hub.add(client)
    for kind, data in publisher.initial_messages():
        client.offer_event(kind, data)
    sender = asyncio.create_task(client.run())
    receiver = asyncio.create_task(_receive(websocket, client))
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.remove(client)
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
    if sender in done and isinstance(sender.exception(), SlowClientError):
        ctx.metrics.ws_clients_dropped.inc()
        log.warning("dropping slow WebSocket client %s: %s", websocket.client, sender.exception())
        # The socket is not draining, so even the close frame may never go out: bound the wait.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code=1013, reason="too slow"), 1.0)
    elif receiver in done and isinstance(receiver.exception(), TooLargeError):
        error = json.dumps({"code": "message_too_large", "message": str(receiver.exception())})
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.send_now("error", error), 1.0)
            await asyncio.wait_for(websocket.close(code=1009, reason="message too large"), 1.0)
