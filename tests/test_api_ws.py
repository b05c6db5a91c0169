"""WebSocket /ws against the real stack: seed messages, subscriptions, sequence numbers, slow clients."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.test_api_expected import FEE, NUM, PCT
from tests.test_api_support import Stack, get_json, quote, stable
from tests.test_api_support import api_stack as api_stack

pytestmark = pytest.mark.integration
D = Decimal


_validators: dict[str, jsonschema.Draft202012Validator] = {}


def validator(stack: Stack, kind: str) -> jsonschema.Draft202012Validator:
    """The API's own published schema of each message type (GET /api/ws-schema)."""
    if not _validators:
        schemas = get_json(stack.api_urls[0] + "/api/ws-schema")[1]["messages"]
        _validators.update({k: jsonschema.Draft202012Validator(s) for k, s in schemas.items()})
    return _validators[kind]


class Reader:
    """Reads one client's messages, checking sequence numbers (no gap) and each message's schema."""

    def __init__(self, ws: ClientConnection, stack: Stack) -> None:
        self.ws = ws
        self.stack = stack
        self.seen: list[dict[str, Any]] = []

    async def next(self, types: set[str] | None = None, timeout_s: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - time.monotonic()))
            message: dict[str, Any] = json.loads(raw, parse_float=D)  # numbers with their digits
            message["_at"] = time.time_ns()
            expected = self.seen[-1]["seq"] + 1 if self.seen else 1
            assert message["seq"] == expected, (message["type"], message["seq"], expected)
            validator(self.stack, message["type"]).validate(message["data"])
            self.seen.append(message)
            if types is None or message["type"] in types:
                return message

    async def nothing_of(self, types: set[str], within_s: float) -> None:
        deadline = time.monotonic() + within_s
        with pytest.raises(TimeoutError):
            while True:
                message = await self.next(None, deadline - time.monotonic())
                assert message["type"] not in types, message

    async def send(self, payload: object) -> None:
        await self.ws.send(payload if isinstance(payload, str) else json.dumps(payload))


def ws_url(stack: Stack) -> str:
    return stack.api_urls[0].replace("http", "ws", 1) + "/ws"


async def subscribed(stack: Stack, **subscription: Any) -> Reader:
    reader = Reader(await connect(ws_url(stack)), stack)
    await reader.send({"op": "subscribe", **subscription})
    snapshot = await reader.next({"snapshot"})
    assert snapshot["data"]["subscription"]["channels"] == sorted(subscription["channels"])
    return reader


async def test_seed_messages_then_subscription_filters(api_stack: Stack) -> None:
    reader = Reader(await connect(ws_url(api_stack)), api_stack)
    summary, prices = await reader.next(), await reader.next()
    assert (summary["type"], summary["seq"], prices["type"], prices["seq"]) == (
        "market_summary",
        1,
        "initial_prices",
        2,
    )
    assert summary["data"]["total_symbols"] >= 4
    assert (prices["data"]["BTC"]["binance"]["bid"], prices["data"]["PEPE"]["binance"]["bid"]) == (
        100000,
        D("0.0000112"),
    )

    await reader.send({"op": "subscribe", "channels": ["prices"], "symbols": ["sol"], "venues": ["binance"]})
    snapshot = (await reader.next({"snapshot"}))["data"]
    assert [(e["instrument_id"], e["bid"]) for e in snapshot["prices"]["SOL"]] == [("SOL-USDT-PERP@binance", 150)]
    assert set(snapshot["prices"]) == {"SOL"} and snapshot["market_summary"] is None
    after_snapshot = len(reader.seen)

    now = time.time_ns()
    await api_stack.feed(
        [quote("SOL-USDT-PERP@bybit", "150.5", "150.52", now), quote("SOL-USDT-PERP@binance", "150.5", "150.51", now)]
    )
    update = await reader.next({"price_update"})
    data = update["data"]
    assert (data["symbol"], data["exchange"], data["bid"]) == ("SOL", "binance", D("150.5"))
    await reader.nothing_of({"price_update"}, 1.5)  # bybit's update is filtered out
    assert {m["type"] for m in reader.seen[after_snapshot:]} == {"price_update"}
    await reader.ws.close()


async def test_bad_messages_get_errors_and_keep_the_connection(api_stack: Stack) -> None:
    reader = Reader(await connect(ws_url(api_stack)), api_stack)
    await reader.next({"initial_prices"})
    await reader.send("{not json")
    assert (await reader.next({"error"}))["data"]["code"] == "malformed_json"
    await reader.send({"op": "dance", "secret": "xyzzy"})
    error = await reader.next({"error"})
    assert error["data"]["code"] == "unknown_op" and "xyzzy" not in json.dumps(error)  # never an echo
    await reader.send({"op": "subscribe", "channels": ["nope"]})
    assert (await reader.next({"error"}))["data"]["code"] == "invalid_subscription"
    await reader.send({"op": "ping"})
    assert (await reader.next({"pong"}))["type"] == "pong"
    await reader.ws.close()


async def test_resync_sends_a_fresh_snapshot_with_the_next_sequence_number(api_stack: Stack) -> None:
    reader = await subscribed(api_stack, channels=["opportunities"], symbols=["BTC"])
    first = reader.seen[-1]
    [episode] = first["data"]["opportunities"]
    assert episode["event_id"].startswith("BTC:binance->bybit:")
    await reader.send({"op": "resync"})
    second = await reader.next()
    assert (second["type"], second["seq"]) == ("snapshot", first["seq"] + 1)
    assert stable(second["data"]) == stable(first["data"])
    await reader.ws.close()


async def test_alerts_reach_only_matching_subscribers(api_stack: Stack) -> None:
    wanted = await subscribed(api_stack, channels=["opportunities"], symbols=["AVAX"], min_net_spread=0.001)
    too_strict = await subscribed(api_stack, channels=["opportunities"], symbols=["AVAX"], min_net_spread="0.05")
    other_symbol = await subscribed(api_stack, channels=["opportunities"], symbols=["BTC"])
    now = time.time_ns()
    await api_stack.feed(
        [quote("AVAX-USDT-PERP@binance", "20", "20.001", now), quote("AVAX-USDT-PERP@bybit", "20.2", "20.21", now + 1)]
    )
    alert = (await wanted.next({"opportunity"}))["data"]
    gross = (D("20.2") - D("20.001")) / D("20.001")
    assert (alert["symbol"], alert["buy"]["venue"], alert["sell"]["venue"]) == ("AVAX", "binance", "bybit")
    net = gross - FEE["binance"] - FEE["bybit"]
    assert alert["net_spread"] == NUM(net)
    assert alert["event_id"] == f"AVAX:binance->bybit:{now + 1}"
    # The seed's message for the same alert: a list of rows, profit in percent.
    [seed] = (await wanted.next({"arbitrage_opportunities"}))["data"]
    assert (seed["symbol"], seed["buy_exchange"], seed["sell_exchange"]) == ("AVAX", "binance", "bybit")
    assert seed["profit"] == seed["potential_profit"] == PCT(net * 100) and seed["event_id"] == alert["event_id"]
    prices = (seed["buy_price"], seed["sell_price"], seed["spread_percentage"])
    assert prices == (D("20.001"), D("20.2"), PCT(gross * 100))
    for reader in (too_strict, other_symbol):
        await reader.nothing_of({"opportunity", "arbitrage_opportunities"}, 1.0)
    for reader in (wanted, too_strict, other_symbol):
        await reader.ws.close()


def _tiny_receive_buffer_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: fixes the TCP window
    sock.connect((host, port))
    return sock


def _dropped_clients(stack: Stack) -> float:
    with urllib.request.urlopen(stack.api_urls[0] + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return float(
        next(x for x in text.splitlines() if x.startswith("arbstream_api_ws_clients_dropped_total")).split()[1]
    )


async def _delivery_ms(stack: Stack, fast: Reader, ticks: int, start_bid: int) -> list[float]:
    """Feed DOGE ticks one by one; how long each took from produce to the fast client's price_update."""
    latencies = []
    for i in range(ticks):
        bid = D(start_bid + i) / 10_000
        sent = time.time_ns()
        await stack.feed([quote("DOGE-USDT-PERP@binance", str(bid), str(bid + D("0.0001")), sent)])
        while True:
            update = await fast.next({"price_update"})
            if D(update["data"]["bid"]) == bid:
                break
        latencies.append((update["_at"] - sent) / 1e6)
    return latencies


async def test_a_client_that_never_reads_does_not_slow_the_others(api_stack: Stack) -> None:
    fast = await subscribed(api_stack, channels=["prices"], symbols=["DOGE"])
    baseline = await _delivery_ms(api_stack, fast, 10, 1000)
    dropped_before = _dropped_clients(api_stack)

    host, port = api_stack.api_urls[0].removeprefix("http://").split(":")
    sock = _tiny_receive_buffer_socket(host, int(port))
    slow = await connect(ws_url(api_stack), sock=sock, max_queue=1)
    flood = asyncio.create_task(_flood(slow))
    with_slow = await _delivery_ms(api_stack, fast, 30, 2000)

    worst_base, worst = max(baseline), sorted(with_slow)[int(len(with_slow) * 0.99)]
    assert worst < max(1000.0, 3 * worst_base), (baseline, with_slow)
    deadline = time.monotonic() + 15
    while _dropped_clients(api_stack) < dropped_before + 1:
        assert time.monotonic() < deadline, "the blocked client was never dropped"
        await asyncio.sleep(0.2)
    health = get_json(api_stack.api_urls[0] + "/health")[1]
    # The API itself stays sound (its status also reflects the scenario's one-off venue reports).
    assert health["complete"] and all(t["state"] == "running" and t["restarts"] == 0 for t in health["tasks"])
    flood.cancel()
    slow.transport.abort()
    await fast.ws.close()


async def _flood(slow: ClientConnection) -> None:
    """Ask for snapshot after snapshot (a few MB in all) and never read one: the server's send blocks."""
    for _ in range(3000):
        await slow.send('{"op": "resync"}')
        await asyncio.sleep(0.002)  # one at a time, else the server coalesces them into one snapshot
