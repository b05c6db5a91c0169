"""The plain WebSocket link under the runner (aiohttp): frames in order, text and binary as sent,
a venue's close code in the reason, timeouts and server pings handled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from ingest.links import open_link

Handler = Callable[[web.WebSocketResponse], Awaitable[None]]


async def _serve(handler: Handler) -> tuple[web.AppRunner, str]:
    async def endpoint(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await handler(ws)
        return ws

    app = web.Application()
    app.router.add_get("/ws", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"ws://127.0.0.1:{port}/ws"


async def _frames(link_frames: AsyncIterator[str | bytes]) -> list[str | bytes]:
    return [frame async for frame in link_frames]


async def test_frames_arrive_as_sent_and_the_close_code_is_the_reason() -> None:
    async def venue(ws: web.WebSocketResponse) -> None:
        assert await ws.receive_str() == '{"op":"subscribe"}'
        await ws.ping(b"keepalive")  # answered by the link (autoping), not handed to the runner
        await ws.send_str('{"px":"1.5"}')
        await ws.send_bytes(b'{"px":"1.6"}')
        await ws.close(code=4001, message=b"kicked")

    server, url = await _serve(venue)
    try:
        async with aiohttp.ClientSession() as http, open_link("websocket", url, {}, http) as link:
            assert link.closed_reason() is None
            await link.send('{"op":"subscribe"}')
            assert await _frames(link.frames()) == ['{"px":"1.5"}', b'{"px":"1.6"}']
            assert link.closed_reason() == "closed with code 4001"
    finally:
        await server.cleanup()


async def test_recv_times_out_and_a_closed_socket_raises_with_its_reason() -> None:
    release = asyncio.Event()

    async def venue(ws: web.WebSocketResponse) -> None:
        await release.wait()
        await ws.close(code=1000)

    server, url = await _serve(venue)
    try:
        async with aiohttp.ClientSession() as http, open_link("websocket", url, {}, http) as link:
            with pytest.raises(TimeoutError):
                await link.recv(0.2)
            release.set()
            with pytest.raises(ConnectionError, match="closed with code 1000"):
                await link.recv(5)
    finally:
        await server.cleanup()
