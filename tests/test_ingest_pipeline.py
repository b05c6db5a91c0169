"""Simulator -> `arbstream ingest` -> real Kafka: every venue's quotes, reconnects, staleness."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import aiohttp
import jsonschema
import pytest

from ingest.venues import implemented_venues
from plumbing.broker import free_port
from schemas.export import SCHEMA_DIR
from schemas.market import Health, HealthState, Quote, decode_health, decode_ticks
from schemas.topics import HEALTH, ticks_topic, topic_name
from tests.helpers import TopicWatcher, running, service_env

pytestmark = pytest.mark.integration


def _validator(topic: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMA_DIR / f"{topic}.schema.json").read_text()))


def _quotes(records, since_ns: int = 0) -> list[Quote]:
    events = [tick for r in records if ".ticks." in r.topic for tick in decode_ticks(r.value)]
    return [e for e in events if isinstance(e, Quote) and e.receipt_ts_ns >= since_ns]


def _health(records) -> list[Health]:
    return [decode_health(r.value) for r in records if r.topic.endswith(f".{HEALTH}")]


def _venues_with_both(quotes: list[Quote]) -> set[str]:
    seen = {(q.venue, q.base) for q in quotes}
    return {venue for venue, base in seen if base == "BTC" and (venue, "ETH") in seen}


async def test_simulated_venues_flow_through_kafka(kafka_bootstrap: str, namespace: str, tmp_path: Path) -> None:
    venues = implemented_venues()
    port, metrics_port = free_port(), free_port()
    # BTC and ETH only: ingest now takes the simulator's live listing (the whole generated market).
    sim_env = service_env(kafka_bootstrap, namespace, ARBSTREAM_SIMULATOR_PORT=str(port), ARBSTREAM_SYMBOLS="BTC,ETH")
    ingest_env = service_env(
        kafka_bootstrap,
        namespace,
        ARBSTREAM_SYMBOLS="BTC,ETH",
        ARBSTREAM_SIMULATOR_URL=f"http://127.0.0.1:{port}",
        ARBSTREAM_STALE_AFTER_S="3",
        ARBSTREAM_HEALTH_EVERY_S="1",
        ARBSTREAM_BACKOFF_INITIAL_S="0.2",
        ARBSTREAM_BACKOFF_MAX_S="1",
        ARBSTREAM_METRICS_PORT=str(metrics_port),
    )
    topics = [ticks_topic("BTC", namespace), ticks_topic("ETH", namespace), topic_name(HEALTH, namespace)]
    control = f"http://127.0.0.1:{port}/control"
    with (
        running(["simulate"], sim_env, tmp_path / "sim.log"),
        running(["ingest"], ingest_env, tmp_path / "ingest.log") as ingest,
    ):
        async with TopicWatcher(kafka_bootstrap, topics) as watcher, aiohttp.ClientSession() as http:
            await watcher.wait_for(
                lambda rs: _venues_with_both(_quotes(rs)) == set(venues), 90, f"BTC and ETH quotes from {venues}"
            )
            ticks_schema, health_schema = _validator("ticks"), _validator("health")
            for record in watcher.records:
                schema = health_schema if record.topic.endswith(HEALTH) else ticks_schema
                schema.validate(json.loads(record.value))
                if ".ticks." in record.topic:  # one symbol's ticks per record, keyed by the symbol
                    assert {tick.base.encode() for tick in decode_ticks(record.value)} == {record.key}

            dropped_at = time.time_ns()
            async with http.post(f"{control}/drop?venue=all") as response:
                assert response.status == 200
            await watcher.wait_for(
                lambda rs: _venues_with_both(_quotes(rs, since_ns=dropped_at + 10**9)) == set(venues),
                60,
                "data from every venue after the simulator dropped all connections",
            )
            reconnected = {h.venue for h in _health(watcher.records) if h.reconnects >= 1}
            assert reconnected == set(venues)

            async with http.post(f"{control}/stall?venue={venues[0]}&seconds=60") as response:
                assert response.status == 200
            await watcher.wait_for(
                lambda rs: any(h.venue == venues[0] and h.state is HealthState.STALE for h in _health(rs)),
                30,
                f"{venues[0]} reported stale on health",
            )
            stale_venues = {h.venue for h in _health(watcher.records) if h.state is HealthState.STALE}
            assert stale_venues == {venues[0]}
            async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                metrics = await response.text()
            for venue in venues:
                events = re.search(
                    rf'arbstream_ingest_events_total{{connection="[^"]+",venue="{venue}"}} (\S+)', metrics
                )
                assert events is not None and float(events.group(1)) > 0, venue
            delivered = re.search(r"^arbstream_ingest_delivered_total (\S+)", metrics, re.MULTILINE)  # not # HELP
            seen = sum(len(decode_ticks(r.value)) for r in watcher.records if ".ticks." in r.topic)
            # Cumulative deliveries cover at least every tick record the watcher already consumed.
            assert delivered is not None and float(delivered.group(1)) >= seen > 0
        assert ingest.poll() is None, (tmp_path / "ingest.log").read_text()[-3000:]
