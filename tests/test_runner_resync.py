"""A per-instrument sequence skip (``Parsed.resyncs``) is counted and reported; the socket stays up.

Bybit's ``orderbook.1`` carries hundreds of symbols per socket: one symbol's missed
delta must cost that symbol's quote until its book is whole again, never a
reconnect of everything else (issue 11). A connection-wide ``gap`` still ends the session.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from api.views_venues import connection_out
from ingest.instruments import load_venue_instruments
from ingest.metrics import IngestCollector
from ingest.runner import ConnectionRunner, RunnerConfig, SessionEnded
from ingest.venues import venue_class
from ingest.venues.base import Connection, Parsed
from schemas.market import Funding, Health, HealthState, Quote
from tests.venues.conftest import fixture_frames


class RecordingLink:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, frame: str) -> None:
        self.sent.append(frame)


def _runner() -> tuple[ConnectionRunner, list[Quote | Funding], list[Health]]:
    events: list[Quote | Funding] = []
    health: list[Health] = []

    async def on_events(batch: list[Quote | Funding]) -> None:
        events.extend(batch)

    async def on_health(item: Health) -> None:
        health.append(item)

    runner = ConnectionRunner(
        venue_class("bybit"),
        load_venue_instruments("bybit"),
        Connection("bybit-linear-0", "ws://unused", ()),
        RunnerConfig("ws://unused", "http://unused"),
        on_events,
        on_health,
        cast(Any, None),
    )
    return runner, events, health


def test_sequence_skip_is_counted_reported_and_the_session_goes_on() -> None:
    runner, events, health = _runner()
    venue = runner.venue_cls(runner.instruments)
    frames = fixture_frames("bybit")
    btc_snapshot, btc_delta, btc_moved, btc_skip, pepe = frames[4], frames[5], frames[6], frames[7], frames[11]

    async def feed() -> None:
        for frame in (btc_snapshot, btc_delta, btc_moved, btc_skip, pepe):
            await runner._handle(venue, cast(Any, RecordingLink()), frame)  # raises SessionEnded on a gap
        await runner._health(runner.state, "")

    asyncio.run(feed())
    assert runner.stats.resyncs == 1 and runner.stats.reconnects == 0
    assert [e.native_symbol for e in events if isinstance(e, Quote)] == [
        "BTCUSDT",
        "BTCUSDT",
        "BTCUSDT",  # nothing from the skipped frame: half a book is no quote
        "1000PEPEUSDT",  # the other symbols on the socket keep streaming
    ]
    assert (health[-1].state, health[-1].resyncs_total) == (HealthState.STREAMING, 1)
    # An operator sees it: on ingest's /metrics and in the API's connection view (Venues screen).
    scraped = {
        (metric.name, sample.labels.get("connection")): sample.value
        for metric in IngestCollector([runner], None).collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }
    assert scraped[("arbstream_ingest_resyncs", "bybit-linear-0")] == 1
    assert scraped[("arbstream_ingest_reconnects", "bybit-linear-0")] == 0
    assert connection_out(health[-1], None, health[-1].exchange_ts_ns).resyncs_total == 1


def test_a_connection_wide_gap_still_ends_the_session() -> None:
    runner, _events, _health = _runner()

    class GapVenue:
        def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
            return Parsed(gap="update 7 after 5", resyncs=["BTCUSDT"])

    with pytest.raises(SessionEnded) as ended:
        asyncio.run(runner._handle(cast(Any, GapVenue()), cast(Any, RecordingLink()), "{}"))
    assert (ended.value.state, ended.value.reason) == (HealthState.GAP, "update 7 after 5")
    assert runner.stats.resyncs == 1
