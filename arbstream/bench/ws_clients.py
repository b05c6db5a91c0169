"""The WebSocket stage's subscribers, in a process of their own, as cheap as a client can be.

Why a process: the stage's tick producer and 1,000 clients shared one event loop, so
reading an alert's 2,000 messages held back the next dislocated tick on its way to
Kafka after it had been stamped, and the next alert looked late by the clients' own
reading time. Why raw recording: 1,000 clients on other machines read in parallel; here
they share one process on the API's machine, so each socket's bytes are only stamped
and kept while timing (``data_received``: a clock read and an append, no frame parsing,
no task switch) and parsed after the run with the ``websockets`` sans-I/O client. A
frame's arrival is the arrival of the bytes that completed it. Pings that come during
the timed run are not answered; uvicorn's first one comes 20 s after connecting and it
waits another 20 s for the pong, longer than a level lasts.

Protocol (one JSON line each way): ``python -m arbstream.bench.ws_clients URL COUNT
SUBSCRIBE`` connects COUNT clients and sends each SUBSCRIBE; once every one has its
snapshot it prints ``{"ready": setup_s}`` (or ``{"error": ...}`` and exits 1), then
records until a line arrives on stdin, and prints ``{"cpu_s": ..., "arrivals":
[[[arrived_ns, event_id, receipt_ts_ns, emitted_ts_ns], ...] per client]}`` — the CPU
it spent between ready and stop (the parsing after stop not included), and every alert
each client received.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, cast

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import WebSocketURI, parse_uri

from plumbing import gc_tuning

SETUP_TIMEOUT_S = 120.0
"""Until every client has its subscription snapshot."""

Arrival = tuple[int, str, int, int | None]
"""(arrival wall clock ns, alert event_id, the dislocated tick's receipt_ts_ns, the worker's
emitted_ts_ns): arrival minus emitted is the part after the worker (Kafka, the API, the socket)."""


def opportunities(message: Any) -> list[dict[str, Any]]:
    """Alerts in one relayed message: a top-level ``opportunity`` message, its data one event or a list."""
    if not isinstance(message, dict) or "opportunity" not in (message.get("type"), message.get("event")):
        return []
    found, stack = [], [message]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "event_id" in item and isinstance(item.get("receipt_ts_ns"), int):
                found.append(item)
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def decode_arrivals(raw: list[tuple[int, str]]) -> list[Arrival]:
    """One client's alerts, each once (the first time it arrived)."""
    seen: dict[str, Arrival] = {}
    for arrived_ns, text in raw:
        for event in opportunities(orjson.loads(text)):
            emitted = event.get("emitted_ts_ns")
            arrival = (
                arrived_ns,
                event["event_id"],
                event["receipt_ts_ns"],
                emitted if isinstance(emitted, int) else None,
            )
            seen.setdefault(event["event_id"], arrival)
    return list(seen.values())


class Recorder(asyncio.Protocol):
    """One WebSocket client: live until subscribed, then only stamps and keeps what arrives."""

    def __init__(self, uri: WebSocketURI, subscribe: str, subscribed: asyncio.Future[None]) -> None:
        self._ws = ClientProtocol(uri, max_size=None)
        self._subscribe = subscribe.encode()
        self.subscribed = subscribed
        self.recording = False
        self.chunks: list[tuple[int, bytes]] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._ws.send_request(self._ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self.recording:
            self.chunks.append((time.time_ns(), data))
            return
        self._ws.receive_data(data)
        for event in self._ws.events_received():
            if isinstance(event, Response):
                if self._ws.handshake_exc is not None:
                    self._fail(f"handshake refused: {self._ws.handshake_exc!r}")
                else:
                    self._ws.send_text(self._subscribe)
            elif (
                isinstance(event, Frame)
                and event.opcode is Opcode.TEXT
                and bytes(event.data).startswith(b'{"type":"snapshot"')
                and not self.subscribed.done()
            ):
                self.subscribed.set_result(None)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost before the snapshot: {exc!r}")

    def messages(self) -> list[tuple[int, str]]:
        """Every text message recorded, with the arrival of the bytes that completed it."""
        texts = []
        for arrived_ns, chunk in self.chunks:
            self._ws.receive_data(chunk)
            for event in self._ws.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    texts.append((arrived_ns, bytes(event.data).decode()))
        return texts

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, why: str) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(why))

    def _flush(self) -> None:
        if self._transport is not None and (out := self._ws.data_to_send()):
            self._transport.write(b"".join(out))


def _say(payload: object) -> None:
    sys.stdout.buffer.write(orjson.dumps(payload) + b"\n")
    sys.stdout.buffer.flush()


async def _connect(url: str, count: int, subscribe: str) -> list[Recorder]:
    loop = asyncio.get_running_loop()
    uri = parse_uri(url)
    clients: list[Recorder] = []
    for _ in range(count):
        client = Recorder(uri, subscribe, loop.create_future())
        try:
            await loop.create_connection(lambda c=client: c, uri.host, uri.port)  # type: ignore[misc]
        except OSError as exc:
            raise ConnectionError(f"client {len(clients) + 1} of {count} could not connect to {url}: {exc!r}") from exc
        clients.append(client)
    return clients


async def run(url: str, count: int, subscribe: str) -> int:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    started = time.monotonic()
    try:
        clients = await _connect(url, count, subscribe)
        await asyncio.wait_for(asyncio.gather(*(c.subscribed for c in clients)), SETUP_TIMEOUT_S)
    except (ConnectionError, TimeoutError) as exc:
        _say({"error": str(exc) or f"not every client had its snapshot after {SETUP_TIMEOUT_S:.0f}s"})
        return 1
    # A full collection while recording would stamp every socket it held up late (plumbing.gc_tuning).
    gc_tuning.tune()
    gc_tuning.freeze_startup_objects()
    for client in clients:
        client.recording = True
    _say({"ready": time.monotonic() - started})
    cpu0 = time.process_time()
    await stdin.readline()
    cpu_s = time.process_time() - cpu0
    for client in clients:
        client.recording = False
        client.abort()
    _say({"cpu_s": cpu_s, "arrivals": [decode_arrivals(c.messages()) for c in clients]})
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(run(sys.argv[1], int(sys.argv[2]), sys.argv[3])))
