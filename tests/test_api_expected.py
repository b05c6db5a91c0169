"""What every endpoint must answer for the scenario of ``tests.test_api_support`` (helpers, no tests).

The expected numbers are derived here from the ticks by hand (ask to buy, bid to
sell, per base unit, default taker fees), not by calling the code under test.
The same checks run in-process and against the real broker + worker + API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from processors.settings import DEFAULT_TAKER_FEES

D = Decimal
Get = Callable[[str], tuple[int, Any]]
MS = 1_000_000
FEE = DEFAULT_TAKER_FEES
SCENARIO_SYMBOLS = {"BTC", "ETH", "PEPE", "SOL"}


def _places(value: Decimal, places: int) -> Decimal:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        return value.quantize(D(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return value


def PCT(value: Decimal) -> Decimal:
    """A percentage as the API writes it: at most 6 decimals (README, numbers on the wire)."""
    return _places(value, 6)


def NUM(value: Decimal) -> Decimal:
    """Any other computed decimal: at most 12 decimals."""
    return _places(value, 12)


BTC_GROSS = (D("100400") - D("100001")) / D("100001")
BTC_NET = BTC_GROSS - FEE["binance"] - FEE["bybit"]
ETH_GROSS = (D("3010") - D("3000.5")) / D("3000.5")
ETH_NET = ETH_GROSS - FEE["binance"] - FEE["okx"]


def ok(get: Get, path: str) -> Any:
    status, body = get(path)
    assert status == 200, (path, status, body)
    return body


def check_prices(get: Get) -> None:
    prices = ok(get, "/api/prices")["prices"]
    assert prices.keys() >= SCENARIO_SYMBOLS
    assert set(prices["BTC"]) == {"binance", "bybit", "bitmex", "coindcx"}
    binance = prices["BTC"]["binance"]
    assert (D(binance["bid"]), D(binance["ask"]), D(binance["price"])) == (D(100000), D(100001), D("100000.5"))
    assert binance["price_source"] == "mid" and binance["funding_rate"] == D("0.0001")
    assert (binance["bid_size"], binance["ask_size"]) == (2, D("1.5"))
    assert all(isinstance(binance[k], int | Decimal) for k in ("bid", "ask", "price", "ask_size"))  # JSON numbers
    coindcx = prices["BTC"]["coindcx"]
    assert (coindcx["price"], coindcx["price_source"], coindcx["bid"], coindcx["ask"]) == (100200, "last", None, None)
    pepe = ok(get, "/api/prices/PEPE")["prices"]
    # 0.01120 is the price of 1000 PEPE: per base unit it is 0.0000112, comparable with okx's plain PEPE.
    assert (pepe["binance"]["bid"], pepe["binance"]["ask"], pepe["binance"]["price_multiplier"]) == (
        D("0.0000112"),
        D("0.00001121"),
        1000,
    )
    assert (pepe["okx"]["bid"], pepe["okx"]["ask"]) == (D("0.00001119"), D("0.0000112"))
    seed_spelling = ok(get, "/api/prices/btcusdt")
    assert seed_spelling["symbol"] == "BTC"
    assert {i["instrument_id"] for i in seed_spelling["instruments"]} == {
        "BTC-USDT-PERP@binance",
        "BTC-USDT-PERP@bybit",
        "BTC-USD-INV-PERP@bitmex",
        "BTC-USDT-PERP@coindcx",
    }
    assert seed_spelling["prices"]["bitmex"]["quote_group"] == "USD-inverse"


def check_best_and_summary(get: Get, fed_quotes: list[Any]) -> None:
    best = ok(get, "/api/best-prices/BTC")
    assert best["quote_group"] == "USDT"
    assert (best["best_bid"]["venue"], best["best_bid"]["price"], best["best_bid"]["size"]) == (
        "bybit",
        100400,
        D("0.8"),
    )
    assert best["best_bid"]["exchange"] == "bybit"  # the seed's name for venue
    assert (best["best_ask"]["venue"], best["best_ask"]["price"], best["best_ask"]["size"]) == (
        "binance",
        100001,
        D("1.5"),
    )
    assert best["spread"] == D(-399)
    assert best["spread_percentage"] == PCT(D(-399) / D(100001) * 100)
    inverse = ok(get, "/api/best-prices/BTC?quote_group=USD-inverse")
    assert (inverse["best_bid"]["price"], inverse["best_ask"]["price"]) == (99000, 99010)
    assert get("/api/best-prices/BTC?quote_group=USDC")[0] == 404

    summary = ok(get, "/api/summary")
    bases = {q.base for q in fed_quotes}
    venues = {q.venue for q in fed_quotes}
    assert (summary["total_symbols"], set(summary["symbols"])) == (len(bases), bases)
    assert (summary["total_exchanges"], set(summary["exchanges"])) == (len(venues), venues)
    assert summary["price_count"] == len({q.instrument_id for q in fed_quotes})
    assert summary["last_update_ms"] == max(q.receipt_ts_ns for q in fed_quotes) // MS
    assert summary["last_update"] == D(summary["last_update_ms"]) / 1000  # epoch seconds, as the seed
    opened = ok(get, "/api/opportunities")["opportunities"]
    assert summary["open_opportunities"] == len(opened) >= 1


def _pair(rows: list[dict[str, Any]], buy: str, sell: str) -> dict[str, Any]:
    [row] = [r for r in rows if (r["buy_exchange"], r["sell_exchange"]) == (buy, sell)]
    return row


def check_arbitrage(get: Get, t0: int) -> None:
    rows = ok(get, "/api/arbitrage/BTC?all=true")["opportunities"]
    # coindcx has no bid/ask (last price only), bitmex is USD-inverse: only binance <-> bybit pair.
    assert {(r["buy_exchange"], r["sell_exchange"]) for r in rows} == {("binance", "bybit"), ("bybit", "binance")}
    best = rows[0]
    assert (best["buy_exchange"], best["sell_exchange"]) == ("binance", "bybit")
    assert (best["buy_price"], best["sell_price"], best["spread"]) == (100001, 100400, 399)
    assert best["spread_percentage"] == PCT(BTC_GROSS * 100)
    assert best["net_spread_percentage"] == PCT(BTC_NET * 100)
    assert (best["size"], best["notional"]) == (D("0.8"), D("80000.8"))
    assert best["potential_profit"] == PCT(BTC_NET * 100)  # percent, net of fees (the seed's unit)
    assert best["net_profit"] == NUM(BTC_NET * D("80000.8"))
    assert (best["higher"], best["lower"], best["higher_price"], best["lower_price"]) == (
        "bybit",
        "binance",
        100400,
        100001,
    )
    assert best["exchanges"] == ["binance", "bybit"]
    assert best["profitable"] is True and best["problem"] is None
    assert (best["buy_fee"], best["sell_fee"]) == (FEE["binance"], FEE["bybit"])
    assert best["timestamp"] == (t0 + 2 * MS - MS) // MS  # newer leg's venue time
    assert best["episode_id"] == f"BTC:binance->bybit:{t0 + 2 * MS}"
    reverse = _pair(rows, "bybit", "binance")
    assert reverse["spread_percentage"] == PCT((D(100000) - D(100401)) / D(100401) * 100)
    assert reverse["profitable"] is False
    floored = ok(get, "/api/arbitrage/BTC")  # the seed's default floor, 0.1 %: only the profitable direction
    assert floored["symbol"] == "BTC" and floored["min_spread"] == D("0.1")
    assert [(r["buy_exchange"], r["sell_exchange"]) for r in floored["opportunities"]] == [("binance", "bybit")]

    assert ok(get, "/api/arbitrage?venue=bitmex")["opportunities"] == []
    pepe = ok(get, "/api/arbitrage/PEPE?all=true")["opportunities"]
    assert D(_pair(pepe, "okx", "binance")["spread_percentage"]) == 0  # the seed saw 99,900 % here
    assert all(abs(D(r["spread_percentage"])) < 1 for r in pepe)
    wide = ok(get, "/api/arbitrage?min_spread=0.1&limit=1000")["opportunities"]
    assert [(r["symbol"], r["buy_exchange"]) for r in wide if r["symbol"] in SCENARIO_SYMBOLS] == [("BTC", "binance")]
    assert len(ok(get, "/api/arbitrage?limit=1")["opportunities"]) == 1


def check_spread(get: Get) -> None:
    spread = ok(get, "/api/spread/BTC/binance/bybit")
    assert (spread["price1"], spread["price2"], spread["spread"]) == (D("100000.5"), D("100400.5"), 400)
    assert spread["spread_percentage"] == PCT(D(400) / D("100000.5") * 100)
    assert (spread["higher"], spread["lower"], spread["exchanges"]) == ("bybit", "binance", ["binance", "bybit"])
    assert (spread["higher_price"], spread["lower_price"]) == (D("100400.5"), D("100000.5"))
    reverse = ok(get, "/api/spread/BTC/bybit/binance")  # the seed's spread is >= 0 either way
    assert (reverse["spread"], reverse["price_difference"], reverse["higher"]) == (400, -400, "bybit")
    assert spread["buy_1_sell_2"]["net_spread_percentage"] == PCT(BTC_NET * 100)
    assert spread["buy_2_sell_1"]["profitable"] is False
    assert get("/api/spread/BTC/binance/bitmex")[0] == 404  # no comparable contracts
    assert get("/api/spread/BTC/binance/binance")[0] == 422
    assert get("/api/spread/BTC/binance/nosuchvenue")[0] == 404


def check_alert_status(get: Get, t0: int, cooldown_s: int) -> None:
    btc = ok(get, "/api/arbitrage/BTC/alert-status")
    elapsed = (time.time_ns() - (t0 + 2 * MS)) / 1e9
    assert (btc["can_send_alert"], btc["cooldown_seconds"]) == (False, cooldown_s)
    assert btc["last_alert_timestamp_ms"] == (t0 + 2 * MS) // MS
    assert btc["last_alert_net_spread"] == NUM(BTC_NET)
    assert abs(float(btc["seconds_until_next_alert"]) - (cooldown_s - elapsed)) < 2
    assert btc["last_alert_time"] == D((t0 + 2 * MS) // MS) / 1000  # epoch seconds, as the seed
    assert abs(float(btc["seconds_since_last_alert"]) - elapsed) < 2
    pepe = ok(get, "/api/arbitrage/PEPE/alert-status")
    assert (pepe["can_send_alert"], pepe["seconds_until_next_alert"], pepe["last_alert_time"]) == (True, 0.0, None)


def check_opportunities_and_episodes(get: Get, t0: int) -> None:
    [open_btc] = ok(get, "/api/opportunities?symbol=BTC")["opportunities"]
    assert open_btc["event_id"] == f"BTC:binance->bybit:{t0 + 2 * MS}"
    assert (open_btc["alerted"], open_btc["ticks"], open_btc["last_net_spread"]) == (True, 1, NUM(BTC_NET))
    assert (open_btc["last"]["buy"]["price"], open_btc["last"]["sell"]["price"]) == (100001, 100400)
    eth = ok(get, "/api/opportunities?symbol=ETH")
    assert eth["opportunities"] == []
    assert [a["event_id"] for a in eth["recent_alerts"]] == [f"ETH:binance->okx:{t0 + 7 * MS}"]
    assert ok(get, "/api/opportunities?symbol=BTC&min_net_spread=0.5")["opportunities"] == []

    page = ok(get, "/api/episodes?symbol=ETH")
    assert page["total"] == 1
    [closed] = page["episodes"]
    assert (closed["buy_venue"], closed["sell_venue"], closed["ticks"], closed["alerted"]) == (
        "binance",
        "okx",
        1,
        True,
    )
    assert (closed["start_ts_ns"], closed["end_ts_ns"], closed["duration_ms"]) == (t0 + 7 * MS, t0 + 8 * MS, 1)
    assert closed["peak_net_spread"] == NUM(ETH_NET) == closed["avg_net_spread"]
    assert closed["close_reason"] == "net spread below close threshold"
    assert ok(get, "/api/episodes?symbol=ETH&offset=1")["episodes"] == []


def check_venues(get: Get) -> None:
    venues = {v["venue"]: v for v in ok(get, "/api/venues")["venues"]}
    binance = venues["binance"]
    assert binance["state"] == "streaming" and binance["taker_fee"] == FEE["binance"]
    [conn] = binance["connections"]
    assert (conn["messages_per_s"], conn["events_per_s"], conn["reconnects"]) == (10.0, 10.0, 0)
    assert conn["last_message_age_ms"] >= 200
    kucoin = venues["kucoin"]
    assert (kucoin["state"], kucoin["quote_count"], kucoin["connections"][0]["reconnects"]) == ("disconnected", 0, 3)
    assert kucoin["connections"][0]["reason"] == "connection refused"


def check_errors(get: Get) -> None:
    for path in ("/api/prices/NOPE", "/api/arbitrage/NOPE", "/api/arbitrage?venue=nowhere", "/api/episodes?symbol=X1"):
        status, body = get(path)
        assert status == 404 and isinstance(body["detail"], str), (path, status, body)
        assert body["error"] == body["detail"]  # the seed's error field, with a real status
    for path in ("/api/arbitrage?limit=0", "/api/arbitrage?min_spread=abc", "/api/episodes?offset=-1"):
        status, body = get(path)
        assert status == 422 and body["detail"][0]["loc"][0] == "query", (path, status, body)


def check_all(get: Get, t0: int, fed_quotes: list[Any], cooldown_s: int) -> None:
    check_prices(get)
    check_best_and_summary(get, fed_quotes)
    check_arbitrage(get, t0)
    check_spread(get)
    check_alert_status(get, t0, cooldown_s)
    check_opportunities_and_episodes(get, t0)
    check_venues(get)
    check_errors(get)
