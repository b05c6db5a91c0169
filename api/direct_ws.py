"""WebSocket messages written straight to the socket, without one ASGI ``send`` per message (decision 0037).

Why: with 1,000 clients an alert is 1,000 messages, and each went through Starlette's
and uvicorn's ASGI ``send`` in its client's own sender task: ~50 µs of event-loop CPU
per message, one client after another, so the last client got the alert hundreds of
milliseconds after the first. Here the API's uvicorn protocol (a subclass of uvicorn's
``websockets-sansio`` one, passed as ``ws=``) offers each connection a
:class:`DirectWriter` through an ASGI scope extension. It frames text messages itself
(:func:`text_frame`) or, when permessage-deflate was negotiated, through the connection's
own ``websockets`` state machine (whose compressor keeps its context), refuses once the
close handshake has begun, and hands all the frames of one call to the transport in one
``write``, synchronously: :mod:`api.hub` can then deliver an event to every idle client
while publishing, with no task switch per client. Backpressure is uvicorn's: while the
transport's buffer is above its high-water mark the connection is not ``ready`` and the
client's sender task waits for it to drain, with the send timeout.

Under another server (or Starlette's TestClient) the extension is absent and the hub
falls back to the ASGI ``send``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

EXTENSION = "arbstream.direct_send"
_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")


class DirectWriter:
    """Synchronous text-message writes to one uvicorn WebSocket connection."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    def ready(self) -> bool:
        """Open, and the transport is taking writes (its buffer is below the high-water mark)."""
        p = self._protocol
        return p.handshake_complete and p.writable.is_set() and not p.close_sent and not p.disconnected

    def write(self, texts: Sequence[str]) -> None:
        """Frame every text as one message and write them all at once. Raises ConnectionResetError
        once the connection is closing or closed (nothing is written then)."""
        p = self._protocol
        if p.close_sent or p.disconnected:
            raise ConnectionResetError("WebSocket is closed")
        conn = p.conn
        if conn.state is not State.OPEN:  # the peer started the close handshake
            raise ConnectionResetError("WebSocket is closing")
        if conn.extensions:  # permessage-deflate: its compressor's state lives in the connection
            for text in texts:
                conn.send_text(text.encode())
            p.transport.write(b"".join(conn.data_to_send()))
        else:
            p.transport.write(b"".join([text_frame(text.encode()) for text in texts]))

    async def drained(self) -> None:
        """Returns once the transport takes writes again (at once when the connection is lost)."""
        await self._protocol.writable.wait()


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame as a server sends it (RFC 6455 §5.2): FIN + opcode 1,
    then the payload length in 7, 7+16 or 7+64 bits. Framing through ``websockets``' ``Frame``
    objects cost more than the send itself; with no extension negotiated the frame is only this."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65_536:
        return _HEAD16.pack(0x81, 126, size) + payload
    return _HEAD64.pack(0x81, 127, size) + payload


class DirectSendProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol, plus a :class:`DirectWriter` in each accepted
    connection's scope (``scope["extensions"]["arbstream.direct_send"]["writer"]``)."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # not refused during the upgrade: the ASGI app is about to run
            extensions = cast(dict[str, Any], self.scope["extensions"])
            extensions[EXTENSION] = {"writer": DirectWriter(self)}


def direct_writer(scope: dict[str, Any]) -> DirectWriter | None:
    """The connection's writer when the server is :class:`DirectSendProtocol`, else None."""
    extension = (scope.get("extensions") or {}).get(EXTENSION)
    writer = extension.get("writer") if isinstance(extension, dict) else None
    return writer if isinstance(writer, DirectWriter) else None
