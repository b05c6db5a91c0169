"""GET /api/prices at whole-market size: filters, paging and the per-entry serialisation cache.

In-process app over a read model built with the worker's own logic (no broker).
The cached answer must be byte-for-byte what the response models would produce,
and must follow every kind of change the follower applies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from api.main import build_context, create_app
from api.price_cache import PricesQuery, cache_of, prices_json, prices_map_json
from api.readmodel import Changes, ReadModel
from api.universe import Universe
from api.views_prices import all_prices
from api.wire import to_json
from schemas.arbitrage import SymbolState, decode_state, encode
from schemas.market import Funding
from tests.test_api_support import D, get_json, in_process_model, quote, scenario_settings, serve, stable


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[str, ReadModel]]:
    settings = scenario_settings()
    model = in_process_model(time.time_ns(), settings)
    ctx = build_context(settings, None, model=model, universe=Universe())
    with serve(create_app(ctx)) as url:
        yield url, model


def _ok(url: str) -> Any:
    status, body = get_json(url)
    assert status == 200, body
    return body


def _venues(body: Any) -> dict[str, list[str]]:
    return {symbol: sorted(venues) for symbol, venues in body["prices"].items()}


def test_unfiltered_answer_is_the_seed_shape_and_the_models_serialisation(api: tuple[str, ReadModel]) -> None:
    url, model = api
    body = _ok(url + "/api/prices")
    expected = json.loads(to_json(all_prices(model, time.time_ns())), parse_float=Decimal)
    assert stable(body) == stable(expected)
    assert (body["total"], body["offset"], body["limit"]) == (4, 0, None)
    assert _venues(body) == {
        "BTC": ["binance", "bitmex", "bybit", "coindcx"],
        "ETH": ["binance", "okx"],
        "PEPE": ["binance", "okx"],
        "SOL": ["binance", "bybit"],
    }
    pepe = body["prices"]["PEPE"]["binance"]
    assert (pepe["bid"], pepe["ask"], pepe["price_multiplier"]) == (D("0.0000112"), D("0.00001121"), 1000)
    assert all(isinstance(pepe[k], Decimal) for k in ("bid", "ask"))  # JSON numbers with their digits
    assert 0 <= body["prices"]["BTC"]["binance"]["age_ms"] < 600_000


def test_symbols_filter_keeps_exactly_those(api: tuple[str, ReadModel]) -> None:
    url, _ = api
    body = _ok(url + "/api/prices?symbols=ETH,btcusdt,%20SOL")  # seed spelling and spaces accepted
    assert _venues(body) == {
        "BTC": ["binance", "bitmex", "bybit", "coindcx"],
        "ETH": ["binance", "okx"],
        "SOL": ["binance", "bybit"],
    }
    assert (body["total"], body["offset"], body["limit"]) == (3, 0, None)
    assert body["prices"]["ETH"]["okx"]["bid"] == D("3000.6")


def test_venues_filter_drops_other_venues_and_symbols_not_quoted_there(api: tuple[str, ReadModel]) -> None:
    url, _ = api
    body = _ok(url + "/api/prices?venues=OKX,bybit")
    assert _venues(body) == {"BTC": ["bybit"], "ETH": ["okx"], "PEPE": ["okx"], "SOL": ["bybit"]}
    assert body["total"] == 4
    both = _ok(url + "/api/prices?symbols=BTC,ETH&venues=bitmex")
    assert _venues(both) == {"BTC": ["bitmex"]}
    assert both["prices"]["BTC"]["bitmex"]["quote_group"] == "USD-inverse"


def test_paging_walks_the_sorted_symbols(api: tuple[str, ReadModel]) -> None:
    url, _ = api
    pages = [_ok(url + f"/api/prices?limit=2&offset={offset}") for offset in (0, 2, 4)]
    assert [list(p["prices"]) for p in pages] == [["BTC", "ETH"], ["PEPE", "SOL"], []]
    assert [(p["total"], p["offset"], p["limit"]) for p in pages] == [(4, 0, 2), (4, 2, 2), (4, 4, 2)]
    filtered = _ok(url + "/api/prices?venues=okx&limit=1&offset=1")
    assert (list(filtered["prices"]), filtered["total"]) == (["PEPE"], 2)


def test_bad_filters_are_clear_errors(api: tuple[str, ReadModel]) -> None:
    url, _ = api
    status, body = get_json(url + "/api/prices?symbols=BTC,NOPE,ZZZ")
    assert (status, body["detail"]) == (404, "unknown symbol(s) NOPE, ZZZ")
    status, body = get_json(url + "/api/prices?venues=okx,nowhere")
    assert (status, body["detail"]) == (404, "unknown venue(s) nowhere")
    for query in ("symbols=", "symbols=,,", "venues=%20", "limit=0", "offset=-1"):
        assert get_json(url + "/api/prices?" + query)[0] == 422, query


def _state(*quotes: Any, funding: dict[str, Funding] | None = None) -> SymbolState:
    return SymbolState(quotes={q.instrument_id: q for q in quotes}, funding=funding or {})


def _funding(instrument_id: str, rate: str, t: int) -> Funding:
    venue, base = instrument_id.split("@")[1], instrument_id.split("-")[0]
    return Funding(
        instrument_id=instrument_id,
        venue=venue,
        native_symbol="N",
        base=base,
        rate=D(rate),
        interval_h=8,
        exchange_ts_ns=t,
        receipt_ts_ns=t,
    )


def _body(model: ReadModel, now: int, **query: Any) -> Any:
    return json.loads(prices_json(model, PricesQuery(**query), now), parse_float=Decimal)


def test_the_cache_follows_every_change_and_rebuilds_only_what_changed() -> None:
    t = time.time_ns()
    model, changes = ReadModel(), Changes()
    binance, okx = quote("ABC-USDT-PERP@binance", "10", "10.1", t), quote("ABC-USDT-PERP@okx", "10.2", "10.3", t)
    model.apply_state(
        "ABC",
        _state(binance, okx, funding={binance.instrument_id: _funding(binance.instrument_id, "0.0001", t)}),
        changes,
    )
    model.apply_state("DEF", _state(quote("DEF-USDT-PERP@okx", "1", "1.1", t)), changes)
    cache = cache_of(model)
    first = _body(model, t + 5_000_000)
    abc = first["prices"]["ABC"]
    assert (abc["binance"]["funding_rate"], abc["okx"]["age_ms"]) == (D("0.0001"), 5)
    assert cache.rebuilt == 3

    # The follower decodes a whole new state per changelog record: equal quotes, new objects.
    model.apply_state("ABC", decode_state(encode(model.symbols["ABC"])), changes)
    assert _body(model, t + 7_000_000)["prices"]["ABC"]["okx"]["age_ms"] == 7
    assert cache.rebuilt == 3

    moved = quote("ABC-USDT-PERP@okx", "10.25", "10.3", t + 1_000_000)
    model.apply_state("ABC", _state(binance, moved), changes)  # and the funding record is gone
    abc = _body(model, t + 2_000_000)["prices"]["ABC"]
    assert (abc["okx"]["bid"], abc["okx"]["age_ms"], abc["binance"]["funding_rate"]) == (D("10.25"), 1, None)
    assert cache.rebuilt == 5

    # A USDT contract appearing on a venue that showed its inverse one replaces it (primary contract).
    inverse = quote("DEF-USD-INV-PERP@bitmex", "0.9", "1.2", t)
    model.apply_state("DEF", _state(quote("DEF-USDT-PERP@okx", "1", "1.1", t), inverse), changes)
    assert _body(model, t)["prices"]["DEF"]["bitmex"]["instrument_id"] == "DEF-USD-INV-PERP@bitmex"
    linear = quote("DEF-USDT-PERP@bitmex", "1.01", "1.02", t)
    model.apply_state("DEF", _state(quote("DEF-USDT-PERP@okx", "1", "1.1", t), inverse, linear), changes)
    assert _body(model, t)["prices"]["DEF"]["bitmex"]["instrument_id"] == "DEF-USDT-PERP@bitmex"

    model.apply_state("DEF", None, changes)  # tombstone
    after = _body(model, t)
    assert (list(after["prices"]), after["total"]) == (["ABC"], 1)
    assert after == json.loads(to_json(all_prices(model, t)), parse_float=Decimal) | {"timestamp": after["timestamp"]}


def test_cached_bytes_equal_the_models_serialisation() -> None:
    t = time.time_ns()
    model = in_process_model(t)
    now = t + 1_234_000_000
    cached = prices_json(model, PricesQuery(), now)
    assert cached == to_json(all_prices(model, now))  # the same bytes as the models' own encoding


def test_initial_prices_message_is_the_cached_map_with_the_models_bytes() -> None:
    """The WebSocket's ``initial_prices`` (sent to every connecting client) is ``PricesOut.prices``
    byte for byte, built from the same cache as ``GET /api/prices``."""
    t = time.time_ns()
    model = in_process_model(t)
    now = t + 2_345_000_000
    assert prices_map_json(model, now) == to_json(all_prices(model, now).prices)
    rebuilt = cache_of(model).rebuilt
    prices_map_json(model, now + 1_000_000)
    assert cache_of(model).rebuilt == rebuilt  # the second client's message re-serialises nothing
