"""Issue 13, item 10: WebSocket Origin allow-list, limits with clear errors, the admin token, compose binds.

In-process API over the scenario's read model (no broker needed: none of this touches Kafka).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.context import ApiContext
from api.main import build_context, create_app
from api.security import admin_refusal, origin_allowed
from api.universe import Universe
from tests.test_api_support import in_process_model, scenario_settings, serve

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def api(**overrides: Any) -> Iterator[tuple[str, ApiContext]]:
    settings = scenario_settings(**overrides)
    ctx = build_context(settings, None, model=in_process_model(time.time_ns(), settings), universe=Universe())
    with serve(create_app(ctx)) as url:
        yield url, ctx


def ws(url: str) -> str:
    return url.replace("http://", "ws://") + "/ws"


async def until(conn: ClientConnection, kind: str, timeout_s: float = 10) -> dict[str, Any]:
    """The next message of type ``kind`` (skipping the seed's initial messages and pushes)."""
    async with asyncio.timeout(timeout_s):
        while True:
            message: dict[str, Any] = json.loads(await conn.recv())
            if message["type"] == kind:
                return message


def handshake_status(url: str, origin: str | None) -> int:
    async def attempt() -> int:
        try:
            async with connect(ws(url), origin=origin) as conn:  # type: ignore[arg-type]
                await until(conn, "initial_prices")
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(attempt())


def test_websocket_origin_allow_list() -> None:
    with api(cors_origins=["https://dash.example"]) as (url, _):
        port = url.rsplit(":", 1)[1]
        assert handshake_status(url, None) == 101  # no Origin: not a browser page (curl, scripts)
        assert handshake_status(url, "https://dash.example") == 101  # ARBSTREAM_CORS_ORIGINS
        assert handshake_status(url, f"http://127.0.0.1:{port}") == 101  # the API's own origin
        assert handshake_status(url, "http://evil.example") == 403
        assert handshake_status(url, f"http://127.0.0.1:{int(port) + 1}") == 403  # another local app


def test_origin_rule_refuses_a_rebound_dns_name_as_own_origin() -> None:
    allowed = ["http://127.0.0.1:8000"]
    assert origin_allowed("http://192.168.1.5:8000", "192.168.1.5:8000", allowed)  # IP literal: own origin
    assert origin_allowed("http://localhost:9000", "localhost:9000", allowed)
    # evil.example resolving to 127.0.0.1 makes Origin and Host agree: names must be listed explicitly.
    assert not origin_allowed("http://evil.example:8000", "evil.example:8000", allowed)
    assert not origin_allowed("null", "127.0.0.1:8000", allowed)


def test_refused_handshake_says_why() -> None:
    async def body() -> dict[str, Any]:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws(url), origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        result: dict[str, Any] = json.loads(refused.value.response.body or b"{}")
        return result

    with api() as (url, _):
        assert "origin 'http://evil.example' is not allowed" in asyncio.run(body())["detail"]


def test_connection_cap() -> None:
    async def scenario(url: str) -> None:
        first = await connect(ws(url))
        second = await connect(ws(url))
        with pytest.raises(InvalidStatus) as refused:
            await connect(ws(url))
        assert refused.value.response.status_code == 503
        assert "too many WebSocket connections (limit 2)" in json.loads(refused.value.response.body or b"{}")["detail"]
        await first.close()
        deadline = time.monotonic() + 5
        while True:  # the slot frees once the server has seen the close
            try:
                third = await connect(ws(url))
                break
            except InvalidStatus:
                assert time.monotonic() < deadline, "slot never freed"
                await asyncio.sleep(0.05)
        await until(third, "initial_prices")
        await third.close()
        await second.close()

    with api(ws_max_connections=2) as (url, _):
        asyncio.run(scenario(url))


def test_oversized_message_gets_an_error_then_close_1009() -> None:
    async def scenario(url: str) -> None:
        async with connect(ws(url)) as conn:
            await until(conn, "initial_prices")
            await conn.send(json.dumps({"op": "subscribe", "symbols": ["X" * 2000]}))
            error = await until(conn, "error")
            assert error["data"]["code"] == "message_too_large"
            assert "at most 1024 bytes" in error["data"]["message"]
            with pytest.raises(ConnectionClosed) as closed:
                await until(conn, "never")
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    with api(ws_max_message_bytes=1024) as (url, _):
        asyncio.run(scenario(url))


def test_subscribe_list_cap() -> None:
    async def scenario(url: str) -> None:
        async with connect(ws(url)) as conn:
            await until(conn, "initial_prices")
            await conn.send(json.dumps({"op": "subscribe", "symbols": ["BTC", "ETH", "SOL", "PEPE"]}))
            error = await until(conn, "error")
            assert error["data"] == {
                "code": "invalid_subscription",
                "message": "symbols: at most 3 entries (got 4); omit the field to mean all",
            }
            await conn.send(json.dumps({"op": "subscribe", "symbols": ["BTC", "ETH", "SOL"]}))
            snapshot = await until(conn, "snapshot")
            assert snapshot["data"]["subscription"]["symbols"] == ["BTC", "ETH", "SOL"]

    with api(ws_max_list=3) as (url, _):
        asyncio.run(scenario(url))


def test_resync_rate_limit() -> None:
    async def scenario(url: str) -> None:
        async with connect(ws(url)) as conn:
            await until(conn, "initial_prices")
            for _ in range(3):
                await conn.send('{"op": "resync"}')
                await until(conn, "snapshot")
            await conn.send('{"op": "resync"}')
            error = await until(conn, "error")
            assert error["data"]["code"] == "rate_limited"
            assert error["data"]["message"].startswith("at most 3 subscribe/resync per minute")
            # A subscribe costs a snapshot too, and is refused the same way (subscription unchanged).
            await conn.send('{"op": "subscribe", "symbols": ["BTC"]}')
            assert (await until(conn, "error"))["data"]["code"] == "rate_limited"
            await conn.send('{"op": "ping"}')  # the connection stays usable
            assert (await until(conn, "pong"))["type"] == "pong"

    with api(ws_snapshots_per_min=3) as (url, _):
        asyncio.run(scenario(url))


def post(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url + "/api/reload-config", method="POST", data=b"", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_reload_config_needs_the_admin_token_when_one_is_set() -> None:
    with api(admin_token="s3cret") as (url, _):
        status, body = post(url)
        assert status == 401 and "Authorization: Bearer <ARBSTREAM_ADMIN_TOKEN>" in body["detail"]
        assert post(url, {"Authorization": "Bearer wrong"})[0] == 401
        status, body = post(url, {"Authorization": "Bearer s3cret"})
        assert status == 200 and body["status"] == "success"  # the seed's value
        # A foreign page cannot use it even with the token (it would need it, and CORS refuses it).
        status, body = post(url, {"Authorization": "Bearer s3cret", "Origin": "http://evil.example"})
        assert status == 403 and "not allowed" in body["detail"]


def test_without_a_token_only_local_calls_to_a_local_api() -> None:
    with api() as (url, ctx):
        assert post(url)[0] == 200  # curl on the same machine, API bound to 127.0.0.1
        status, body = post(url, {"Origin": "http://evil.example"})  # a web page's cross-site POST
        assert status == 403 and "not allowed" in body["detail"]
        # The same API bound to every interface, called from elsewhere: refused, and says how to enable it.
        exposed = ctx.settings.model_copy(update={"api_host": "0.0.0.0"})
        refusal = admin_refusal(
            ApiContext(exposed, ctx.config, ctx.model, ctx.metrics, ctx.universe), None, "10.1.2.3", None, None
        )
        assert refusal is not None and refusal[0] == 403 and "set ARBSTREAM_ADMIN_TOKEN" in refusal[1]
        local_exposed = admin_refusal(
            ApiContext(exposed, ctx.config, ctx.model, ctx.metrics, ctx.universe), None, "127.0.0.1", None, None
        )
        assert local_exposed is not None, "an API listening on every interface needs a token even for local calls"


def test_compose_publishes_ports_on_localhost_by_default() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    published = [port for service in compose["services"].values() for port in service.get("ports", [])]
    assert published, "compose publishes nothing?"
    for port in published:
        assert str(port).startswith("${ARBSTREAM_BIND_ADDRESS:-127.0.0.1}:"), port
