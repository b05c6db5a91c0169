"""The simulator's aiohttp server: every venue under ``/<venue>``, faults under ``/control``.

Fault injection (all ``POST``, ``venue`` may be ``all``):
  /control/drop?venue=V                 close every connection of V
  /control/stall?venue=V&seconds=S      keep connections open but send no data for S seconds
  /control/malformed?venue=V            send one malformed frame on every connection of V
  /control/gap?venue=V                  skip one sequence number on the next frame
  /control/dislocate?base=B&venue=V&bps=N&seconds=S   plant a cross-venue dislocation
  /control/carry?base=B&venue=V&rate=R[&seconds=S][&settle_in=S]   fix V's funding rate of B at R
      per interval (a planted carry; without seconds until replaced); settle_in: its next funding
      time is that many seconds away, then every interval after (a settlement within a test)
``GET /control/carries`` lists the planted carries (``ingest.simulator.carry``).
``GET /control/status`` reports connections and subscriptions per venue; ``GET /control/stats``
the pump's counters (updates sent, updates dropped for slow clients or a late pump) and rates.

Pacing: each instrument updates on its own schedule (``ingest.simulator.schedule``) at its
``rates`` entry (``arbstream simulate``: the market's total spread heavy-tailed by 24 h volume);
without ``rates``, every instrument updates every ``tick_ms`` as before. The pump wakes every
``tick_ms`` (``0``: as fast as it can, every subscribed instrument each turn) and writes each
client's frames of that turn in one transport write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import orjson
from aiohttp import WSMsgType, web

from ingest.simulator.base import BOOK, FUNDING, Frame, RestHandler, SimSession, VenueSim
from ingest.simulator.carry import default_carry
from ingest.simulator.clients import SimClient, socketio_clients, websocket_client
from ingest.simulator.funding_history import with_history_routes
from ingest.simulator.listing_routes import listing_routes
from ingest.simulator.market import Market, PlantedCarry, SimFunding, SimQuote
from ingest.simulator.schedule import FLOOR_PER_S, NS, Schedule, uniform_rates
from ingest.simulator.venues import sim_class
from schemas.market import Instrument

log = logging.getLogger(__name__)
BURST_EVERY_NS = NS // 2
"""While a dislocation is planted, its base updates on every venue at least this often: volatile
moments are busy, and a tail symbol's legs must both be fresh for the worker to see the spread."""


@dataclass
class Simulator:
    instruments: list[Instrument]
    venues: list[str]
    tick_ms: int = 100
    funding_every_ms: int = 1000
    auto_dislocations: bool = True
    rates: Mapping[str, float] | None = None
    """Book updates/s per instrument id (``schedule.heavy_tailed_rates``); None: every ``tick_ms``."""
    reference_prices: dict[str, Decimal] | None = None
    listings_from_instruments: bool = False
    """REST listings are ``sim.listing(instruments)`` (the generated market) instead of the bundled files."""
    dislocation_every_ms: int = 20_000
    planted_carry: bool = False
    """Plant :func:`ingest.simulator.carry.default_carry` at start (``arbstream simulate`` does)."""
    clock: Callable[[], int] = time.time_ns
    market: Market = field(init=False)
    sims: dict[str, VenueSim] = field(init=False)
    clients: dict[str, set[SimClient]] = field(init=False)
    stalled_until: dict[str, float] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        tracked = [i for i in self.instruments if i.venue in self.venues]
        self.market = Market(
            tracked,
            auto_dislocation_every_ms=self.dislocation_every_ms if self.auto_dislocations else 0,
            reference_prices=dict(self.reference_prices or {}),
        )
        self.sims = {name: sim_class(name)(tracked) for name in self.venues}
        self.clients = {name: set() for name in self.venues}
        self.by_id = {i.instrument_id: i for i in tracked}
        self.by_base: dict[str, list[Instrument]] = defaultdict(list)
        for inst in tracked:
            self.by_base[inst.base].append(inst)
        start = self.clock()
        ids = list(self.by_id)
        if self.rates is not None:
            book_rates = {i: self.rates.get(i, FLOOR_PER_S) for i in ids}
        else:
            book_rates = uniform_rates(ids, 1000 / self.tick_ms if self.tick_ms > 0 else 0)
        self.books = Schedule(book_rates, start, seed=1, every_step=self.rates is None and self.tick_ms == 0)
        self.fundings = Schedule(uniform_rates(ids, 1000 / max(1, self.funding_every_ms)), start, seed=2)
        self._last_burst = 0
        if self.planted_carry:
            for carry in default_carry(tracked):
                self.market.plant_carry(carry)
                log.info("simulator: planted carry %s on %s at %s per interval", carry.base, carry.venue, carry.rate)

    def app(self) -> web.Application:
        app = web.Application()
        for name, sim in self.sims.items():
            if sim.transport == "socketio":
                socketio_clients(app, self, name)
            else:
                for path in sim.ws_paths:
                    app.router.add_get(f"/{name}{path}", self._ws_handler(name, path))
            for path, handler in self._rest_routes(sim).items():
                app.router.add_route("*", f"/{name}{path}", handler)
        app.router.add_post("/control/{action}", self._control)
        app.router.add_get("/control/status", self._status)
        app.router.add_get("/control/stats", self._stats)
        app.router.add_get("/control/carries", self._carries)
        app.cleanup_ctx.append(self._pump_ctx)
        return app

    def _rest_routes(self, sim: VenueSim) -> dict[str, RestHandler]:
        """The venue's own routes (token endpoints...), listings replaced by the generated ones."""
        routes = dict(sim.rest_routes())
        if self.listings_from_instruments:
            with contextlib.suppress(NotImplementedError):  # that venue serves its bundled listing
                routes.update(listing_routes(sim.listing(list(sim.by_native.values()))))
        return with_history_routes(sim, routes, self.market, lambda: self.clock() // 1_000_000)

    def _ws_handler(self, venue: str, path: str):  # type: ignore[no-untyped-def]
        async def handler(request: web.Request) -> web.WebSocketResponse:
            # No permessage-deflate: compressing every small frame costs both sides more CPU than
            # the bytes are worth on loopback, and raw batched writes need uncompressed frames.
            ws = web.WebSocketResponse(autoping=True, max_msg_size=0, compress=False)
            await ws.prepare(request)
            client = websocket_client(SimSession(venue, path, dict(request.query)), ws, request)
            sim = self.sims[venue]
            self.clients[venue].add(client)
            try:
                await self.send(client, sim.on_open(client.session))
                async for msg in ws:
                    if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                        await self.send(client, sim.on_message(client.session, msg.data))
                    if client.session.close_requested:
                        # Abort the transport: the client sees an abnormal closure (1006), no close frame.
                        if request.transport is not None:
                            request.transport.close()
                        break
            finally:
                self.clients[venue].discard(client)
            return ws

        return handler

    async def send(self, client: SimClient, frames: list[Frame]) -> None:
        """Replies and one-off frames, in order, through the transport's own framing."""
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
        step_ns = self.tick_ms * 1_000_000
        next_ns = self.clock()
        while True:
            await self.step(self.clock())
            next_ns += step_ns
            now = self.clock()
            if next_ns < now - NS:  # far behind (a busy machine): do not try to catch up
                next_ns = now
            await asyncio.sleep(max(0, next_ns - now) / NS)

    async def step(self, now_ns: int) -> None:
        """One turn of the pump at ``now_ns``: what is due, quoted once, framed per subscriber."""
        now_ms = now_ns // 1_000_000
        self.market.step(now_ms)
        books = self._group(self.books.due(now_ns) + self._bursts(now_ns))
        fundings = self._group(self.fundings.due(now_ns))
        self.counters["book_updates"] += sum(map(len, books.values()))
        self.counters["funding_updates"] += sum(map(len, fundings.values()))
        for venue in set(books) | set(fundings):
            if self.stalled_until.get(venue, 0) > time.monotonic():
                self.counters["stalled_updates"] += len(books.get(venue, ())) + len(fundings.get(venue, ()))
                continue
            clients = list(self.clients[venue])
            if not clients:
                continue
            # Quoted once per update whatever the number of subscribers, and only if someone listens.
            wanted = [c.session.subscriptions for c in clients]
            quotes = [(i, self.market.quote(i, now_ms)) for i in books.get(venue, ()) if _any(wanted, BOOK, i)]
            marks = [(i, self.market.funding(i, now_ms)) for i in fundings.get(venue, ()) if _any(wanted, FUNDING, i)]
            for client in clients:
                await self._deliver(self.sims[venue], client, quotes, marks)
            # Writes never suspend: yield per venue so subscribe replies and REST listings are
            # served between venues even when the pump runs behind at a high rate.
            await asyncio.sleep(0)

    def _group(self, ids: list[str]) -> dict[str, list[Instrument]]:
        by_venue: dict[str, list[Instrument]] = defaultdict(list)
        for instrument_id in ids:
            inst = self.by_id[instrument_id]
            by_venue[inst.venue].append(inst)
        return by_venue

    def _bursts(self, now_ns: int) -> list[str]:
        if not self.market.dislocations or now_ns - self._last_burst < BURST_EVERY_NS:
            return []
        self._last_burst = now_ns
        bases = {d.base for d in self.market.dislocations}
        return [i.instrument_id for base in bases for i in self.by_base.get(base, ())]

    async def _deliver(
        self,
        sim: VenueSim,
        client: SimClient,
        quotes: list[tuple[Instrument, SimQuote]],
        marks: list[tuple[Instrument, SimFunding]],
    ) -> None:
        session = client.session
        subscribed = session.subscriptions
        if client.is_closed():
            return
        if client.backlogged():
            # A slow reader misses updates (conflated, as venues do) instead of growing our buffers;
            # no frame was built, so its sequence numbers stay contiguous.
            self.counters["slow_client_updates"] += len(quotes) + len(marks)
            return
        frames: list[Frame] = []
        for inst, quote in quotes:
            if (BOOK, inst.native_symbol) in subscribed:
                frames += sim.book_frames(session, inst, quote)
        for inst, funding in marks:
            if (FUNDING, inst.native_symbol) in subscribed:
                frames += sim.funding_frames(session, inst, funding)
        if frames:
            self.counters["frames"] += len(frames)
            with contextlib.suppress(ConnectionResetError):
                await client.send_batch(frames)

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
                        await self.send(client, [self.sims[venue].malformed_frame()])
            elif action == "gap":
                for venue in targets:
                    for client in self.clients[venue]:
                        client.session.skip_sequence = True
            elif action == "dislocate":
                self._dislocate(targets, query["base"], Decimal(query["bps"]), float(query.get("seconds", "10")))
            elif action == "carry":
                self._carry(targets, query)
            else:
                raise web.HTTPNotFound(text=f"unknown control action {action!r}")
        except (KeyError, ValueError, InvalidOperation) as exc:
            raise web.HTTPBadRequest(text=f"bad parameters for {action}: {exc}") from exc
        return web.json_response({"ok": True, "action": action, "venues": targets})

    def _dislocate(self, venues: list[str], base: str, bps: Decimal, seconds: float) -> None:
        if not bps.is_finite() or abs(bps) > 10_000:
            raise ValueError(f"bps must be a finite number of basis points within ±10000, not {bps}")
        now_ms = self.clock() // 1_000_000
        for venue in venues:
            self.market.plant(base, venue, bps, int(seconds * 1000), now_ms)

    def _carry(self, venues: list[str], query: Mapping[str, str]) -> None:
        rate = Decimal(query["rate"])
        if not rate.is_finite() or abs(rate) >= 1:
            raise ValueError(f"rate must be a finite fraction per interval within ±1, not {rate}")
        now_ms = self.clock() // 1_000_000
        seconds, settle_in = query.get("seconds"), query.get("settle_in")
        for venue in venues:
            self.market.plant_carry(
                PlantedCarry(
                    base=query["base"].upper(),
                    venue=venue,
                    rate=rate,
                    until_ms=now_ms + int(float(seconds) * 1000) if seconds is not None else None,
                    first_settlement_ms=now_ms + int(float(settle_in) * 1000) if settle_in is not None else None,
                )
            )

    async def _carries(self, _request: web.Request) -> web.Response:
        carries = [
            {"base": c.base, "venue": c.venue, "rate": str(c.rate), "until_ms": c.until_ms,
             "first_settlement_ms": c.first_settlement_ms}
            for c in self.market.carries.values()
        ]  # fmt: skip
        return web.json_response(carries)

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

    async def _stats(self, _request: web.Request) -> web.Response:
        body = {
            **self.counters,
            "lagged_updates": self.books.lagged + self.fundings.lagged,
            "instruments": len(self.by_id),
            "book_rate_per_s": round(self.books.total_per_s, 1),
            "funding_rate_per_s": round(self.fundings.total_per_s, 1),
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")


def _any(subscriptions: list[set[tuple[str, str]]], kind: str, inst: Instrument) -> bool:
    key = (kind, inst.native_symbol)
    return any(key in subscribed for subscribed in subscriptions)


async def serve(simulator: Simulator, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(simulator.app())
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("simulator serving %s on http://%s:%d", ", ".join(simulator.venues), host, port)
    return runner
