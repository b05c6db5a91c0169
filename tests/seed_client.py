"""A client of future_rtd's API written only from its API reference (seeds 001-003, summarised in
``SEED_CONTRACTS.md`` §1): the paths, the fields, their JSON types and units a seed frontend,
script or bot relies on. ``tests/test_seed_contract.py`` runs it against the demo-like stack.

Nothing here imports arbstream: the contract is what the seed documented, not what the code
happens to answer. JSON is parsed the way a seed client parses it (``json.loads``: numbers
become int/float, strings stay strings), so a price sent as ``"86412.30"`` fails ``number``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

FRONTEND_ORIGIN = "http://localhost:3000"
"""Where the seed's Next.js frontend runs: a browser sends this ``Origin`` on its fetches and on
the WebSocket handshake, so the API must allow it (CORS header, no 403 on /ws)."""

NUMBER = "number"
STRING = "string"
BOOL = "bool"
ARRAY = "array"
OBJECT = "object"
NULLABLE_NUMBER = "number|null"

PRICE_ENTRY = {"price": NUMBER, "bid": NUMBER, "ask": NUMBER, "timestamp": NUMBER}
"""/api/prices[symbol][exchange] and the WebSocket's initial_prices (seed 001, "Price Data Response")."""
BEST_SIDE = {"price": NUMBER, "exchange": STRING, "timestamp": NUMBER}
ARBITRAGE_ROW = {
    # seed 001 "Arbitrage Response"
    "symbol": STRING,
    "buy_exchange": STRING,
    "sell_exchange": STRING,
    "buy_price": NUMBER,
    "sell_price": NUMBER,
    "spread": NUMBER,
    "spread_percentage": NUMBER,
    "potential_profit": NUMBER,
    "profitable": BOOL,
    # the seed's code (SEED_CONTRACTS §1.1)
    "exchanges": ARRAY,
    "higher": STRING,
    "lower": STRING,
    "higher_price": NUMBER,
    "lower_price": NUMBER,
    "timestamp": NUMBER,
}
REST: dict[str, dict[str, str]] = {
    "/": {"message": STRING, "status": STRING},
    "/health": {"status": STRING, "timestamp": STRING, "price_fetcher_active": BOOL, "websocket_connections": NUMBER},
    "/api/prices": {"prices": OBJECT, "timestamp": STRING},
    "/api/prices/{symbol}": {"symbol": STRING, "prices": OBJECT, "timestamp": STRING},
    "/api/best-prices/{symbol}": {
        "symbol": STRING,
        "best_bid": OBJECT,
        "best_ask": OBJECT,
        "spread": NUMBER,
        "spread_percentage": NUMBER,
    },
    "/api/summary": {
        "total_symbols": NUMBER,
        "total_exchanges": NUMBER,
        "symbols": ARRAY,
        "exchanges": ARRAY,
        "price_count": NUMBER,
        "last_update": NUMBER,
    },
    "/api/arbitrage": {"opportunities": ARRAY, "timestamp": STRING},
    "/api/arbitrage/{symbol}": {"symbol": STRING, "opportunities": ARRAY, "timestamp": STRING},
    "/api/spread/{symbol}/{ex1}/{ex2}": {
        "symbol": STRING,
        "exchanges": ARRAY,
        "spread": NUMBER,
        "spread_percentage": NUMBER,
        "higher": STRING,
        "lower": STRING,
        "higher_price": NUMBER,
        "lower_price": NUMBER,
        "timestamp": NUMBER,
    },
    "/api/arbitrage/{symbol}/alert-status": {
        "symbol": STRING,
        "can_send_alert": BOOL,
        "last_alert_time": NULLABLE_NUMBER,
        "seconds_since_last_alert": NULLABLE_NUMBER,
        "seconds_until_next_alert": NUMBER,
        "cooldown_seconds": NUMBER,
        "timestamp": STRING,
    },
    "POST /api/reload-config": {
        "status": STRING,
        "message": STRING,
        "exchanges": ARRAY,
        "total_symbols": NUMBER,
        "timestamp": STRING,
    },
}
WS: dict[str, dict[str, str]] = {
    "market_summary": {"total_symbols": NUMBER, "total_exchanges": NUMBER, "price_count": NUMBER},
    "price_update": {"symbol": STRING, "exchange": STRING, **PRICE_ENTRY},
    # seed 001/002: a list of rows; 002 names the profit `profit`
    "arbitrage_opportunities": {
        "symbol": STRING,
        "buy_exchange": STRING,
        "sell_exchange": STRING,
        "spread_percentage": NUMBER,
        "profit": NUMBER,
    },
}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, list):
        return ARRAY
    return OBJECT


def type_errors(body: Any, fields: dict[str, str], where: str) -> list[str]:
    """Every field the reference names that is missing or of another JSON type."""
    if not isinstance(body, dict):
        return [f"{where}: not an object: {body!r:.200}"]
    errors = []
    for name, wanted in fields.items():
        if name not in body:
            errors.append(f"{where}: missing {name!r}")
        elif json_type(body[name]) not in wanted.split("|"):
            errors.append(f"{where}.{name}: {json_type(body[name])} {body[name]!r:.60}, expected {wanted}")
    return errors


def request(base: str, path: str, method: str = "GET", accept: str = "*/*") -> tuple[int, Any]:
    status, _, body = request_with_headers(base, path, method, accept)
    return status, body


def request_with_headers(
    base: str, path: str, method: str = "GET", accept: str = "*/*", origin: str | None = None
) -> tuple[int, dict[str, str], Any]:
    """Status, response headers (lower-case names) and JSON body; ``origin`` as a browser page sends it."""
    headers = {"Accept": accept} | ({"Origin": origin} if origin is not None else {})
    req = urllib.request.Request(base + path, method=method, headers=headers)
    if method == "POST":
        req.data = b""
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, json.loads(exc.read() or b"null")


def get(base: str, path: str) -> Any:
    status, body = request(base, path)
    assert status == 200, (path, status, body)
    return body


def near_now_s(value: float, within_s: float) -> bool:
    """Epoch seconds (the seed's time.time()), not ms, not an ISO string."""
    return abs(value - time.time()) < within_s


def near_now_ms(value: float, within_s: float) -> bool:
    return abs(value / 1000 - time.time()) < within_s
