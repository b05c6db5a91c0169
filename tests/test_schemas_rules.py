"""The schemas' own rules: topic names under a namespace (legal names only, the tick pattern that
never matches another namespace) and the topic records' round trips with their type tags."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from schemas.arbitrage import Episode, EpisodeClosed, SymbolState, decode_event, decode_state, encode
from schemas.control import ControlRequest, decode_request, encode_request
from schemas.topics import base_of_ticks_topic, symbols_changelog, ticks_pattern, ticks_topic, topic_name

T0 = 1_790_000_000_000_000_000


def test_topic_names_take_the_namespace_as_a_dotted_prefix() -> None:
    assert topic_name("health") == "health"
    assert topic_name("health", "bt1") == "bt1.health"
    assert ticks_topic("btc") == "ticks.BTC" and ticks_topic("1000pepe", "demo") == "demo.ticks.1000PEPE"
    assert symbols_changelog("arbstream", "bt1") == "bt1.arbstream-symbols-changelog"
    assert symbols_changelog("arbstream") == "arbstream-symbols-changelog"


@pytest.mark.parametrize("bad", ["", ".", "..", "a b", "ticks/BTC", "x" * 250, "é"])
def test_illegal_topic_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="illegal Kafka topic name"):
        topic_name(bad)


def test_the_longest_legal_name_passes() -> None:
    assert topic_name("x" * 249) == "x" * 249
    assert topic_name("A-z_0.9") == "A-z_0.9"


def test_the_ticks_pattern_matches_its_namespace_only() -> None:
    plain, demo = re.compile(ticks_pattern()), re.compile(ticks_pattern("demo"))
    assert plain.pattern == r"^ticks\.[A-Za-z0-9_-]+$"
    assert plain.match("ticks.BTC") and plain.match("ticks.1000PEPE")
    assert not plain.match("demo.ticks.BTC") and not plain.match("ticksXBTC") and not plain.match("ticks.")
    assert demo.match("demo.ticks.BTC") and not demo.match("ticks.BTC") and not demo.match("demo.ticks.A.B")


def test_base_of_a_ticks_topic_inverts_ticks_topic() -> None:
    assert base_of_ticks_topic("ticks.BTC") == "BTC"
    assert base_of_ticks_topic("bt1.ticks.ETH", "bt1") == "ETH"
    with pytest.raises(ValueError, match="is not a tick topic of namespace 'bt1'"):
        base_of_ticks_topic("ticks.BTC", "bt1")


def test_records_round_trip_with_their_decimals_and_tags() -> None:
    closed = EpisodeClosed(
        event_id="e",
        symbol="BTC",
        buy_venue="a",
        sell_venue="b",
        buy_instrument_id="BTC-USDT-PERP@a",
        sell_instrument_id="BTC-USDT-PERP@b",
        start_ts_ns=T0,
        end_ts_ns=T0 + 1,
        duration_ms=0,
        peak_net_spread=Decimal("0.0021"),
        avg_net_spread=Decimal("0.0017"),
        ticks=3,
        close_reason="stale quote",
        alerted=True,
        exchange_ts_ns=T0,
        receipt_ts_ns=T0,
    )
    payload = encode(closed)
    assert b'"type":"episode_closed"' in payload and b'"peak_net_spread":"0.0021"' in payload
    assert decode_event(payload) == closed
    state = SymbolState(episodes={"a|b": Episode(buy_instrument_id="a", sell_instrument_id="b", start_ts_ns=T0)})
    assert decode_state(encode(state)) == state
    request = ControlRequest(op="reload-config", request_id="r1", sent_ts_ns=T0)
    assert encode_request(request) == b'{"op":"reload-config","request_id":"r1","sent_ts_ns":%d}' % T0
    assert decode_request(encode_request(request)) == request
