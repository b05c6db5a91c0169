"""The simulator server itself: control endpoints and venue-initiated closes, over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from ingest.instruments import load_all
from ingest.simulator.server import Simulator, serve
from plumbing.broker import free_port


@pytest.fixture
async def simulator() -> AsyncIterator[str]:
    port = free_port()
    sim = Simulator(load_all(["binance", "hyperliquid"]), ["binance", "hyperliquid"], tick_ms=20)
    runner = await serve(sim, "127.0.0.1", port)
    yield f"127.0.0.1:{port}"
    await runner.cleanup()


async def test_control_rejects_bad_requests(simulator: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://{simulator}/control/stall?venue=nowhere") as response:
            assert response.status == 404 and "not simulated" in await response.text()
        async with http.post(f"http://{simulator}/control/dislocate?venue=binance&base=BTC&bps=x") as response:
            assert response.status == 400 and "bad parameters for dislocate" in await response.text()
        async with http.post(f"http://{simulator}/control/explode") as response:
            assert response.status == 404


async def test_drop_closes_and_status_counts_connections(simulator: str) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"ws://{simulator}/binance/public/stream")
        await ws.send_str('{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":1}')
        assert (await ws.receive_json()) == {"result": None, "id": 1}
        assert (await ws.receive_json())["data"]["s"] == "BTCUSDT"
        async with http.get(f"http://{simulator}/control/status") as response:
            status = await response.json()
        assert status["binance"] == {"connections": 1, "subscriptions": ["book:BTCUSDT"]}
        async with http.post(f"http://{simulator}/control/drop?venue=binance") as response:
            assert (await response.json())["venues"] == ["binance"]
        while (msg := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
            pass  # frames already in flight
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and ws.close_code == 1011


async def test_hyperliquid_unknown_coin_drops_the_socket(simulator: str) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"ws://{simulator}/hyperliquid/ws")
        await ws.receive()  # greeting
        await ws.send_str('{"method":"subscribe","subscription":{"type":"bbo","coin":"BTCC"}}')
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
