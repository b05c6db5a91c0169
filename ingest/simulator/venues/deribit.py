"""Deribit simulator: JSON-RPC 2.0 on /ws/api/v2, quote.* (book) and ticker.*.100ms (funding).

Prices and amounts go out as JSON numbers, like the real venue. Inverse amounts
are whole USD, linear amounts base coin. After ``public/set_heartbeat`` the
server interleaves ``test_request`` heartbeats, which the client answers with
``public/test``. The quote channel carries no sequence numbers, so there is
nothing for gap injection to skip.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec

from ingest.simulator.base import BOOK, FUNDING, Frame, SimSession, VenueSim, to_venue_qty
from ingest.simulator.market import SimFunding, SimQuote
from schemas.market import ContractKind, Instrument

# Decimals as JSON numbers (the venue sends numbers, never strings).
_encode = msgspec.json.Encoder(decimal_format="number").encode
_INTERVALS = {"100ms", "agg2"}  # "raw" needs an authenticated session
_HEARTBEAT_DUE = "heartbeat_due_ms"


def _num(value: Decimal) -> Decimal:
    """Plain notation (86400, not 8.64E+4) as the venue prints it."""
    return Decimal(format(value, "f"))


def _dumps(body: dict[str, Any]) -> str:
    return _encode(body).decode()


def _response(request_id: Any, result: Any) -> str:
    return _dumps({"jsonrpc": "2.0", "id": request_id, "result": result, "testnet": False})


def _error(request_id: Any, code: int, message: str, reason: str | None = None) -> str:
    error: dict[str, Any] = {"code": code, "message": message}
    if reason:
        error["data"] = {"reason": reason}
    return _dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


def _notification(channel: str, data: dict[str, Any]) -> str:
    return _dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})


class DeribitSim(VenueSim):
    name = "deribit"
    ws_paths = ("/ws/api/v2",)

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = msgspec.json.decode(frame)
        except msgspec.DecodeError:
            return [_error(None, -32700, "Parse error")]
        if not isinstance(request, dict):
            return [_error(None, -32600, "Invalid Request")]
        request_id, method = request.get("id"), request.get("method")
        params = request.get("params") or {}
        if method == "public/set_heartbeat":
            interval = params.get("interval")
            if not isinstance(interval, int | float) or interval < 10:
                return [_error(request_id, -32602, "Invalid params", "interval must be at least 10")]
            session.state["heartbeat_ms"] = int(interval * 1000)
            return [_response(request_id, "ok")]
        if method == "public/test":
            return [_response(request_id, {"version": "1.2.26"})]
        if method == "public/subscribe":
            return [_response(request_id, self._subscribe(session, params.get("channels") or []))]
        return [_error(request_id, -32601, "Method not found")]

    def _subscribe(self, session: SimSession, channels: list[Any]) -> list[str]:
        """Subscribe what is valid; the ack lists only channels that took effect."""
        accepted = []
        for channel in channels:
            parts = str(channel).split(".")
            if parts[0] == "quote" and len(parts) == 2 and parts[1] in self.by_native:
                session.subscriptions.add((BOOK, parts[1]))
            elif parts[0] == "ticker" and len(parts) == 3 and parts[1] in self.by_native and parts[2] in _INTERVALS:
                session.subscriptions.add((FUNDING, parts[1]))
                session.state.setdefault("ticker_interval", {})[parts[1]] = parts[2]
            else:
                continue
            accepted.append(str(channel))
        return accepted

    def _heartbeats(self, session: SimSession, now_ms: int) -> list[Frame]:
        """A test_request every heartbeat interval once the client asked for heartbeats."""
        interval = session.state.get("heartbeat_ms")
        if interval is None:
            return []
        due = session.state.setdefault(_HEARTBEAT_DUE, now_ms + interval)
        if now_ms < due:
            return []
        session.state[_HEARTBEAT_DUE] = now_ms + interval
        return [_dumps({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}})]

    @staticmethod
    def _amount(inst: Instrument, base_qty: Decimal, price: Decimal) -> Decimal:
        amount = to_venue_qty(inst, base_qty, price)
        if inst.kind is ContractKind.INVERSE:
            amount = amount.quantize(Decimal(1), ROUND_HALF_EVEN)  # whole USD
        return _num(amount)

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        data = {
            "timestamp": quote.ts_ms,
            "instrument_name": inst.native_symbol,
            "best_bid_price": _num(quote.bid),
            "best_bid_amount": self._amount(inst, quote.bid_size, quote.bid),
            "best_ask_price": _num(quote.ask),
            "best_ask_amount": self._amount(inst, quote.ask_size, quote.ask),
        }
        return [*self._heartbeats(session, quote.ts_ms), _notification(f"quote.{inst.native_symbol}", data)]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        mark = _num(funding.mark)
        tick = inst.tick_size or Decimal("0.0001")
        data = {
            "timestamp": funding.ts_ms,
            "instrument_name": inst.native_symbol,
            "state": "open",
            "mark_price": mark,
            "index_price": _num(funding.index),
            "estimated_delivery_price": _num(funding.index),
            "last_price": mark,
            "settlement_price": mark,
            "min_price": _num((mark * Decimal("0.985")).quantize(tick)),
            "max_price": _num((mark * Decimal("1.015")).quantize(tick)),
            "open_interest": 502097590,
            "current_funding": _num(funding.rate),
            "funding_8h": _num(funding.rate),
            "interest_value": 0,
        }
        interval = session.state.get("ticker_interval", {}).get(inst.native_symbol, "100ms")
        channel = f"ticker.{inst.native_symbol}.{interval}"
        return [_notification(channel, data)]


SIM = DeribitSim
