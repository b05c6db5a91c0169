"""The simulator's funding-history endpoints: each venue's own route, request and response format.

A venue simulator that serves one sets ``funding_history_path`` (its REST path) and implements
``funding_history(query, body, settled)``: it reads the venue's parameters from the query (or the
POST body), asks ``settled(instrument, start_ms, end_ms)`` for the settlements in that window
(ascending ``(time ms, rate)``, on the instrument's UTC funding grid, none in the future) and
answers in the venue's format, applying the venue's own limit and order. The rates are the
market's: each instrument's funding level with a deterministic wobble (``Market.settled_rate``),
so the same seed gives the same 30 days, consistent with what the WebSockets quote.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

import orjson
from aiohttp import web

from ingest.simulator.base import RestHandler, VenueSim
from ingest.simulator.market import Market
from schemas.market import Instrument

HOUR_MS = 3_600_000
MAX_DAYS = 35
"""Oldest history the simulator serves (the topic keeps 35 days)."""

Settled = Callable[[Instrument, int, int], list[tuple[int, Decimal]]]


class HistoryError(Exception):
    """A request the venue would refuse: answered with HTTP 400 and the venue-style message."""


class HistorySim(Protocol):
    funding_history_path: str

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any: ...


def settlements(market: Market, now_ms: Callable[[], int]) -> Settled:
    def settled(inst: Instrument, start_ms: int, end_ms: int) -> list[tuple[int, Decimal]]:
        step = (inst.funding_interval_h or 8) * HOUR_MS
        end = min(end_ms, now_ms())
        start = max(start_ms, now_ms() - MAX_DAYS * 24 * HOUR_MS)
        first = -(-start // step) * step
        return [(t, market.settled_rate(inst, t)) for t in range(first, end + 1, step)]

    return settled


def with_history_routes(
    sim: VenueSim, routes: dict[str, RestHandler], market: Market, now_ms: Callable[[], int]
) -> dict[str, RestHandler]:
    """``routes`` plus the venue's funding-history route (sharing a path with a listing route,
    e.g. Hyperliquid's ``POST /info``, the history handler answers its own requests only)."""
    path = getattr(sim, "funding_history_path", None)
    if path is None:
        return routes
    history: HistorySim = sim  # type: ignore[assignment]
    settled = settlements(market, now_ms)
    fallback = routes.get(path)

    async def serve(request: web.Request) -> web.StreamResponse:
        body: Any = None
        if request.method == "POST" and request.can_read_body:
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                body = None
        try:
            payload = history.funding_history(dict(request.query), body, settled)
        except HistoryError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if payload is None:  # not a history request: the listing route of the same path
            if fallback is None:
                raise web.HTTPNotFound()
            return await fallback(request)
        return web.Response(body=orjson.dumps(payload, default=_text), content_type="application/json")

    return {**routes, path: serve}


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"not serialisable: {value!r}")


def instrument(sim: VenueSim, native: str | None) -> Instrument:
    inst = sim.by_native.get(native or "")
    if inst is None:
        raise HistoryError(f"unknown symbol {native!r}")
    return inst


def int_param(query: dict[str, str], name: str, default: int) -> int:
    try:
        return int(query.get(name, default))
    except ValueError as exc:
        raise HistoryError(f"{name} must be an integer") from exc


def json_number(value: Decimal) -> orjson.Fragment:
    """A rate the venue sends as a JSON number, with exactly its digits (never through a float)."""
    return orjson.Fragment(format(value, "f").encode())
