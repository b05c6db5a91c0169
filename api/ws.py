"""WebSocket endpoint ``/ws``: connection lifecycle and client operations.

Client → server messages (JSON text):

- ``{"op": "subscribe", "channels": [...], "symbols": [...], "venues": [...],
  "min_net_spread": 0.002, "all_instruments": true}`` — every field optional;
  channels among ``prices, arbitrage, summary, opportunities, episodes, health``
  (default all); ``symbols``/``venues`` restrict (an opportunity needs both legs
  on listed venues); ``min_net_spread`` is a fraction like the events'
  ``net_spread``. Answered with a ``snapshot``, then deltas.
- ``{"op": "resync"}`` — a fresh ``snapshot`` (after a gap in ``seq``).
- ``{"op": "ping"}`` — ``pong``.

Anything else gets an ``error`` message and the connection stays open; the
input is never echoed back. See :mod:`api.stream` for server messages and
:mod:`api.hub` for queueing, coalescing and slow clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from api.context import ApiContext, now_ns
from api.hub import CHANNELS, Channel, Client, Filter, Limits, SlowClientError
from api.models import ArbitrageRow, EpisodeClosedOut, OpportunityOut, PriceEntry, SummaryOut, VenueOut
from api.stream import OpenEpisodesUpdate, PriceUpdate, Snapshot
from api.views_prices import iso

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
            venues=frozenset(v.lower() for v in self.venues) if self.venues is not None else None,
            min_net_spread=self.min_net_spread,
            all_instruments=self.all_instruments,
        )


class WsError(BaseModel):
    code: Literal["malformed_json", "unknown_op", "invalid_subscription"]
    message: str


class WsPong(BaseModel):
    timestamp: str


MESSAGE_DATA: dict[str, Any] = {
    "market_summary": SummaryOut,
    "initial_prices": dict[str, dict[str, PriceEntry]],
    "price_update": PriceUpdate,
    "arbitrage_opportunities": list[ArbitrageRow],
    "opportunity": OpportunityOut,
    "episode_closed": EpisodeClosedOut,
    "episodes": OpenEpisodesUpdate,
    "venue_health": VenueOut,
    "snapshot": Snapshot,
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
            client.filter = SubscribeOp.model_validate(message).to_filter()
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            _error(client, "invalid_subscription", problems)
            return
        client.request_snapshot()
    elif op == "resync":
        client.request_snapshot()
    elif op == "ping":
        client.offer_event("pong", WsPong(timestamp=iso(now_ns())).model_dump_json())
    else:
        _error(client, "unknown_op", "expected an object with op: subscribe, resync or ping")


async def _receive(websocket: WebSocket, client: Client) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None and message.get("bytes") is not None:
            text = message["bytes"].decode(errors="replace")
        handle_text(client, text or "")


async def websocket_endpoint(websocket: WebSocket) -> None:
    ctx: ApiContext = websocket.app.state.ctx
    hub, publisher = ctx.hub, ctx.publisher
    assert hub is not None and publisher is not None
    await websocket.accept()
    # Never stream a half-loaded read model: wait until it has caught up.
    await ctx.model.ready.wait()
    settings = ctx.settings
    limits = Limits(settings.ws_queue_size, settings.ws_coalesce_ms / 1000, settings.ws_send_timeout_s)
    client = Client(websocket.send_text, publisher.snapshot, limits, ctx.metrics)
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
