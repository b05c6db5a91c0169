"""Seed clients against the in-process API (issue 14 audit): a local seed frontend's origin, the
seed's error field on 422s, the seed's venue alias on the WebSocket, and a removed instrument
leaving every view (its frozen last quote must not be served as live).

No broker: the scenario's read model (tests/test_api_support.py) and a Universe fed the way the
follower feeds it (``apply_instrument`` with an instrument or a tombstone).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from api.context import ApiContext
from api.main import build_context, create_app
from api.readmodel import Changes, ReadModel
from api.universe import Universe
from api.ws import SubscribeOp
from schemas.market import Instrument, Quote, encode, instrument_key
from tests.test_api_support import get_json, in_process_model, quote, scenario, scenario_settings, serve

SEED_FRONTEND = "http://localhost:3000"
SOL = ("SOL-USDT-PERP@binance", "SOL-USDT-PERP@bybit")
ETH_OKX = "ETH-USDT-PERP@okx"


def instrument(instrument_id: str) -> Instrument:
    key = instrument_key(instrument_id)
    return Instrument(
        instrument_id=instrument_id,
        venue=key.venue,
        native_symbol=instrument_id.split("@")[0],
        base=key.base,
        quote=key.quote,
        settle=key.quote,
        kind=key.kind,
        price_multiplier=Decimal(1000 if instrument_id == "PEPE-USDT-PERP@binance" else 1),
    )


def scenario_universe(t0: int) -> Universe:
    """Ingest's published universe: every instrument the scenario quotes."""
    return Universe(instruments=[instrument(t.instrument_id) for t in scenario(t0) if isinstance(t, Quote)])


@contextmanager
def api(universe: Universe | None = None, **overrides: Any) -> Iterator[tuple[str, ApiContext]]:
    settings = scenario_settings(**overrides)
    t0 = time.time_ns()
    model = in_process_model(t0, settings)
    ctx = build_context(settings, None, model=model, universe=universe if universe is not None else Universe())
    with serve(create_app(ctx)) as url:
        yield url, ctx


def get_with_origin(url: str, origin: str) -> tuple[int, str | None]:
    request = urllib.request.Request(url, headers={"Origin": origin})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers.get("access-control-allow-origin")


async def handshake(url: str, origin: str) -> int:
    try:
        async with connect(url.replace("http://", "ws://") + "/ws", origin=origin) as conn:  # type: ignore[arg-type]
            await conn.recv()
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_a_local_seed_frontend_may_call_the_api_and_open_the_websocket() -> None:
    with api() as (url, ctx):
        assert {SEED_FRONTEND, "http://127.0.0.1:3000"} <= set(ctx.settings.allowed_origins())
        assert get_with_origin(url + "/api/summary", SEED_FRONTEND) == (200, SEED_FRONTEND)
        assert get_with_origin(url + "/api/prices", "http://127.0.0.1:3000") == (200, "http://127.0.0.1:3000")
        assert get_with_origin(url + "/api/summary", "http://localhost:3001") == (200, None)  # not listed: no header
        assert asyncio.run(handshake(url, SEED_FRONTEND)) == 101
        assert asyncio.run(handshake(url, "http://localhost:3001")) == 403
    # The default only: an explicit ARBSTREAM_CORS_ORIGINS replaces it, as before.
    with api(cors_origins=["https://dash.example"]) as (url, _):
        assert get_with_origin(url + "/api/summary", SEED_FRONTEND) == (200, None)
        assert asyncio.run(handshake(url, SEED_FRONTEND)) == 403


def test_422_keeps_the_seed_error_field_beside_fastapis_detail() -> None:
    with api() as (url, _):
        status, body = get_json(url + "/api/arbitrage?limit=0&min_spread=abc")
        assert status == 422
        assert body["error"] == (
            "invalid request: query.min_spread: Input should be a valid number, unable to parse string as a number; "
            "query.limit: Input should be greater than or equal to 1"
        )
        assert [(e["loc"], e["type"]) for e in body["detail"]] == [
            (["query", "min_spread"], "float_parsing"),
            (["query", "limit"], "greater_than_equal"),
        ]
        # Raised by a route itself (the two venues of a spread must differ): the same shape.
        status, body = get_json(url + "/api/spread/BTC/binance/binance")
        assert (status, body["error"]) == (422, "invalid request: path.ex2: ex2 must differ from ex1")
        assert body["detail"][0]["loc"] == ["path", "ex2"]


def test_websocket_subscribe_maps_the_seed_venue_alias() -> None:
    op = SubscribeOp(op="subscribe", venues=["gateio", " OKX ", "gate.io", "bybit"])
    assert op.to_filter().venues == frozenset({"gate", "okx", "bybit"})

    async def subscribed_venues(url: str) -> list[str]:
        async with connect(url.replace("http://", "ws://") + "/ws") as conn:
            await conn.send(json.dumps({"op": "subscribe", "venues": ["gateio", "binance"]}))
            while True:
                message = json.loads(await conn.recv())
                if message["type"] == "snapshot":
                    venues: list[str] = message["data"]["subscription"]["venues"]
                    return venues

    with api() as (url, _):
        assert asyncio.run(subscribed_venues(url)) == ["binance", "gate"]


def _views(url: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    prices = get_json(url + "/api/prices")[1]["prices"]
    summary = get_json(url + "/api/summary")[1]
    rows = get_json(url + "/api/arbitrage?all=true&limit=1000")[1]["opportunities"]
    return prices, summary, rows


def on_eth_okx(row: dict[str, Any]) -> bool:
    return ETH_OKX in (row["buy_instrument_id"], row["sell_instrument_id"])


def test_removed_instruments_leave_prices_summary_and_arbitrage() -> None:
    universe = scenario_universe(time.time_ns())
    with api(universe) as (url, _):
        prices, summary, rows = _views(url)
        assert "SOL" in prices and sorted(prices["ETH"]) == ["binance", "okx"]
        assert (summary["total_symbols"], summary["symbols"]) == (4, ["BTC", "ETH", "PEPE", "SOL"])
        assert any(r["symbol"] == "SOL" for r in rows) and any(
            ETH_OKX in (r["buy_instrument_id"], r["sell_instrument_id"]) for r in rows
        )
        count = summary["price_count"]

        # Ingest's tombstones: SOL removed by reload-config, ETH delisted on okx.
        for instrument_id in (*SOL, ETH_OKX):
            universe.apply_instrument(instrument_id.encode(), None)
        prices, summary, rows = _views(url)
        assert "SOL" not in prices and sorted(prices["ETH"]) == ["binance"]
        assert (summary["total_symbols"], summary["symbols"]) == (3, ["BTC", "ETH", "PEPE"])
        assert summary["price_count"] == count - 3
        assert not [
            r for r in rows if r["symbol"] == "SOL" or ETH_OKX in (r["buy_instrument_id"], r["sell_instrument_id"])
        ]
        assert {r["symbol"] for r in rows} == {"BTC", "PEPE"}  # ETH has one venue left: no pair
        assert get_json(url + "/api/prices/SOL")[0] == 404
        assert list(get_json(url + "/api/prices?symbols=ETH")[1]["prices"]["ETH"]) == ["binance"]

        # Listed again: its last quote is shown again at once (kept, only hidden).
        universe.apply_instrument(SOL[0].encode(), encode(instrument(SOL[0])))
        prices, summary, _ = _views(url)
        assert sorted(prices["SOL"]) == ["binance"] and prices["SOL"]["binance"]["bid"] == 150
        assert summary["total_symbols"] == 4


def test_an_untracked_instrument_is_kept_hidden_and_never_pushed() -> None:
    t0 = time.time_ns()
    universe = Universe(instruments=[instrument("BTC-USDT-PERP@binance")])
    model = ReadModel()
    model.track(universe.tracks)
    universe.listen(model.retrack)
    changes = Changes()
    tracked = quote("BTC-USDT-PERP@binance", "100", "101", t0)
    untracked = quote("BTC-USDT-PERP@okx", "100.5", "101.5", t0)
    model.apply_quotes("BTC", [tracked, untracked], changes)
    assert changes.quotes == [("BTC", tracked)]  # the WebSocket never sees the untracked quote
    assert list(model.symbols["BTC"].quotes) == ["BTC-USDT-PERP@binance"]
    model.apply_quotes("ETH", [quote("ETH-USDT-PERP@okx", "3000", "3001", t0)], changes)
    assert "ETH" not in model.symbols
    # BTC is shown as a filtered copy: later ticks reach it (tracked) or stay out of it (untracked).
    newer, newer_untracked = (quote(q.instrument_id, "102", "103", t0 + 1) for q in (tracked, untracked))
    model.apply_quotes("BTC", [newer, newer_untracked], changes)
    assert model.symbols["BTC"].quotes == {"BTC-USDT-PERP@binance": newer}

    # The API's own symbols file does not show what ingest does not track: only the replica that
    # received a reload re-reads it, and replicas must agree.
    universe.set_configured([instrument("BTC-USDT-PERP@okx")])
    assert list(model.symbols["BTC"].quotes) == ["BTC-USDT-PERP@binance"]
    # Ingest publishes it: every replica shows it, with the quote it kept hidden.
    universe.apply_instrument(b"BTC-USDT-PERP@okx", encode(instrument("BTC-USDT-PERP@okx")))
    assert sorted(model.symbols["BTC"].quotes) == ["BTC-USDT-PERP@binance", "BTC-USDT-PERP@okx"]
    assert model.symbols["BTC"].quotes["BTC-USDT-PERP@okx"] is newer_untracked
    universe.apply_instrument(b"BTC-USDT-PERP@okx", None)
    # Nothing published by ingest: no universe known, the symbols file alone restricts nothing.
    universe.apply_instrument(b"BTC-USDT-PERP@binance", None)
    assert not universe.known and sorted(model.symbols) == ["BTC", "ETH"]
    assert sorted(model.symbols["ETH"].quotes) == ["ETH-USDT-PERP@okx"]
