"""api.direct_ws against the installed uvicorn: frames written straight to the socket reach real
clients (with and without permessage-deflate), a closing connection refuses writes, and a client
that stops reading makes the writer not ready until its socket drains."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from api.direct_ws import DirectWriter, direct_writer, text_frame
from tests.test_api_support import serve


class Probe:
    """What the server side saw, for the test to assert on."""

    def __init__(self) -> None:
        self.writers: list[DirectWriter | None] = []
        self.results: list[Any] = []


def _app(probe: Probe, script: str) -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        writer = direct_writer(dict(websocket.scope))
        probe.writers.append(writer)
        assert writer is not None
        if script == "three":
            writer.write(["one", "two"])
            writer.write(["three"])
            await websocket.receive()
        elif script == "closed":
            await websocket.close(code=1000)
            try:
                writer.write(["late"])
                probe.results.append("written")
            except ConnectionResetError as exc:
                probe.results.append(str(exc))
        elif script == "flood":
            await _flood(writer, probe)
            await websocket.receive()

    return app


async def _flood(writer: DirectWriter, probe: Probe) -> None:
    """Write 64 KB messages until the transport stops taking writes, then wait for it to drain."""
    chunk = "x" * 65_536
    written = 0
    while writer.ready() and written < 2_000:
        writer.write([chunk])
        written += 1
    probe.results.append(("paused", writer.ready(), written))
    await asyncio.wait_for(writer.drained(), 10)
    probe.results.append(("drained", writer.ready()))


@pytest.fixture
def probe() -> Probe:
    return Probe()


@contextmanager
def _served(probe: Probe, script: str) -> Iterator[str]:
    with serve(_app(probe, script)) as base:
        yield base.replace("http://", "ws://") + "/ws"


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_directly_written_frames_arrive_in_order(probe: Probe, compression: str | None) -> None:
    with _served(probe, "three") as url:
        async with connect(url, compression=compression) as ws:
            received = [await asyncio.wait_for(ws.recv(), 5) for _ in range(3)]
            assert received == ["one", "two", "three"]
            deflate = any("permessage-deflate" in str(e.name) for e in ws.protocol.extensions)
            assert deflate is (compression == "deflate")  # the frames went through the negotiated extension
    assert len(probe.writers) == 1 and probe.writers[0] is not None


async def test_a_closing_connection_refuses_direct_writes(probe: Probe) -> None:
    with _served(probe, "closed") as url:
        async with connect(url) as ws:
            with pytest.raises(Exception):  # noqa: B017 - the server closed it: any close exception
                await asyncio.wait_for(ws.recv(), 5)
            for _ in range(100):
                if probe.results:
                    break
                await asyncio.sleep(0.02)
    assert probe.results == ["WebSocket is closed"]


async def test_a_client_that_stops_reading_makes_the_writer_wait_until_it_drains(probe: Probe) -> None:
    with _served(probe, "flood") as url:
        host, port = url.removeprefix("ws://").split("/")[0].split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: fixes the TCP window
        sock.connect((host, int(port)))
        async with connect(url, sock=sock, max_queue=1, compression=None, max_size=None) as ws:
            for _ in range(200):
                if probe.results:
                    break
                await asyncio.sleep(0.02)
            paused, ready, written = probe.results[0]
            assert (paused, ready) == ("paused", False)
            assert 0 < written < 2_000  # the buffer filled long before the cap
            received = 0
            while len(probe.results) < 2:
                await asyncio.wait_for(ws.recv(), 5)
                received += 1
            assert probe.results[1] == ("drained", True)
            assert received <= written
            ws.transport.abort()  # no close handshake behind megabytes of unread frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 200_000])
def test_a_text_frame_is_what_websockets_would_send(size: int) -> None:
    payload = ("é" * size).encode()[:size]  # multi-byte text cut anywhere: the length is in bytes
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
