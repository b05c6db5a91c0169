"""REST routes serving a venue's listing responses, keyed as the bundled listing files are.

Keys are ``"/path?query"`` (GET) or ``"POST /path <type>"`` (Hyperliquid's ``POST /info`` with
``{"type": "<type>"}``). A request gets the response whose query parameters (or POST body
``type``) match its own, compared decoded and order-free, so ``margin_currency_short_name[]=USDT``
matches however the client encodes the brackets; a request matching none gets the path's first.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import msgspec
import orjson
from aiohttp import web

from ingest.simulator.base import RestHandler

Match = frozenset[tuple[str, str]]
_encoder = msgspec.json.Encoder(decimal_format="number")
"""Listings hold Decimals where the venue sends JSON numbers (as ``load_json`` reads them back)."""


def _split(key: str) -> tuple[str, Match]:
    if key.startswith("POST "):
        _method, path, kind = [*key.split(" ", 2), ""][:3]
        return path, frozenset({("type", kind)})
    path, _, query = key.partition("?")
    return path, frozenset(parse_qsl(query, keep_blank_values=True))


def listing_routes(listing: dict[str, Any]) -> dict[str, RestHandler]:
    by_path: dict[str, dict[Match, bytes]] = {}
    for key, response in listing.items():
        path, match = _split(key)
        by_path.setdefault(path, {})[match] = _encoder.encode(response)
    return {path: _handler(responses) for path, responses in by_path.items()}


def _handler(responses: dict[Match, bytes]) -> RestHandler:
    first = next(iter(responses.values()))

    async def serve(request: web.Request) -> web.StreamResponse:
        match: Match = frozenset(request.query.items())
        if request.method == "POST" and request.can_read_body:
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("type"), str):
                match = frozenset({("type", body["type"])})
        return web.Response(body=responses.get(match, first), content_type="application/json")

    return serve
