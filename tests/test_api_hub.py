"""WebSocket fan-out without sockets: bounded queues, coalescing, sequence numbers, client ops."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import jsonschema
import msgspec
import pytest

from api.hub import Client, Filter, Hub, Limits, SlowClientError
from api.main import build_context
from api.metrics import ApiMetrics
from api.models import EpisodeClosedOut, LegOut, OpportunityOut
from api.readmodel import Changes, ReadModel
from api.universe import Universe
from api.views_arbitrage import ArbFilter, open_episodes
from api.wire import to_json
from api.ws import handle_text, ws_schema
from processors.arbitrage import Outcome, process_quote
from schemas.arbitrage import EpisodeClosed, Leg, Opportunity, SymbolState, decode_state, encode
from tests.test_api_expected import BTC_NET, ETH_NET, FEE, NUM
from tests.test_api_support import D, health_script, quote, scenario_settings


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        self.messages.append(json.loads(text, parse_float=D))  # numbers keep their digits


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
    codes = [json.loads(data)["code"] for _, data, _ in queued]
    assert codes == ["malformed_json", "unknown_op", "unknown_op", "invalid_subscription", "invalid_subscription"]
    assert all("secret-value" not in data for _, data, _ in queued)
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


async def test_open_episode_updates_reach_matching_subscribers_even_when_no_alert_is_sent() -> None:
    settings = scenario_settings()
    config = settings.arb_config()
    ctx = build_context(settings, None, model=ReadModel(), universe=Universe())
    model, publisher, hub = ctx.model, ctx.publisher, ctx.hub
    assert publisher is not None and hub is not None
    t0 = time.time_ns()
    for h in health_script(t0):
        model.apply_health(h, Changes())
    model.mark_complete()
    schemas = (await ws_schema())["messages"]
    validate = {kind: jsonschema.Draft202012Validator(s) for kind, s in schemas.items()}

    sinks: dict[str, Recorder] = {}
    tasks = []
    for name, subscription in {
        "btc": {"symbols": ["BTC"]},
        "eth": {"symbols": ["ETH"]},
        "btc_binance_bybit": {"symbols": ["BTC"], "venues": ["binance", "bybit"]},
        "episodes_only": {"channels": ["episodes"]},
    }.items():
        sinks[name] = Recorder()
        c = Client(sinks[name].send, publisher.snapshot, Limits(queue_size=100, coalesce_s=0.01), ctx.metrics)
        hub.add(c)
        handle_text(c, json.dumps({"op": "subscribe", **subscription}))
        tasks.append(asyncio.create_task(c.run()))
    await wait_until(lambda: all(any(m["type"] == "snapshot" for m in s.messages) for s in sinks.values()))
    assert all(s.messages[0]["data"]["open_episodes"] == [] for s in sinks.values())

    states: dict[str, SymbolState] = {}

    def tick(q: Any) -> Outcome:
        state = states.setdefault(q.base, SymbolState())
        outcome = process_quote(q.base, state, q, model.health.by_venue, q.receipt_ts_ns, config)
        changes = Changes()
        model.apply_state(q.base, decode_state(encode(state)), changes)  # a changelog record: a fresh copy
        for alert in outcome.alerts:
            model.apply_alert(alert, changes)
        publisher.on_changes(changes)
        return outcome

    def episodes(name: str, symbol: str) -> list[dict[str, Any]]:
        found = [m for m in sinks[name].messages if m["type"] == "episodes" and m["data"]["symbol"] == symbol]
        for m in found:
            validate["episodes"].validate(m["data"])
        return found

    ms = 1_000_000
    tick(quote("BTC-USDT-PERP@binance", "100000", "100001", t0 + 1 * ms))
    assert len(tick(quote("BTC-USDT-PERP@bybit", "100400", "100401", t0 + 2 * ms)).alerts) == 1
    await wait_until(lambda: len(episodes("btc", "BTC")) == 1)
    [first] = episodes("btc", "BTC")[0]["data"]["episodes"]
    assert (first["buy_venue"], first["sell_venue"], first["alerted"], first["ticks"]) == ("binance", "bybit", True, 1)
    assert first["last_net_spread"] == NUM(BTC_NET)

    # A second pair opens inside the symbol's cooldown: no alert, but the episode is streamed.
    okx_net = (D("100300") - D("100001")) / D("100001") - FEE["binance"] - FEE["okx"]
    assert tick(quote("BTC-USDT-PERP@okx", "100300", "100301", t0 + 3 * ms)).alerts == []
    await wait_until(lambda: len(episodes("btc", "BTC")) == 2)
    latest = episodes("btc", "BTC")[-1]["data"]["episodes"]
    assert [(e["buy_venue"], e["sell_venue"], e["alerted"]) for e in latest] == [
        ("binance", "bybit", True),
        ("binance", "okx", False),
    ]  # best last net spread first
    assert latest[1]["last_net_spread"] == NUM(okx_net)
    # Same items as GET /api/opportunities (up to alive_ms, which moves with the clock).
    rest = json.loads(to_json(open_episodes(model, time.time_ns(), ArbFilter(symbol="BTC"), None, 100)), parse_float=D)
    assert [{**e, "alive_ms": 0} for e in latest] == [{**e, "alive_ms": 0} for e in rest["opportunities"]]
    assert [m["type"] for m in sinks["btc"].messages].count("opportunity") == 1  # only the first one alerted

    # A quote that changes no episode sends none.
    changes = Changes()
    state = states["BTC"]
    process_quote("BTC", state, quote("BTC-USD-INV-PERP@bitmex", "99000", "99010", t0 + 4 * ms), {}, t0, config)
    model.apply_state("BTC", decode_state(encode(state)), changes)
    assert changes.episodes == [] and changes.quotes

    tick(quote("ETH-USDT-PERP@binance", "3000", "3000.5", t0 + 5 * ms))
    tick(quote("ETH-USDT-PERP@okx", "3010", "3010.5", t0 + 6 * ms))
    await wait_until(lambda: len(episodes("eth", "ETH")) == 1 and len(episodes("episodes_only", "ETH")) == 1)
    assert episodes("eth", "ETH")[0]["data"]["episodes"][0]["last_net_spread"] == NUM(ETH_NET)
    # Symbol and venue filters: ETH's subscriber saw nothing of BTC; binance/bybit only saw that pair.
    assert episodes("eth", "BTC") == [] and episodes("btc", "ETH") == []
    only_pair = episodes("btc_binance_bybit", "BTC")[-1]["data"]["episodes"]
    assert [(e["buy_venue"], e["sell_venue"]) for e in only_pair] == [("binance", "bybit")]
    assert len(episodes("episodes_only", "BTC")[-1]["data"]["episodes"]) == 2
    assert all(m["type"] in {"snapshot", "episodes"} for m in sinks["episodes_only"].messages)

    # The snapshot (subscribe / resync) carries the current open episodes.
    for c in list(hub.clients):
        c.request_snapshot()
    await wait_until(lambda: all(sum(m["type"] == "snapshot" for m in s.messages) == 2 for s in sinks.values()))
    snaps = {name: [m for m in s.messages if m["type"] == "snapshot"][-1]["data"] for name, s in sinks.items()}
    for snap in snaps.values():
        validate["snapshot"].validate(snap)
    assert [(e["symbol"], e["sell_venue"]) for e in snaps["btc"]["open_episodes"]] == [("BTC", "bybit"), ("BTC", "okx")]
    assert [(e["symbol"], e["sell_venue"]) for e in snaps["eth"]["open_episodes"]] == [("ETH", "okx")]
    assert len(snaps["btc_binance_bybit"]["open_episodes"]) == 1
    assert len(snaps["episodes_only"]["open_episodes"]) == 3
    assert snaps["episodes_only"]["opportunities"] is None  # that section belongs to the opportunities channel
    for task in tasks:
        task.cancel()


def _deliveries(metrics: ApiMetrics) -> tuple[float, float]:
    """(count, sum of seconds) of arbstream_api_ws_delivery_seconds."""
    count = metrics.registry.get_sample_value("arbstream_api_ws_delivery_seconds_count") or 0.0
    total = metrics.registry.get_sample_value("arbstream_api_ws_delivery_seconds_sum") or 0.0
    return count, total


class Gate:
    """A socket whose peer reads only when told to."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.texts: list[str] = []

    async def send(self, text: str) -> None:
        await self.open.wait()
        self.texts.append(text)


async def test_an_event_s_delivery_time_is_observed_once_its_last_wanting_client_has_it() -> None:
    metrics = ApiMetrics()
    hub = Hub(metrics)
    fast, slow, other = Recorder(), Gate(), Recorder()
    limits = Limits(queue_size=100, coalesce_s=0.05)
    clients = [Client(s.send, lambda f: "{}", limits, metrics) for s in (fast, slow, other)]
    for c in clients:
        hub.add(c)
    clients[2].filter = Filter(channels=frozenset({"prices"}))  # does not want opportunities
    tasks = [asyncio.create_task(c.run()) for c in clients]
    try:
        hub.publish_event("opportunity", "opportunities", '{"n":1}', lambda f: True)
        await wait_until(lambda: len(fast.messages) == 1)
        await asyncio.sleep(0.05)
        assert _deliveries(metrics) == (0.0, 0.0)  # the slow client has not taken it yet
        slow.open.set()
        await wait_until(lambda: _deliveries(metrics)[0] == 1.0)
        assert _deliveries(metrics)[1] >= 0.05  # published before the slow socket opened
        assert other.messages == []
    finally:
        for t in tasks:
            t.cancel()


async def test_a_delivery_is_not_left_waiting_for_a_client_that_drops_or_leaves() -> None:
    metrics = ApiMetrics()
    hub = Hub(metrics)
    gone, full = Gate(), Gate()
    leaving = Client(gone.send, lambda f: "{}", Limits(queue_size=100, coalesce_s=0.05), metrics)
    tiny = Client(full.send, lambda f: "{}", Limits(queue_size=1, coalesce_s=0.05), metrics)
    hub.add(leaving)
    hub.add(tiny)
    hub.publish_event("opportunity", "opportunities", '{"n":1}', lambda f: True)
    hub.publish_event("opportunity", "opportunities", '{"n":2}', lambda f: True)  # tiny drops n=1
    assert _deliveries(metrics)[0] == 0.0
    hub.remove(leaving)  # its two queued events will never be sent
    assert _deliveries(metrics)[0] == 1.0  # n=1: dropped by one, abandoned by the other
    hub.remove(tiny)
    assert _deliveries(metrics)[0] == 2.0


class FakeDirect:
    """A DirectWriter whose socket takes writes only while ``open`` is set; records each write."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.closed = False
        self.writes: list[list[dict[str, Any]]] = []

    def ready(self) -> bool:
        return self.open.is_set() and not self.closed

    def write(self, texts: Any) -> None:
        if self.closed:
            raise ConnectionResetError("closed")
        self.writes.append([json.loads(t) for t in texts])

    async def drained(self) -> None:
        await self.open.wait()

    def messages(self) -> list[dict[str, Any]]:
        return [m for write in self.writes for m in write]


def direct_client(writer: FakeDirect, metrics: ApiMetrics, limits: Limits | None = None) -> Client:
    asgi = Blocked()  # the ASGI send is never used while a direct writer is there
    return Client(asgi.send, lambda f: '{"snap":1}', limits or Limits(queue_size=100, coalesce_s=0.05), metrics, writer)


async def test_an_idle_client_gets_an_event_while_it_is_published() -> None:
    metrics = ApiMetrics()
    hub = Hub(metrics)
    writer = FakeDirect()
    hub.add(direct_client(writer, metrics))  # no sender task: nothing but the publisher can write
    hub.publish_event("opportunity", "opportunities", '{"n":1}', lambda f: True)
    hub.publish_event("opportunity", "opportunities", '{"n":2}', lambda f: True)
    assert writer.writes == [
        [{"type": "opportunity", "seq": 1, "data": {"n": 1}}],
        [{"type": "opportunity", "seq": 2, "data": {"n": 2}}],
    ]
    assert _deliveries(metrics)[0] == 2.0  # observed as soon as every wanting client had it
    assert metrics.registry.get_sample_value("arbstream_api_ws_messages_sent_total", {"type": "opportunity"}) == 2.0
    hub.publish_event("opportunity", "opportunities", '{"n":3}', lambda f: False)
    assert _deliveries(metrics)[0] == 2.0  # nobody wanted it: nothing observed


async def test_a_full_socket_queues_events_and_its_sender_writes_them_in_order_in_one_write() -> None:
    metrics = ApiMetrics()
    hub = Hub(metrics)
    writer = FakeDirect()
    c = direct_client(writer, metrics)
    hub.add(c)
    task = asyncio.create_task(c.run())
    try:
        writer.open.clear()  # the transport's buffer is above its high-water mark
        for n in (1, 2, 3):
            hub.publish_event("opportunity", "opportunities", f'{{"n":{n}}}', lambda f: True)
        await asyncio.sleep(0.02)
        assert writer.writes == [] and _deliveries(metrics)[0] == 0.0
        writer.open.set()
        await wait_until(lambda: len(writer.writes) == 1)
        assert [(m["seq"], m["data"]["n"]) for m in writer.writes[0]] == [(1, 1), (2, 2), (3, 3)]
        await wait_until(lambda: _deliveries(metrics)[0] == 3.0)
        hub.publish_event("opportunity", "opportunities", '{"n":4}', lambda f: True)  # idle again: at once
        assert writer.writes[-1] == [{"type": "opportunity", "seq": 4, "data": {"n": 4}}]
    finally:
        task.cancel()


async def test_nothing_overtakes_what_the_sender_holds_or_a_due_snapshot() -> None:
    metrics = ApiMetrics()
    writer = FakeDirect()
    c = direct_client(writer, metrics)
    writer.open.clear()
    c.offer_event("opportunity", '{"n":1}')
    task = asyncio.create_task(c.run())
    try:
        await asyncio.sleep(0.02)  # the sender took n=1 and waits for the socket
        writer.open.set()  # ready again, the sender not yet resumed: n=2 must not overtake n=1
        c.offer_event("opportunity", '{"n":2}')
        c.offer_event("opportunity", '{"n":3}')
        await wait_until(lambda: len(writer.messages()) == 3)
        assert [m["data"]["n"] for m in writer.messages()] == [1, 2, 3]
        c.request_snapshot()
        c.offer_event("opportunity", '{"n":4}')  # queued behind the snapshot, which supersedes it
        await wait_until(lambda: any(m["type"] == "snapshot" for m in writer.messages()))
        assert [m["type"] for m in writer.messages()][3:] == ["snapshot"]
        assert [m["seq"] for m in writer.messages()] == [1, 2, 3, 4]
    finally:
        task.cancel()


async def test_a_socket_that_stays_full_drops_the_client_and_a_closed_one_never_raises_to_the_publisher() -> None:
    metrics = ApiMetrics()
    hub = Hub(metrics)
    stuck, closed = FakeDirect(), FakeDirect()
    stuck.open.clear()
    closed.closed = True
    slow = direct_client(stuck, metrics, Limits(queue_size=10, coalesce_s=0.01, send_timeout_s=0.2))
    gone = direct_client(closed, metrics)
    for c in (slow, gone):
        hub.add(c)
    hub.publish_event("opportunity", "opportunities", '{"n":1}', lambda f: True)  # no exception here
    assert closed.writes == [] and gone.seq == 0
    with pytest.raises(SlowClientError):
        await asyncio.wait_for(slow.run(), 2)
    with pytest.raises(ConnectionResetError):  # its sender ends; the endpoint then removes the client
        await asyncio.wait_for(gone.run(), 2)


async def test_a_batch_of_changes_reaches_each_client_in_one_write() -> None:
    metrics = ApiMetrics()
    hub = Hub(metrics)
    writers = [FakeDirect(), FakeDirect()]
    for writer in writers:
        hub.add(direct_client(writer, metrics))
    with hub.batched():
        hub.publish_event("opportunity", "opportunities", '{"n":1}', lambda f: True)
        hub.publish_event("arbitrage_opportunities", "opportunities", '[{"n":1}]', lambda f: True)
        assert [w.writes for w in writers] == [[], []]  # held until the batch ends
        assert _deliveries(metrics)[0] == 0.0
    for writer in writers:
        assert [[(m["type"], m["seq"]) for m in write] for write in writer.writes] == [
            [("opportunity", 1), ("arbitrage_opportunities", 2)]
        ]
    assert _deliveries(metrics)[0] == 2.0
    sent = "arbstream_api_ws_messages_sent_total"
    assert metrics.registry.get_sample_value(sent, {"type": "opportunity"}) == 2.0  # one per client
    assert metrics.registry.get_sample_value(sent, {"type": "arbitrage_opportunities"}) == 2.0
    hub.publish_event("opportunity", "opportunities", '{"n":2}', lambda f: True)  # no batch: at once
    assert [len(w.writes) for w in writers] == [2, 2]


async def test_each_batch_starts_one_client_further_on_and_a_busy_client_keeps_its_order() -> None:
    metrics = ApiMetrics()
    hub = Hub(metrics)
    order: list[int] = []

    class Logged(FakeDirect):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n

        def write(self, texts: Any) -> None:
            order.append(self.n)
            super().write(texts)

    writers = [Logged(n) for n in range(3)]
    clients = [direct_client(w, metrics) for w in writers]
    for c in clients:
        hub.add(c)
    for _ in range(3):
        with hub.batched():
            hub.publish_event("opportunity", "opportunities", '{"n":1}', lambda f: True)
    firsts = order[0::3]
    assert sorted(firsts) == [0, 1, 2]  # every client was served first once in three batches
    writers[0].open.clear()  # its socket is full: the next batch is queued for its sender, in order
    with hub.batched():
        hub.publish_event("opportunity", "opportunities", '{"n":2}', lambda f: True)
        hub.publish_event("arbitrage_opportunities", "opportunities", '[{"n":2}]', lambda f: True)
    assert [m["data"] for m in writers[1].writes[-1]] == [{"n": 2}, [{"n": 2}]]
    task = asyncio.create_task(clients[0].run())
    try:
        writers[0].open.set()
        await wait_until(lambda: len(writers[0].messages()) == 5)
        assert [(m["seq"], m["type"]) for m in writers[0].messages()[3:]] == [
            (4, "opportunity"),
            (5, "arbitrage_opportunities"),
        ]
        assert _deliveries(metrics)[0] == 5.0
    finally:
        task.cancel()
