"""WebSocket channel ``funding``: the snapshot's pairs, ``funding_pairs`` pushes and ``funding_alert``."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any, cast

import jsonschema
from websockets.asyncio.client import connect

from api.funding_stream import FundingPublisher
from api.hub import Client, Filter
from api.main import build_context, create_app
from tests.test_api_support import get_json, scenario_settings, serve
from tests.test_funding_support import BY, HL, funding_alert, funding_closed, funding_model, funding_universe

D = Decimal


def test_funding_channel_snapshot_and_pushes_follow_the_schema() -> None:
    ctx = build_context(scenario_settings(), None, model=funding_model(time.time_ns()), universe=funding_universe())
    with serve(create_app(ctx)) as url:
        schemas = get_json(url + "/api/ws-schema")[1]["messages"]

        async def session() -> tuple[dict[str, Any], dict[str, Any]]:
            async with connect(url.replace("http", "ws", 1) + "/ws") as ws:
                await ws.send(
                    json.dumps({"op": "subscribe", "channels": ["funding"], "venues": ["hyperliquid", "bybit"]})
                )
                found: dict[str, dict[str, Any]] = {}
                while len(found) < 2:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 10), parse_float=Decimal)
                    if message["type"] in ("snapshot", "funding_pairs"):
                        jsonschema.Draft202012Validator(schemas[message["type"]]).validate(
                            json.loads(json.dumps(message["data"], default=float))
                        )
                        found.setdefault(message["type"], message["data"])
                return found["snapshot"], found["funding_pairs"]

        snapshot, pushed = asyncio.run(session())
    # Both legs must be among the subscribed venues: only hyperliquid/bybit remains of the three pairs.
    for pairs in (snapshot["funding_pairs"], pushed["pairs"]):
        assert [(p["long"]["exchange"], p["short"]["exchange"], p["apr"]) for p in pairs] == [
            ("hyperliquid", "bybit", D("48.18"))
        ]
        assert pairs[0]["break_even_hours"] == D(20)
    assert snapshot["prices"] is None  # unsubscribed channels stay empty


class _Recorder:
    """Stands in for a connected client: records what the hub offers it."""

    def __init__(self, flt: Filter) -> None:
        self.filter = flt
        self.events: list[tuple[str, str]] = []

    def offer_event(self, kind: str, data: str, delivery: object = None) -> None:
        self.events.append((kind, data))


def test_funding_alerts_go_to_subscribers_of_both_legs() -> None:
    ctx = build_context(scenario_settings(), None, model=funding_model(time.time_ns()), universe=funding_universe())
    assert ctx.hub is not None
    everyone = _Recorder(Filter())
    okx_only = _Recorder(Filter(venues=frozenset({"okx", "bybit"})))
    prices_only = _Recorder(Filter(channels=frozenset({"prices"})))
    for recorder in (everyone, okx_only, prices_only):
        ctx.hub.clients.add(cast(Client, recorder))
    alert = funding_alert("ETH", 7)
    FundingPublisher(ctx).on_alerts([alert])
    ((kind, data),) = everyone.events
    assert kind == "funding_alert"
    assert json.loads(data, parse_float=Decimal) == {
        "event_id": "ETH:funding:hyperliquid/bybit:7000000",
        "symbol": "ETH",
        "long_exchange": "hyperliquid",
        "short_exchange": "bybit",
        "long_instrument_id": HL,
        "short_instrument_id": BY,
        "long_apr": D("-8.76"),
        "short_apr": D("39.42"),
        "spread_apr": D("48.18"),
        "detected_time": 7,
        "net_apr": D("43"),
        "entry_cost": D("0.1"),
        "priced": True,
        "long_price": D(2000),
        "short_price": D(2000),
        "episode_start_time": 7,
        "cooldown_broken": False,
    }
    assert okx_only.events == [] and prices_only.events == []
    closed = funding_closed("ETH", 7, 9)
    FundingPublisher(ctx).on_alerts([closed])
    assert [kind for kind, _ in everyone.events] == ["funding_alert", "funding_episode_closed"]
    ended = json.loads(everyone.events[1][1], parse_float=Decimal)
    assert (ended["event_id"], ended["duration_ms"], ended["peak_net_apr"], ended["close_reason"]) == (
        alert.event_id,
        2,
        D("43"),
        "stale funding rate",
    )
    assert okx_only.events == [] and prices_only.events == []
