"""The simulator's aiohttp server: every venue under ``/<venue>``, faults under ``/control``.

Fault injection (all ``POST``, ``venue`` may be ``all``):
  /control/drop?venue=V                 close every connection of V
  /control/stall?venue=V&seconds=S      keep connections open but send no data for S seconds
  /control/malformed?venue=V            send one malformed frame on every connection of V
  /control/gap?venue=V                  skip one sequence number on the next frame
  /control/dislocate?base=B&venue=V&bps=N&seconds=S   plant a cross-venue dislocation
``GET /control/status`` reports connections and subscriptions per venue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import orjson
import socketio
from aiohttp import WSMsgType, web

from ingest.simulator.base import BOOK, FUNDING, Frame, SimSession, VenueSim
from ingest.simulator.market import Market
from ingest.simulator.venues import sim_class
from schemas.market import Instrument

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Client:
    """One connected client, whatever the transport."""

    session: SimSession
    send_frame: Callable[[Frame], Awaitable[None]]
    close: Callable[[], Awaitable[None]]
    is_closed: Callable[[], bool]


@dataclass
class Simulator:
    instruments: list[Instrument]
    venues: list[str]
    tick_ms: int = 100
    funding_every_ms: int = 1000
    market: Market = field(init=False)
    sims: dict[str, VenueSim] = field(init=False)
    clients: dict[str, set[_Client]] = field(init=False)
    stalled_until: dict[str, float] = field(default_factory=dict)
    auto_dislocations: bool = True

    def __post_init__(self) -> None:
        tracked = [i for i in self.instruments if i.venue in self.venues]
        self.market = Market(tracked, auto_dislocation_every_ms=20_000 if self.auto_dislocations else 0)
        self.sims = {name: sim_class(name)(tracked) for name in self.venues}
        self.clients = {name: set() for name in self.venues}

    def app(self) -> web.Application:
        app = web.Application()
        for name, sim in self.sims.items():
            if sim.transport == "socketio":
                self._attach_socketio(app, name)
            else:
                for path in sim.ws_paths:
                    app.router.add_get(f"/{name}{path}", self._ws_handler(name, path))
            for path, handler in sim.rest_routes().items():
                app.router.add_route("*", f"/{name}{path}", handler)
        app.router.add_post("/control/{action}", self._control)
        app.router.add_get("/control/status", self._status)
        app.cleanup_ctx.append(self._pump_ctx)
        return app

    def _ws_handler(self, venue: str, path: str):  # type: ignore[no-untyped-def]
        async def handler(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
            await ws.prepare(request)

            async def send(frame: Frame) -> None:
                await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))

            async def close() -> None:
                await ws.close(code=1011, message=b"simulated drop")

            client = _Client(SimSession(venue, path, dict(request.query)), send, close, lambda: ws.closed)
            sim = self.sims[venue]
            self.clients[venue].add(client)
            try:
                await self._send(client, sim.on_open(client.session))
                async for msg in ws:
                    if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                        await self._send(client, sim.on_message(client.session, msg.data))
                    if client.session.close_requested:
                        # Abort the transport: the client sees an abnormal closure (1006), no close frame.
                        if request.transport is not None:
                            request.transport.close()
                        break
            finally:
                self.clients[venue].discard(client)
            return ws

        return handler

    def _attach_socketio(self, app: web.Application, venue: str) -> None:
        """Socket.IO venues (CoinDCX): frames are ``["event", data]`` JSON text on both sides."""
        server = socketio.AsyncServer(async_mode="aiohttp")
        server.attach(app, socketio_path=f"{venue}/socket.io")
        sim = self.sims[venue]
        by_sid: dict[str, _Client] = {}

        async def connect(sid: str, _environ: object, _auth: object = None) -> None:
            async def send(frame: Frame) -> None:
                event, data = orjson.loads(frame)
                await server.emit(event, data, to=sid)

            async def close() -> None:
                await server.disconnect(sid)

            client = _Client(SimSession(venue, "/socket.io", {}), send, close, lambda: sid not in by_sid)
            by_sid[sid] = client
            self.clients[venue].add(client)
            await self._send(client, sim.on_open(client.session))

        async def disconnect(sid: str, *_args: object) -> None:
            client = by_sid.pop(sid, None)
            if client is not None:
                self.clients[venue].discard(client)

        async def any_event(event: str, sid: str, data: object = None) -> None:
            client = by_sid.get(sid)
            if client is not None:
                await self._send(client, sim.on_message(client.session, orjson.dumps([event, data]).decode()))

        server.on("connect", connect)
        server.on("disconnect", disconnect)
        server.on("*", any_event)

    async def _send(self, client: _Client, frames: list[Frame]) -> None:
        for frame in frames:
            if client.is_closed():
                return
            with contextlib.suppress(ConnectionResetError):
                await client.send_frame(frame)

    async def _pump_ctx(self, _app: web.Application):  # type: ignore[no-untyped-def]
        task = asyncio.create_task(self._pump())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _pump(self) -> None:
        last_funding = 0
        while True:
            now_ms = time.time_ns() // 1_000_000
            self.market.step(now_ms)
            with_funding = now_ms - last_funding >= self.funding_every_ms
            if with_funding:
                last_funding = now_ms
            for venue, clients in self.clients.items():
                if self.stalled_until.get(venue, 0) > time.monotonic():
                    continue
                sim = self.sims[venue]
                for client in list(clients):
                    await self._send(client, self._frames_for(sim, client.session, now_ms, with_funding))
            await asyncio.sleep(self.tick_ms / 1000)

    def _frames_for(self, sim: VenueSim, session: SimSession, now_ms: int, with_funding: bool) -> list[Frame]:
        frames: list[Frame] = []
        for kind, native in sorted(session.subscriptions):
            inst = sim.by_native.get(native)
            if inst is None:
                continue
            if kind == BOOK:
                frames += sim.book_frames(session, inst, self.market.quote(inst, now_ms))
            elif kind == FUNDING and with_funding:
                frames += sim.funding_frames(session, inst, self.market.funding(inst, now_ms))
        return frames

    def _targets(self, venue: str) -> list[str]:
        if venue == "all":
            return list(self.clients)
        if venue not in self.clients:
            raise web.HTTPNotFound(text=f"venue {venue!r} is not simulated")
        return [venue]

    async def _control(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        query = request.query
        try:
            targets = self._targets(query.get("venue", "all"))
            if action == "drop":
                for venue in targets:
                    for client in list(self.clients[venue]):
                        await client.close()
            elif action == "stall":
                until = time.monotonic() + float(query.get("seconds", "30"))
                for venue in targets:
                    self.stalled_until[venue] = until
            elif action == "malformed":
                for venue in targets:
                    for client in list(self.clients[venue]):
                        await self._send(client, [self.sims[venue].malformed_frame()])
            elif action == "gap":
                for venue in targets:
                    for client in self.clients[venue]:
                        client.session.skip_sequence = True
            elif action == "dislocate":
                now_ms = time.time_ns() // 1_000_000
                seconds = float(query.get("seconds", "10"))
                for venue in targets:
                    self.market.plant(query["base"], venue, Decimal(query["bps"]), int(seconds * 1000), now_ms)
            else:
                raise web.HTTPNotFound(text=f"unknown control action {action!r}")
        except (KeyError, ValueError, InvalidOperation) as exc:
            raise web.HTTPBadRequest(text=f"bad parameters for {action}: {exc}") from exc
        return web.json_response({"ok": True, "action": action, "venues": targets})

    async def _status(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                venue: {
                    "connections": len(clients),
                    "subscriptions": sorted({f"{k}:{n}" for c in clients for k, n in c.session.subscriptions}),
                }
                for venue, clients in self.clients.items()
            }
        )


async def serve(simulator: Simulator, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(simulator.app())
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("simulator serving %s on http://%s:%d", ", ".join(simulator.venues), host, port)
    return runner
