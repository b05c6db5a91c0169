"""The ``prices`` topic (decision 0041): one record per symbol with its latest quote per instrument,
keyed by the symbol; old one-quote records still read."""

from __future__ import annotations

from typing import Any, cast

import msgspec
import pytest

from processors.faust_app import create_app
from processors.settings import WorkerSettings
from schemas.market import decode_prices, encode, encode_prices, encode_ticks
from tests.test_engine import quote, records

SETTINGS = WorkerSettings(kafka_bootstrap="127.0.0.1:1", namespace="t1", min_ticks=1)


def test_a_prices_record_reads_back_as_its_quotes_and_an_old_one_quote_record_still_reads() -> None:
    quotes = [quote("binance", "100", "100.1", 1), quote("okx", "100.2", "100.3", 2)]
    assert decode_prices(encode_prices("BTC", quotes)) == quotes
    assert decode_prices(encode(quotes[1])) == [quotes[1]]  # written before decision 0041
    with pytest.raises(msgspec.DecodeError):
        decode_prices(encode_ticks(quotes))  # a tick batch is not a prices record


async def test_the_worker_sends_one_record_per_changed_symbol_with_every_quote_it_holds() -> None:
    _app, host = create_app(SETTINGS, "127.0.0.1:1", ["t1.ticks.BTC", "t1.ticks.ETH"])
    sent: list[tuple[str, bytes, bytes, bytes | None]] = []

    async def send(topic: str, symbol: bytes, value: bytes, key: bytes | None = None) -> None:
        sent.append((topic, symbol, value, key))

    cast(Any, host)._send = send
    btc = [quote("binance", "100", "100.1", 1), quote("okx", "100.2", "100.3", 2), quote("okx", "100", "100.4", 3)]
    eth = [quote("bybit", "10", "10.1", 1, base="ETH")]
    for base, ticks in (("BTC", btc), ("ETH", eth)):
        host.engine.load(base, None)
        for record in records(ticks):
            host.engine.apply_batch(base, [record], {}, 0)
    await host.publish_prices()
    by_symbol = {symbol: (topic, decode_prices(value), key) for topic, symbol, value, key in sent}
    assert sorted(by_symbol) == [b"BTC", b"ETH"] and len(sent) == 2
    topic, btc_quotes, key = by_symbol[b"BTC"]
    assert topic == host.topics.prices and key is None  # keyed by the symbol itself
    assert {q.instrument_id: q for q in btc_quotes} == {q.instrument_id: q for q in (btc[0], btc[2])}
    sent.clear()
    await host.publish_prices()
    assert sent == []  # nothing changed since
    # Only okx's BTC quote moves: BTC's record still holds binance's (compaction keeps one per symbol).
    moved = quote("okx", "101", "101.1", 9)
    host.engine.apply_batch("BTC", records([moved], first_offset=5), {}, 0)
    await host.publish_prices()
    ((_, symbol, value, _),) = sent
    assert symbol == b"BTC" and {q.instrument_id: q for q in decode_prices(value)} == {
        btc[0].instrument_id: btc[0],
        moved.instrument_id: moved,
    }
