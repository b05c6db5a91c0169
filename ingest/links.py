"""Transports under the venue runner: a plain WebSocket, or Socket.IO (CoinDCX).

Both expose the same small surface, so the runner's subscribe/heartbeat/watchdog
logic exists once. Socket.IO events are handed to the venue module as the JSON
text ``["event", data]``; numbers in them are decoded exactly (Decimal) and
re-encoded as strings, so no price passes through a binary float.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
import socketio
from websockets.asyncio.client import ClientConnection, connect


class Link(Protocol):
    async def send(self, frame: str) -> None: ...
    async def recv(self, timeout_s: float) -> str | bytes: ...
    def frames(self) -> AsyncIterator[str | bytes]: ...
    async def close(self, reason: str) -> None: ...
    def closed_reason(self) -> str | None: ...


class WebSocketLink:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: str) -> None:
        await self.ws.send(frame)

    async def recv(self, timeout_s: float) -> str | bytes:
        return await asyncio.wait_for(self.ws.recv(), timeout_s)

    async def frames(self) -> AsyncIterator[str | bytes]:
        async for frame in self.ws:
            yield frame

    async def close(self, reason: str) -> None:
        await self.ws.close(code=1000, reason=reason)

    def closed_reason(self) -> str | None:
        if self.ws.close_code is None:
            return None
        return f"closed with code {self.ws.close_code} {self.ws.close_reason}"


class _ExactJson:
    """The json module python-socketio uses, with fractional numbers decoded as Decimal."""

    loads = partial(json.loads, parse_float=Decimal)
    dumps = staticmethod(json.dumps)


_CLOSED = object()


class SocketIOLink:
    def __init__(self, client: socketio.AsyncClient) -> None:
        self.client = client
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=10_000)
        self.reason: str | None = None

        async def on_any(event: str, data: Any = None) -> None:
            await self.queue.put(orjson.dumps([event, data], default=str).decode())

        async def on_disconnect(reason: Any = None) -> None:
            self.reason = f"socket.io disconnected ({reason})"
            await self.queue.put(_CLOSED)

        client.on("*", on_any)
        client.on("disconnect", on_disconnect)

    async def send(self, frame: str) -> None:
        event, payload = orjson.loads(frame)
        await self.client.emit(event, payload)

    async def recv(self, timeout_s: float) -> str | bytes:
        item = await asyncio.wait_for(self.queue.get(), timeout_s)
        if item is _CLOSED:
            raise ConnectionError(self.reason or "socket.io disconnected")
        assert isinstance(item, str)
        return item

    async def frames(self) -> AsyncIterator[str | bytes]:
        while (item := await self.queue.get()) is not _CLOSED:
            assert isinstance(item, str)
            yield item

    async def close(self, reason: str) -> None:
        self.reason = reason
        await self.client.disconnect()

    def closed_reason(self) -> str | None:
        return self.reason


@asynccontextmanager
async def open_link(transport: str, url: str, headers: dict[str, str]) -> AsyncIterator[Link]:
    if transport == "socketio":
        # ws://host/prefix -> server http://host, socket.io path "prefix/socket.io"
        parts = urlsplit(url)
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        path = "/".join(p for p in (parts.path.strip("/"), "socket.io") if p)
        client = socketio.AsyncClient(reconnection=False, json=_ExactJson)
        link = SocketIOLink(client)
        await client.connect(
            f"{scheme}://{parts.netloc}", headers=headers, transports=["websocket"], socketio_path=path, wait_timeout=15
        )
        try:
            yield link
        finally:
            await client.disconnect()
        return
    async with connect(url, additional_headers=headers, ping_interval=None, open_timeout=15, max_size=2**24) as ws:
        yield WebSocketLink(ws)
