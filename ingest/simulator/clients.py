"""One connected simulator client, whatever the transport, and how the pump writes to it.

WebSocket clients get each pump turn's frames in ONE transport write: the frames are encoded
here (RFC 6455 server frames are unmasked: a 2/4/10-byte header and the payload), because one
``send_str`` per frame costs a system call per frame, which caps the simulator far below the
market's rate. Control frames (pong, close) still go through aiohttp's writer; both write the
same transport synchronously, so frames never interleave. Socket.IO clients (CoinDCX) emit
frame by frame through python-socketio.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
import socketio
from aiohttp import web

from ingest.simulator.base import Frame, SimSession

if TYPE_CHECKING:
    from ingest.simulator.server import Simulator

WRITE_BUFFER_LIMIT = 4 * 2**20
"""A client with this much unsent data skips pump turns until it catches up."""
_TEXT, _BINARY = 0x81, 0x82  # FIN + opcode


@dataclass(eq=False)
class SimClient:
    session: SimSession
    send_frame: Callable[[Frame], Awaitable[None]]
    """One frame through the transport's own framing (replies, faults)."""
    send_batch: Callable[[list[Frame]], Awaitable[None]]
    """A pump turn's frames, in order."""
    close: Callable[[], Awaitable[None]]
    is_closed: Callable[[], bool]
    backlogged: Callable[[], bool] = lambda: False


def encode_ws_frames(frames: list[Frame]) -> bytes:
    """Unmasked, unfragmented WebSocket frames (text for str, binary for bytes), concatenated."""
    parts: list[bytes] = []
    for frame in frames:
        payload, opcode = (frame.encode(), _TEXT) if isinstance(frame, str) else (frame, _BINARY)
        size = len(payload)
        if size < 126:
            parts.append(bytes((opcode, size)))
        elif size < 65536:
            parts.append(struct.pack("!BBH", opcode, 126, size))
        else:
            parts.append(struct.pack("!BBQ", opcode, 127, size))
        parts.append(payload)
    return b"".join(parts)


def websocket_client(session: SimSession, ws: web.WebSocketResponse, request: web.Request) -> SimClient:
    transport = request.transport

    async def send_frame(frame: Frame) -> None:
        await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))

    async def send_batch(frames: list[Frame]) -> None:
        if transport is None or transport.is_closing() or ws.closed:
            return
        transport.write(encode_ws_frames(frames))

    async def close() -> None:
        await ws.close(code=1011, message=b"simulated drop")

    def backlogged() -> bool:
        return transport is not None and transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT

    return SimClient(session, send_frame, send_batch, close, lambda: ws.closed, backlogged)


def socketio_clients(app: web.Application, simulator: Simulator, venue: str) -> None:
    """Socket.IO venues (CoinDCX): frames are ``["event", data]`` JSON text on both sides."""
    server = socketio.AsyncServer(async_mode="aiohttp")
    server.attach(app, socketio_path=f"{venue}/socket.io")
    sim = simulator.sims[venue]
    by_sid: dict[str, SimClient] = {}

    async def connect(sid: str, _environ: object, _auth: object = None) -> None:
        async def send(frame: Frame) -> None:
            event, data = orjson.loads(frame)
            await server.emit(event, data, to=sid)

        async def send_batch(frames: list[Frame]) -> None:
            for frame in frames:
                if sid not in by_sid:
                    return
                await send(frame)

        async def close() -> None:
            await server.disconnect(sid)

        client = SimClient(SimSession(venue, "/socket.io", {}), send, send_batch, close, lambda: sid not in by_sid)
        by_sid[sid] = client
        simulator.clients[venue].add(client)
        await simulator.send(client, sim.on_open(client.session))

    async def disconnect(sid: str, *_args: object) -> None:
        client = by_sid.pop(sid, None)
        if client is not None:
            simulator.clients[venue].discard(client)

    async def any_event(event: str, sid: str, data: object = None) -> None:
        client = by_sid.get(sid)
        if client is not None:
            await simulator.send(client, sim.on_message(client.session, orjson.dumps([event, data]).decode()))

    server.on("connect", connect)
    server.on("disconnect", disconnect)
    server.on("*", any_event)
