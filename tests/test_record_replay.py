"""Record raw frames from the simulator, replay them through Kafka into the same processors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from ingest.instruments import load_venue_instruments
from ingest.recorder import read_recording
from ingest.simulator.universe import generated_market
from ingest.venues import VENUE_NAMES
from plumbing.broker import free_port
from schemas.arbitrage import Opportunity, decode_event
from schemas.market import Instrument, decode_ticks
from schemas.topics import OPPORTUNITIES, ticks_topic, topic_name
from tests.helpers import REPO_ROOT, TopicWatcher, running, service_env, wait_http

pytestmark = pytest.mark.integration


def test_instruments_refresh_from_simulator_caches_the_served_market(tmp_path: Path) -> None:
    port = free_port()
    env = service_env("unused:1", "x", ARBSTREAM_SIMULATOR_PORT=str(port))
    with running(["simulate"], env, tmp_path / "sim.log"):
        asyncio.run(wait_http(f"http://127.0.0.1:{port}/control/status"))
        done = subprocess.run(
            [sys.executable, "-m", "arbstream.cli", "instruments", "refresh"],
            env={
                **env,
                "ARBSTREAM_SIMULATOR_URL": f"http://127.0.0.1:{port}",
                "ARBSTREAM_INSTRUMENTS_CACHE_DIR": str(tmp_path / "cache"),
            },
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=60,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    # The simulator serves its generated market (deterministic); a venue whose simulator cannot
    # generate listings serves its bundled file.
    market = generated_market(VENUE_NAMES)
    for venue in VENUE_NAMES:
        generated = [i for i in market.instruments if i.venue == venue]
        expected = generated if market.sources[venue] == "generated" else load_venue_instruments(venue)
        cached = load_venue_instruments(venue, tmp_path / "cache")
        assert sorted(cached, key=_by_id) == sorted(expected, key=_by_id), venue
        assert f"{venue}: " in done.stdout


def _by_id(instrument: Instrument) -> str:
    return instrument.instrument_id


async def test_recorded_frames_replay_into_the_planted_opportunity_at_recorded_times(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    port = free_port()
    recordings = tmp_path / "rec"
    # BTC and ETH only (the simulator's market and what is recorded): the test counts their ticks;
    # no automatic dislocations: the first alert must be the one this test plants.
    sim_env = service_env(
        kafka_bootstrap,
        namespace,
        ARBSTREAM_SIMULATOR_PORT=str(port),
        ARBSTREAM_SYMBOLS="BTC,ETH",
        ARBSTREAM_SIMULATOR_AUTO_DISLOCATIONS="false",
    )
    record_env = {
        **sim_env,
        "ARBSTREAM_SIMULATOR_URL": f"http://127.0.0.1:{port}",
        "ARBSTREAM_VENUES": "binance,okx",
    }
    with running(["simulate"], sim_env, tmp_path / "sim.log"):
        await wait_http(f"http://127.0.0.1:{port}/control/status")
        started = time.time_ns()
        with running(["record", "--out", str(recordings)], record_env, tmp_path / "record.log"):
            await asyncio.sleep(2)
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{port}/control/dislocate?base=BTC&venue=okx&bps=120&seconds=2"
                async with http.post(url) as response:
                    assert response.status == 200
            await asyncio.sleep(3)
        ended = time.time_ns()
    rows = [row for path in sorted(recordings.glob("*.jsonl.gz")) for row in read_recording(path)]
    assert {venue for _, venue, _, _ in rows} == {"binance", "okx"}
    assert all(started <= receipt <= ended for receipt, _, _, _ in rows)

    # A replay is published at full speed, before the worker may have joined: it must be processed
    # exactly, not conflated as a lagging live worker would (decision 0015).
    worker_env = {**sim_env, "ARBSTREAM_MIN_TICKS": "1", "ARBSTREAM_WORKER_CONFLATE_AFTER_MS": "0"}
    opportunities = topic_name(OPPORTUNITIES, namespace)
    ticks = [ticks_topic("BTC", namespace), ticks_topic("ETH", namespace)]
    with running(["worker"], worker_env, tmp_path / "worker.log"):
        async with TopicWatcher(kafka_bootstrap, [opportunities, *ticks]) as watcher:
            done = subprocess.run(
                [sys.executable, "-m", "arbstream.cli", "replay", str(recordings)],
                env=sim_env,
                capture_output=True,
                text=True,
                cwd=REPO_ROOT,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            counts = dict(part.split("=") for part in done.stdout.split())
            await watcher.wait_for(
                lambda rs: sum(len(decode_ticks(r.value)) for r in rs if r.topic in ticks) >= int(counts["events"]),
                60,
                "all replayed ticks",
            )
            await watcher.wait_for(
                lambda rs: any(r.topic == opportunities for r in rs), 60, "an opportunity from the replayed dislocation"
            )
    replayed = [tick for r in watcher.records if r.topic in ticks for tick in decode_ticks(r.value)]
    assert len(replayed) == int(counts["events"]) and int(counts["malformed"]) == 0
    assert {e.receipt_ts_ns for e in replayed} <= {receipt for receipt, _, _, _ in rows}  # recorded times kept
    alerts = [decode_event(r.value) for r in watcher.records if r.topic == opportunities]
    alert = alerts[0]
    assert isinstance(alert, Opportunity) and alert.symbol == "BTC" and alert.sell.venue == "okx"
    assert started <= alert.detected_ts_ns <= ended  # event time of the recording, not of the replay
    assert "Traceback" not in (tmp_path / "sim.log").read_text()
