"""The runner never lets a bad frame escape: malformed input is counted and the session goes on."""

from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.instruments import load_venue_instruments
from ingest.runner import ConnectionRunner, RunnerConfig, SessionEnded
from ingest.venues import VENUE_NAMES, venue_class
from ingest.venues.base import Connection
from schemas.market import Funding, Health, Quote


class RecordingLink:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, frame: str) -> None:
        self.sent.append(frame)


def make_runner(name: str) -> tuple[ConnectionRunner, list[Quote | Funding], list[Health]]:
    events: list[Quote | Funding] = []
    health: list[Health] = []

    async def on_events(batch: list[Quote | Funding]) -> None:
        events.extend(batch)

    async def on_health(item: Health) -> None:
        health.append(item)

    instruments = load_venue_instruments(name)
    runner = ConnectionRunner(
        venue_class(name),
        instruments,
        Connection(f"{name}-0", "ws://unused", ()),
        RunnerConfig("ws://unused", "http://unused"),
        on_events,
        on_health,
        cast(Any, None),
    )
    return runner, events, health


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
frames = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    json_values.map(json.dumps),
    # Plausible envelopes with wrong insides reach deeper into each parser.
    st.dictionaries(
        st.sampled_from(["data", "arg", "topic", "params", "channel", "result", "table", "stream", "type", "e"]),
        json_values,
        max_size=4,
    ).map(json.dumps),
)


@pytest.mark.parametrize("name", VENUE_NAMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames)
@example(frame='{"data": {"s": []}}')  # found by CI: binance looked a list up as a symbol (TypeError)
@example(frame='{"data": {"s": {"x": 1}, "e": "bookTicker"}}')
def test_malformed_frames_never_escape_the_runner(name: str, frame: str | bytes) -> None:
    runner, events, _health = make_runner(name)
    venue = runner.venue_cls(runner.instruments)
    link = RecordingLink()
    # A frame may legitimately signal a sequence gap (SessionEnded): the session restarts.
    with contextlib.suppress(SessionEnded):
        asyncio.run(runner._handle(venue, cast(Any, link), frame))
    assert runner.stats.frames == 1
    assert runner.stats.parse_errors == 0, "a venue parser raised something other than FrameError"
    # Either the frame was rejected (counted, nothing emitted) or whatever it produced was counted.
    assert runner.stats.events == len(events)
    if runner.stats.malformed:
        assert (runner.stats.malformed, events) == (1, [])
    for event in events:
        prices = [getattr(event, name) for name in ("bid", "ask", "rate") if hasattr(event, name)]
        assert all(p is None or p.is_finite() for p in prices), event


def test_malformed_frame_is_counted_and_next_frame_still_parsed() -> None:
    runner, events, _health = make_runner("binance")
    venue = runner.venue_cls(runner.instruments)
    good = (
        '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1,"s":"BTCUSDT","b":"1.5","B":"2",'
        '"a":"1.6","A":"3","T":1,"E":2}}'
    )
    link = RecordingLink()

    async def feed() -> None:
        for frame in ('{"stream":', good):
            await runner._handle(venue, cast(Any, link), frame)

    asyncio.run(feed())
    assert (runner.stats.frames, runner.stats.malformed, runner.stats.events) == (2, 1, 1)
    assert [e.bid for e in events if isinstance(e, Quote)] == [Decimal("1.5")]
