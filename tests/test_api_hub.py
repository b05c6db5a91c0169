"""WebSocket fan-out without sockets: bounded queues, coalescing, sequence numbers, client ops."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from api.hub import Client, Filter, Hub, Limits, SlowClientError
from api.metrics import ApiMetrics
from api.models import EpisodeClosedOut, LegOut, OpportunityOut
from api.readmodel import Changes, ReadModel
from api.ws import handle_text
from schemas.arbitrage import EpisodeClosed, Leg, Opportunity, SymbolState
from tests.test_api_support import quote


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        self.messages.append(json.loads(text))


class Blocked:
    """A socket whose peer never reads: every send waits forever."""

    def __init__(self) -> None:
        self.never = asyncio.Event()

    async def send(self, text: str) -> None:
        await self.never.wait()


def client(send: Any, limits: Limits | None = None, snapshot: str = '{"snap":1}') -> Client:
    return Client(send, lambda f: snapshot, limits or Limits(queue_size=100, coalesce_s=0.05), ApiMetrics())


async def wait_until(condition: Any, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_a_blocked_client_never_delays_another() -> None:
    hub = Hub(ApiMetrics())
    good, blocked_socket = Recorder(), Blocked()
    fast = client(good.send, Limits(queue_size=5_000, coalesce_s=0.01))
    stuck = client(blocked_socket.send, Limits(queue_size=50, coalesce_s=0.01, send_timeout_s=0.3))
    for c in (fast, stuck):
        hub.add(c)
    tasks = [asyncio.create_task(c.run()) for c in (fast, stuck)]
    started = time.perf_counter()
    for i in range(2_000):
        hub.publish_event("opportunity", "opportunities", json.dumps({"i": i}), lambda f: True)
        hub.publish_latest(f"price:{i % 10}", "price_update", "prices", json.dumps({"i": i}), lambda f: True)
    publishing_s = time.perf_counter() - started
    assert publishing_s < 0.5  # publishing never waits for a socket
    await wait_until(lambda: sum(m["type"] == "opportunity" for m in good.messages) == 2_000)
    events = [m["data"]["i"] for m in good.messages if m["type"] == "opportunity"]
    assert events == list(range(2_000))
    assert [m["seq"] for m in good.messages] == list(range(1, len(good.messages) + 1))
    assert stuck.dropped == 2_000 - 50  # bounded: 50 queued (published before its sender ran), the rest dropped
    with pytest.raises(SlowClientError):
        await asyncio.wait_for(tasks[1], 2)
    tasks[0].cancel()


async def test_overflow_burns_sequence_numbers_so_the_client_sees_a_gap() -> None:
    sink = Recorder()
    c = client(sink.send, Limits(queue_size=3, coalesce_s=0.01))
    for i in range(1, 6):
        c.offer_event("opportunity", str(i))
    task = asyncio.create_task(c.run())
    await wait_until(lambda: len(sink.messages) == 3)
    assert [(m["seq"], m["data"]) for m in sink.messages] == [(3, 3), (4, 4), (5, 5)]  # 1 and 2 were dropped
    c.request_snapshot()  # what a client does after noticing the gap
    await wait_until(lambda: len(sink.messages) == 4)
    assert (sink.messages[-1]["type"], sink.messages[-1]["seq"], sink.messages[-1]["data"]) == (
        "snapshot",
        6,
        {"snap": 1},
    )
    task.cancel()


async def test_price_updates_are_coalesced_per_instrument() -> None:
    sink = Recorder()
    c = client(sink.send, Limits(queue_size=100, coalesce_s=0.1))
    task = asyncio.create_task(c.run())
    for i in range(100):
        c.offer_latest("price:A", "price_update", str(i))
    c.offer_latest("price:B", "price_update", '"b"')
    await wait_until(lambda: len(sink.messages) == 2)
    assert [m["data"] for m in sink.messages] == [99, "b"]  # latest per instrument
    started = time.monotonic()
    for i in range(100, 130):  # 30 updates over ~0.3 s: at most one flush per 0.1 s
        c.offer_latest("price:A", "price_update", str(i))
        await asyncio.sleep(0.01)
    await wait_until(lambda: sink.messages[-1]["data"] == 129)
    flushed = [m["data"] for m in sink.messages[2:]]
    elapsed = time.monotonic() - started
    assert len(flushed) <= elapsed / 0.1 + 2 and flushed == sorted(flushed)
    task.cancel()


async def test_a_snapshot_supersedes_what_was_queued() -> None:
    sink = Recorder()
    c = client(sink.send)
    c.offer_event("opportunity", "1")
    c.offer_latest("price:A", "price_update", "2")
    c.request_snapshot()
    task = asyncio.create_task(c.run())
    await wait_until(lambda: len(sink.messages) == 1)
    await asyncio.sleep(0.1)
    assert [(m["type"], m["seq"]) for m in sink.messages] == [("snapshot", 1)]
    task.cancel()


def test_client_ops_errors_and_subscription() -> None:
    c = client(Recorder().send)
    queued = c._events  # what the sender would send next
    handle_text(c, "{oops")
    handle_text(c, '{"op": "launch", "payload": "secret-value"}')
    handle_text(c, '["not", "an", "object"]')
    handle_text(c, '{"op": "subscribe", "channels": ["nope"]}')
    handle_text(c, '{"op": "subscribe", "min_net_spread": "NaN"}')
    codes = [json.loads(data)["code"] for _, data in queued]
    assert codes == ["malformed_json", "unknown_op", "unknown_op", "invalid_subscription", "invalid_subscription"]
    assert all("secret-value" not in data for _, data in queued)
    assert c.filter == Filter()  # invalid subscriptions change nothing
    handle_text(c, '{"op": "subscribe", "channels": ["prices"], "symbols": ["btc"], "min_net_spread": 0.002}')
    assert c.filter == Filter(
        channels=frozenset({"prices"}),
        symbols=frozenset({"BTC"}),
        min_net_spread=Decimal("0.002"),
        all_instruments=True,
    )
    handle_text(c, '{"op": "ping"}')
    assert queued[-1][0] == "pong"


def test_response_models_mirror_the_event_schemas() -> None:
    for struct, model in ((Opportunity, OpportunityOut), (Leg, LegOut), (EpisodeClosed, EpisodeClosedOut)):
        expected = {f.name for f in msgspec.structs.fields(struct)}
        if struct is not Leg:
            expected.add("type")  # the tag field
        assert set(model.model_fields) == expected, struct


def test_read_model_dedupes_events_and_reports_changed_quotes_only() -> None:
    model, t = ReadModel(alerts_keep=2), 1_700_000_000_000_000_000
    a, b = quote("BTC-USDT-PERP@a", "1", "2", t), quote("BTC-USDT-PERP@b", "1", "2", t)
    first = Changes()
    model.apply_state("BTC", SymbolState(quotes={a.instrument_id: a, b.instrument_id: b}), first)
    newer = quote("BTC-USDT-PERP@b", "1.5", "2", t + 1)
    second = Changes()
    model.apply_state("BTC", SymbolState(quotes={a.instrument_id: a, b.instrument_id: newer}), second)
    assert [q.instrument_id for _, q in first.quotes] == [a.instrument_id, b.instrument_id]
    assert [q for _, q in second.quotes] == [newer]
    model.apply_state("BTC", None, Changes())  # tombstone
    assert model.symbols == {}
    one = Decimal(1)
    leg = Leg(venue="a", instrument_id="x", price=one, size=one, fee=one, age_ms=0, exchange_ts_ns=t, receipt_ts_ns=t)
    alerts = [
        Opportunity(
            event_id=f"BTC:a->b:{i}", symbol="BTC", buy=leg, sell=leg, gross_spread=one, net_spread=one, size=one,
            notional=one, skew_ms=0, episode_start_ts_ns=i, exchange_ts_ns=t, receipt_ts_ns=t, detected_ts_ns=t,
        )
        for i in (1, 1, 2, 3)
    ]  # fmt: skip
    changes = Changes()
    for alert in alerts:
        model.apply_alert(alert, changes)
    assert [a.event_id for a in changes.alerts] == ["BTC:a->b:1", "BTC:a->b:2", "BTC:a->b:3"]
    assert list(model.alerts) == ["BTC:a->b:2", "BTC:a->b:3"]  # bounded by alerts_keep
