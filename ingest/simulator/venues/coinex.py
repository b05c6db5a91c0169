"""CoinEx futures v2 simulator: one socket path, /v2/futures, every server frame gzip-compressed.

Answers ``bbo.subscribe`` / ``state.subscribe`` with ``{"id","code":0,"message":"OK"}``
(an unknown market is acked and then silent, like the real venue; an empty
``state`` list means every market), ``server.ping`` with the documented pong,
and an unknown method with code 30002. Books go out as ``bbo.update`` (base-coin
sizes; USD for inverse), funding as ``state.update`` with a one-market
``state_list`` (the real venue batches many markets per frame; the contract
test wants one market per call).

Empty-books mode reproduces CoinEx after its reported 2026-09-22 cessation:
subscriptions are still acked, every ``bbo.update`` carries zero prices and
sizes, and ``state.update`` repeats values frozen at the first push with the
settlement times of the morning the venue stopped. Turn it on for one
connection with ``session.state["empty_books"] = True``, for a whole simulator
instance with ``sim.empty_books = True``, or for every instance created later
with ``CoinexSim.empty_books = True`` (restore it afterwards).
"""

from __future__ import annotations

import gzip
from decimal import Decimal
from typing import Any

import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, SimSession, VenueSim, to_venue_qty
from ingest.simulator.market import SimFunding, SimQuote
from schemas.market import Instrument

_CHANNELS = {"bbo.subscribe": BOOK, "state.subscribe": FUNDING}
# Settlement times frozen in the venue's last state push (2026-09-22 08:00 and 16:00 UTC).
FROZEN_SETTLEMENT_MS = 1_790_064_000_000
EMPTY = "empty_books"
FROZEN = "frozen_state"


def _text(value: Decimal) -> str:
    return format(value, "f")


def _gz(message: dict[str, Any]) -> bytes:
    # mtime=0: identical frames compress to identical bytes.
    return gzip.compress(orjson.dumps(message), mtime=0)


class CoinexSim(VenueSim):
    name = "coinex"
    ws_paths = ("/v2/futures",)
    empty_books: bool = False
    """Default for the empty-books mode (see the module docstring)."""

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return []  # nothing to answer: no id to echo
        if not isinstance(request, dict):
            return []
        method, request_id = request.get("method"), request.get("id")
        if method == "server.ping":
            return [_gz({"id": request_id, "code": 0, "data": {"result": "pong"}, "message": "OK"})]
        kind = _CHANNELS.get(method) if isinstance(method, str) else None
        if kind is None:
            return [_gz({"id": request_id, "code": 30002, "message": "unknown method"})]
        params = request.get("params")
        markets = params.get("market_list") if isinstance(params, dict) else None
        if not isinstance(markets, list):
            return [_gz({"id": request_id, "code": 30001, "message": "invalid argument"})]
        if kind == FUNDING and not markets:
            markets = list(self.by_native)
        for market in markets:
            if market in self.by_native:
                session.subscriptions.add((kind, market))
        return [_gz({"id": request_id, "code": 0, "message": "OK"})]

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        if self._empty(session):
            prices = {"best_bid_price": "0", "best_bid_size": "0", "best_ask_price": "0", "best_ask_size": "0"}
        else:
            prices = {
                "best_bid_price": _text(quote.bid),
                "best_bid_size": _text(to_venue_qty(inst, quote.bid_size, quote.bid)),
                "best_ask_price": _text(quote.ask),
                "best_ask_size": _text(to_venue_qty(inst, quote.ask_size, quote.ask)),
            }
        data = {"market": inst.native_symbol, "updated_at": quote.ts_ms, **prices}
        return [_gz({"method": "bbo.update", "data": data, "id": None})]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        if self._empty(session):
            frozen: dict[str, dict[str, Any]] = session.state.setdefault(FROZEN, {})
            state = frozen.setdefault(inst.native_symbol, self._state(inst, funding, FROZEN_SETTLEMENT_MS))
        else:
            state = self._state(inst, funding, funding.next_funding_ms)
        return [_gz({"method": "state.update", "data": {"state_list": [state]}, "id": None})]

    def malformed_frame(self) -> Frame:
        return gzip.compress(b'{"truncated": ', mtime=0)

    def _empty(self, session: SimSession) -> bool:
        return bool(session.state.get(EMPTY, self.empty_books))

    @staticmethod
    def _state(inst: Instrument, funding: SimFunding, settles_ms: int) -> dict[str, Any]:
        mark, index = _text(funding.mark), _text(funding.index)
        return {
            "market": inst.native_symbol,
            "last": mark,
            "open": mark,
            "close": mark,
            "high": mark,
            "low": mark,
            "volume": "0",
            "value": "0",
            "volume_sell": "0",
            "volume_buy": "0",
            "insurance_fund_size": "0",
            "mark_price": mark,
            "index_price": index,
            "open_interest_size": "0",
            "latest_funding_rate": _text(funding.rate),
            "next_funding_rate": _text(funding.rate),
            "latest_funding_time": settles_ms,
            "next_funding_time": settles_ms + (inst.funding_interval_h or 8) * 3_600_000,
            "period": 86400,
        }


SIM = CoinexSim
