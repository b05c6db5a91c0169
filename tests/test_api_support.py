"""Scenario, in-process model and the real stack shared by the API tests (this module holds no tests).

The scenario is a short script of quotes whose consequences are known by hand:
BTC opens a binance->bybit opportunity (alert), ETH opens one and closes it
(alert + closed episode), PEPE mixes a 1000PEPE contract with a plain one (no
99,900 % "opportunity"), an inverse BitMEX contract never pairs with USDT ones,
and a CoinDCX quote has only a last price.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI

from api.direct_ws import DirectSendProtocol
from api.readmodel import Changes, ReadModel
from api.settings import ApiSettings
from plumbing.broker import free_port
from plumbing.kafka import ensure_topics, symbol_partitioner
from processors.arbitrage import process_quote
from schemas.arbitrage import SymbolState, decode_event
from schemas.market import ContractKind, Funding, Health, HealthState, Quote, decode_prices, encode, instrument_key
from schemas.topics import HEALTH, OPPORTUNITIES, OPPORTUNITY_EPISODES, PRICES, ticks_topic, topic_name
from tests.helpers import consume_until, running, service_env

D = Decimal
WORKER_SYMBOLS = ["BTC", "ETH", "PEPE", "SOL", "AVAX", "DOGE"]
SETTINGS_ENV = {
    "ARBSTREAM_SYMBOLS": ",".join(WORKER_SYMBOLS),
    "ARBSTREAM_MIN_TICKS": "1",
    "ARBSTREAM_MAX_QUOTE_AGE_MS": "600000",  # event-time legs of a slow test run never go stale
    "ARBSTREAM_COOLDOWN_S": "120",
    "ARBSTREAM_TOPIC_PARTITIONS": "3",
}
Tick = Quote | Funding


def quote(
    instrument_id: str,
    bid: str | None,
    ask: str | None,
    t: int,
    *,
    bid_size: str | None = "2",
    ask_size: str | None = "1.5",
    mult: str = "1",
    last: str | None = None,
    native: str = "NATIVE",
) -> Quote:
    key = instrument_key(instrument_id)  # the test's stand-in for the Instrument ingest copies the fields from
    return Quote(
        instrument_id=instrument_id,
        venue=key.venue,
        native_symbol=native,
        base=key.base,
        quote=key.quote,
        kind=key.kind,
        bid=D(bid) if bid is not None else None,
        bid_size=D(bid_size) if bid is not None and bid_size is not None else None,
        ask=D(ask) if ask is not None else None,
        ask_size=D(ask_size) if ask is not None and ask_size is not None else None,
        last=D(last) if last is not None else None,
        price_multiplier=D(mult),
        exchange_ts_ns=t - 1_000_000,
        receipt_ts_ns=t,
    )


def health(venue: str, state: HealthState, t: int, frames: int, reconnects: int = 0, reason: str = "") -> Health:
    return Health(
        venue=venue,
        connection="main",
        state=state,
        reason=reason,
        reconnects=reconnects,
        frames_total=frames,
        events_total=frames - 10,
        last_data_ts_ns=t - 200_000_000,
        exchange_ts_ns=t,
        receipt_ts_ns=t,
    )


def scenario(t0: int) -> list[Tick]:
    ms = 1_000_000
    return [
        quote("BTC-USDT-PERP@binance", "100000", "100001", t0 + 1 * ms, bid_size="2", ask_size="1.5"),
        quote("BTC-USDT-PERP@bybit", "100400", "100401", t0 + 2 * ms, bid_size="0.8", ask_size="3"),
        quote("BTC-USD-INV-PERP@bitmex", "99000", "99010", t0 + 3 * ms),
        quote("BTC-USDT-PERP@coindcx", None, None, t0 + 4 * ms, last="100200"),
        Funding(
            instrument_id="BTC-USDT-PERP@binance",
            venue="binance",
            native_symbol="BTCUSDT",
            base="BTC",
            quote="USDT",
            kind=ContractKind.LINEAR,
            rate=D("0.0001"),
            interval_h=8,
            exchange_ts_ns=t0 + 4 * ms,
            receipt_ts_ns=t0 + 5 * ms,
        ),
        quote("ETH-USDT-PERP@binance", "3000", "3000.5", t0 + 6 * ms, bid_size="10", ask_size="10"),
        quote("ETH-USDT-PERP@okx", "3010", "3010.5", t0 + 7 * ms, bid_size="5", ask_size="5"),
        quote("ETH-USDT-PERP@okx", "3000.6", "3001", t0 + 8 * ms, bid_size="5", ask_size="5"),
        quote("PEPE-USDT-PERP@binance", "0.01120", "0.01121", t0 + 9 * ms, mult="1000", native="1000PEPEUSDT"),
        quote("PEPE-USDT-PERP@okx", "0.00001119", "0.0000112", t0 + 10 * ms, native="PEPE-USDT-SWAP"),
        quote("SOL-USDT-PERP@binance", "150", "150.01", t0 + 11 * ms),
        quote("SOL-USDT-PERP@bybit", "150", "150.02", t0 + 12 * ms),
    ]


def health_script(t0: int) -> list[Health]:
    """Two snapshots per connection, 5 s apart, 50 frames apart: 10 messages/s."""
    snapshots = []
    for venue in ("binance", "bybit", "okx", "bitmex", "coindcx"):
        snapshots += [
            health(venue, HealthState.STREAMING, t0 - 5_000_000_000, 100),
            health(venue, HealthState.STREAMING, t0, 150),
        ]
    snapshots.append(health("kucoin", HealthState.DISCONNECTED, t0, 0, reconnects=3, reason="connection refused"))
    return snapshots


def scenario_settings(**overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {"symbols": WORKER_SYMBOLS, "min_ticks": 1, "max_quote_age_ms": 600_000}
    return ApiSettings(**{"cooldown_s": 120, **values, **overrides})


def in_process_model(t0: int, settings: ApiSettings | None = None) -> ReadModel:
    """The read model the real stack would build from the scenario, using the worker's own logic."""
    config = (settings or scenario_settings()).arb_config()
    states: dict[str, SymbolState] = {}
    model, changes = ReadModel(), Changes()
    for h in health_script(t0):
        model.apply_health(h, changes)
    for tick in scenario(t0):
        state = states.setdefault(tick.base, SymbolState())
        if isinstance(tick, Funding):
            state.funding[tick.instrument_id] = tick
            continue
        outcome = process_quote(tick.base, state, tick, model.health.by_venue, tick.receipt_ts_ns, config)
        for alert in outcome.alerts:
            model.apply_alert(alert, changes)
        for closed in outcome.closed:
            model.apply_closed(closed, changes)
    for symbol, state in states.items():
        model.apply_state(symbol, state, changes)
    model.mark_complete()
    return model


VOLATILE = {
    "age_ms",
    "buy_age_ms",
    "sell_age_ms",
    "alive_ms",
    "seconds_until_next_alert",
    "seconds_since_last_alert",
    "timestamp_iso",
    "last_message_age_ms",
    "reported_age_ms",
    "last_quote_age_ms",
}


def stable(body: Any) -> Any:
    """The response without what moves with the wall clock (ages, the response time)."""
    if isinstance(body, dict):
        # The response time: an ISO string, or Unix ms where the seed had it (/api/spread, with timestamp_iso).
        now_ms = "timestamp_iso" in body
        return {
            k: stable(v)
            for k, v in body.items()
            if k not in VOLATILE and not (k == "timestamp" and (isinstance(v, str) or now_ms))
        }
    if isinstance(body, list):
        return [stable(v) for v in body]
    return body


def get_json(url: str, timeout_s: float = 10.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, json.loads(response.read(), parse_float=Decimal)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null", parse_float=Decimal)


def wait_healthy(base_url: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Wait until the API has loaded, reaches the broker and runs every background task.

    Not ``status == "ok"``: the scenario's venues report once, so /health goes ``down`` (no
    fresh health report, no fresh tick) while the API itself is fine (rule in api/health_rule.py).
    """
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = get_json(f"{base_url}/health", 5)[1]
            loaded = isinstance(last, dict) and last.get("complete") is True and last["broker"]["reachable"] is True
            if loaded and all(t["state"] == "running" for t in last.get("tasks", [])):
                return dict(last)
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"{base_url} not healthy in {timeout_s}s: {last}")


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws=DirectSendProtocol)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "in-process API did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Stack:
    bootstrap: str
    namespace: str
    logs: Path
    api_env: dict[str, str]
    api_urls: list[str]
    t0: int
    fed: list[Tick] = field(default_factory=list)

    async def feed(self, ticks: list[Tick]) -> None:
        """Produce ticks keyed by instrument id on their symbol's partition (as ingest does), in order."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, partitioner=symbol_partitioner)
        await producer.start()
        try:
            for tick in ticks:
                topic = ticks_topic(tick.base, self.namespace)
                await producer.send_and_wait(topic, encode(tick), key=tick.instrument_id.encode())
                self.fed.append(tick)
        finally:
            await producer.stop()

    async def feed_health(self, snapshots: list[Health]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            for h in snapshots:
                await producer.send_and_wait(topic_name(HEALTH, self.namespace), encode(h), key=h.venue.encode())
        finally:
            await producer.stop()

    def api_env_for(self, port: int) -> dict[str, str]:
        return {**self.api_env, "ARBSTREAM_API_PORT": str(port)}


async def _wait_for_topic(bootstrap: str, topic: str, timeout_s: float) -> None:
    """Subscribing to a missing topic would make the broker auto-create it (uncompacted): let Faust do it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while topic not in await admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} never created"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def _worker_done(stack: Stack) -> None:
    """Wait for the scenario's known outcome: final quotes, 2 alerts (BTC, ETH), 1 closed episode (ETH)."""
    ns = stack.namespace
    prices = topic_name(PRICES, ns)
    final = {t.instrument_id: t for t in stack.fed if isinstance(t, Quote)}

    def quotes_done(records: list[Any]) -> bool:
        latest = {quote.instrument_id: quote for r in records for quote in decode_prices(r.value)}
        return all(latest.get(instrument_id) == quote for instrument_id, quote in final.items())

    await _wait_for_topic(stack.bootstrap, prices, 60)
    quotes = await consume_until(stack.bootstrap, [prices], quotes_done, 120)
    assert quotes_done(quotes), "the worker did not publish the scenario's final quotes"
    events = [topic_name(OPPORTUNITIES, ns), topic_name(OPPORTUNITY_EPISODES, ns)]
    records = await consume_until(stack.bootstrap, events, lambda rs: len(rs) >= 3, 60)
    kinds = sorted((type(decode_event(r.value)).__name__, decode_event(r.value).symbol) for r in records)
    assert kinds == [("EpisodeClosed", "ETH"), ("Opportunity", "BTC"), ("Opportunity", "ETH")], kinds


@pytest.fixture(scope="module")
def api_stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Broker + `arbstream worker` fed the scenario + two `arbstream api` replicas (A, B).

    Module-scoped: each test module that imports it gets its own namespace and processes, torn
    down when the module ends, so modules never see each other's ticks.
    """
    ns = f"t{uuid.uuid4().hex[:10]}"
    logs = tmp_path_factory.mktemp("api-stack")
    symbols_file = logs / "symbols.txt"
    symbols_file.write_text("BTC:BTCUSDT:binance\nBTC:BTCUSDT:bybit\n")
    base_env = service_env(kafka_bootstrap, ns, **SETTINGS_ENV)
    # The scenario is fed before the worker starts: exact, not conflated as a lagging worker would.
    worker_env = {**base_env, "ARBSTREAM_WORKER_CONFLATE_AFTER_MS": "0"}
    api_env = {
        **base_env,
        "ARBSTREAM_SYMBOLS_FILE": str(symbols_file),
        "ARBSTREAM_WS_SEND_TIMEOUT_S": "2",
        # test_api_ws floods resyncs to block a socket; the rate limit has its own tests.
        "ARBSTREAM_WS_SNAPSHOTS_PER_MIN": "100000",
        "ARBSTREAM_WS_REFRESH_S": "0.5",
        "ARBSTREAM_WS_COALESCE_MS": "50",
        "ARBSTREAM_DISCOVER_INTERVAL_S": "1",
    }
    stack = Stack(kafka_bootstrap, ns, logs, api_env, [], time.time_ns())
    # Created up front so the worker's first partition assignment includes them.
    topics = [ticks_topic(s, ns) for s in WORKER_SYMBOLS] + [topic_name(HEALTH, ns)]
    asyncio.run(ensure_topics(kafka_bootstrap, topics, partitions=3))
    asyncio.run(stack.feed_health(health_script(stack.t0)))
    asyncio.run(stack.feed(scenario(stack.t0)))
    with ExitStack() as processes:
        worker = processes.enter_context(running(["worker"], worker_env, logs / "worker.log"))
        asyncio.run(_worker_done(stack))
        for name in ("a", "b"):
            port = free_port()
            processes.enter_context(running(["api"], stack.api_env_for(port), logs / f"api-{name}.log"))
            stack.api_urls.append(f"http://127.0.0.1:{port}")
        for url in stack.api_urls:
            wait_healthy(url)
        yield stack
        assert worker.poll() is None, (logs / "worker.log").read_text()[-3000:]
