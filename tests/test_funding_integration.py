"""The funding terminal on the real broker: the worker's topics -> API -> ranked pairs, and the
settled-rate history written to ``funding-settlements`` surviving an API restart."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import msgspec
import pytest

from api.follower import Topics
from plumbing.kafka import ensure_topics
from schemas.arbitrage import encode as encode_state
from schemas.market import encode as encode_market
from tests.test_api_reliability import in_process_api, produce, status_of, wait_for
from tests.test_api_support import scenario_settings
from tests.test_funding_support import OK, VOLUMES, funding, funding_model, instrument

D = Decimal
S = 1_000_000_000


def publish_worker_output(bootstrap: str, namespace: str, now: int) -> int:
    """What ingest and the worker would have written; OKX's last rate was quoted for a settlement
    60 s ago (its venue went quiet). Returns that settlement time."""
    topics = Topics.from_settings(scenario_settings(namespace=namespace))
    model = funding_model(now)
    settled_at = now - 60 * S
    model.symbols["ETH"].funding[OK] = funding(OK, "0.0007", 8, settled_at, settled_at - 10 * S)
    compacted = {"cleanup.policy": "compact"}
    asyncio.run(ensure_topics(bootstrap, [topics.changelog, topics.prices, topics.instruments], 3, compacted))
    asyncio.run(ensure_topics(bootstrap, [topics.health], 1))
    # The worker's changelog rows carry no quotes: those are on `prices`.
    states = [
        (s.encode(), encode_state(msgspec.structs.replace(st, quotes={})), None) for s, st in model.symbols.items()
    ]
    quotes = [
        (q.instrument_id.encode(), encode_market(q), None) for st in model.symbols.values() for q in st.quotes.values()
    ]
    health = [(h.venue.encode(), encode_market(h), None) for h in model.health.by_connection.values()]
    instruments = [(i.encode(), encode_market(instrument(i, v)), None) for i, v in VOLUMES.items()]
    asyncio.run(produce(bootstrap, topics.health, health))
    asyncio.run(produce(bootstrap, topics.instruments, instruments))
    asyncio.run(produce(bootstrap, topics.prices, quotes))
    asyncio.run(produce(bootstrap, topics.changelog, states))
    return settled_at


@pytest.mark.integration
def test_pairs_from_the_worker_topics_and_history_across_an_api_restart(kafka_bootstrap: str, namespace: str) -> None:
    now = time.time_ns()
    settled_at = publish_worker_output(kafka_bootstrap, namespace, now)
    history_path = "/api/funding-history/ETH?exchanges=okx"
    with in_process_api(kafka_bootstrap, namespace) as (url, ctx):
        wait_for("the pairs", lambda: status_of(url, "/api/best-opportunities/")[1].get("count") == 3)
        top = status_of(url, "/api/best-opportunities/")[1]["results"][0]
        assert (top["long"]["exchange"], top["short"]["exchange"]) == ("hyperliquid", "bybit")
        assert (top["apr"], top["entry_cost"], top["break_even_hours"]) == (D("48.18"), D("0.11"), D(20))
        assert top["long"]["volume"] == D(50_000_000)  # from the instruments topic
        wait_for("the OKX settlement", lambda: len(status_of(url, history_path)[1]["series"][0]["points"]) == 1)
        assert ctx.funding is not None
        wait_for("the settlement on the topic", lambda: ctx.funding is not None and ctx.funding.written == 1)
    with in_process_api(kafka_bootstrap, namespace) as (url, ctx):
        wait_for("the history", lambda: status_of(url, "/api/stats/")[1].get("history_loaded") is True)
        (point,) = status_of(url, history_path)[1]["series"][0]["points"]
        assert (point["t"], point["rate"], point["interval_h"], point["apr"]) == (
            settled_at // 1_000_000,
            D("0.0007"),
            8,
            D("76.65"),
        )
        time.sleep(1.5)  # a scan or two: what the topic holds is not written again
        assert ctx.funding is not None and ctx.funding.written == 0
