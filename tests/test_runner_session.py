"""A session reads frames while it is still subscribing (hundreds of topics take seconds)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, cast

import pytest

from ingest import runner as runner_module
from ingest.instruments import load_venue_instruments
from ingest.runner import ConnectionRunner, RunnerConfig, SessionEnded
from ingest.venues import venue_class
from ingest.venues.base import Connection
from schemas.market import Funding, Health, Quote

BOOK = (
    '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1,"s":"BTCUSDT","b":"1.5","B":"2",'
    '"a":"1.6","A":"3","T":1,"E":2}}'
)


class SlowVenueLink:
    """Delivers one book frame at once; closes after the third subscribe frame."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.subscribed = asyncio.Event()

    async def send(self, frame: str) -> None:
        self.log.append("subscribe")
        if self.log.count("subscribe") == 3:
            self.subscribed.set()

    async def frames(self) -> AsyncIterator[str]:
        yield BOOK
        await self.subscribed.wait()

    async def close(self, reason: str) -> None:
        return None

    def closed_reason(self) -> str | None:
        return "closed by the test"


async def test_frames_are_handled_before_the_last_subscribe_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    link = SlowVenueLink()
    events: list[Quote | Funding] = []

    async def on_events(batch: list[Quote | Funding]) -> None:
        link.log.append("quote")
        events.extend(batch)

    async def on_health(_: Health) -> None:
        return None

    @contextlib.asynccontextmanager
    async def fake_open(*_: Any) -> AsyncIterator[SlowVenueLink]:
        yield link

    monkeypatch.setattr(runner_module, "open_link", fake_open)
    topics = tuple(f"sym{i}@bookTicker" for i in range(250))  # 100 per frame: three subscribe frames
    runner = ConnectionRunner(
        venue_class("binance"),
        load_venue_instruments("binance"),
        Connection("binance-public-0", "ws://unused", topics),
        RunnerConfig("ws://unused", "http://unused"),
        on_events,
        on_health,
        cast(Any, None),
    )
    with pytest.raises(SessionEnded, match="closed by the test"):
        await runner._session(runner.venue_cls(runner.instruments))
    assert link.log.index("quote") < 2, link.log  # read while subscribes 2 and 3 were still pacing
    assert link.log.count("subscribe") == 3
    assert [(e.bid, e.ask) for e in events if isinstance(e, Quote)] == [(Decimal("1.5"), Decimal("1.6"))]


class BusyVenueLink(SlowVenueLink):
    """A socket that is always behind: ``count`` book frames queued, handed over without a wait."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    async def frames(self) -> AsyncIterator[str]:
        for n in range(1, self.count + 1):
            yield BOOK.replace('"u":1,', f'"u":{n},').replace('"b":"1.5"', f'"b":"1.{n}"')


async def test_a_busy_connection_yields_to_the_loop_every_few_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other connections and the publisher's drain run while a backlogged socket is read (decision 0042)."""
    frames = 3 * runner_module.FRAMES_PER_TURN + 10
    link = BusyVenueLink(frames)
    events: list[Quote | Funding] = []
    seen_by_others: list[int] = []

    async def on_events(batch: list[Quote | Funding]) -> None:
        events.extend(batch)

    async def on_health(_: Health) -> None:
        return None

    async def other_task() -> None:
        while True:
            seen_by_others.append(len(events))
            await asyncio.sleep(0)

    @contextlib.asynccontextmanager
    async def fake_open(*_: Any) -> AsyncIterator[BusyVenueLink]:
        yield link

    monkeypatch.setattr(runner_module, "open_link", fake_open)
    runner = ConnectionRunner(
        venue_class("binance"),
        load_venue_instruments("binance"),
        Connection("binance-public-0", "ws://unused", ("btcusdt@bookTicker",)),
        RunnerConfig("ws://unused", "http://unused"),
        on_events,
        on_health,
        cast(Any, None),
    )
    other = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    with pytest.raises(SessionEnded, match="closed by the test"):
        await runner._session(runner.venue_cls(runner.instruments))
    other.cancel()
    assert len(events) == frames
    turn = runner_module.FRAMES_PER_TURN
    assert sorted(set(seen_by_others) - {0, frames}) == [turn, 2 * turn, 3 * turn]
