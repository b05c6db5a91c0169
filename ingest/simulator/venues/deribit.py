"""Deribit simulator: JSON-RPC 2.0 on /ws/api/v2, quote.* (book) and ticker.*.100ms (funding).

Prices and amounts go out as JSON numbers, like the real venue. Inverse amounts
are whole USD, linear amounts base coin. After ``public/set_heartbeat`` the
server interleaves ``test_request`` heartbeats, which the client answers with
``public/test``. The quote channel carries no sequence numbers, so there is
nothing for gap injection to skip.

Generated listings: inverse ``BTC-PERPETUAL`` and ``ETH-PERPETUAL`` only (Deribit's
two coin-margined perpetuals) and linear ``{BASE}_USDC-PERPETUAL``; never a
prefixed (1000x) or USDT contract. Funding is continuous, reported per 8 h, so
every listed instrument has an 8 h interval whatever the spec asks.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec

from ingest.simulator.base import BOOK, FUNDING, Frame, ListingSpec, SimSession, VenueSim, to_venue_qty
from ingest.simulator.funding_history import HistoryError, Settled, instrument, int_param, json_number
from ingest.simulator.market import EIGHT_HOURS_MS, SimFunding, SimQuote
from ingest.venues.base import make_instrument
from ingest.venues.deribit import FUNDING_HISTORY_PATH, Deribit
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


INVERSE_PERPETUALS = {"BTC": Decimal(10), "ETH": Decimal(1)}
"""Deribit's coin-margined perpetuals and their REST contract sizes (USD)."""


class DeribitSim(VenueSim):
    name = "deribit"
    ws_paths = ("/ws/api/v2",)
    funding_history_path = FUNDING_HISTORY_PATH

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any:
        """One row an hour, oldest first, at most 744; ``interest_8h`` is the rate over the 8 h
        ending at the row (the market's 8 h settlement on the grid, an eighth of it each hour)."""
        inst = instrument(self, query.get("instrument_name"))
        if "start_timestamp" not in query or "end_timestamp" not in query:
            raise HistoryError("start_timestamp and end_timestamp are required")
        start, end = int_param(query, "start_timestamp", 0), int_param(query, "end_timestamp", 0)
        hourly = msgspec.structs.replace(inst, funding_interval_h=1)
        rows = []
        for t, _ in settled(hourly, start, end)[:744]:
            grid = t - t % EIGHT_HOURS_MS  # the 8 h settlement this hour's trailing rate ends with
            last = settled(inst, grid, grid)
            if last:
                rate = last[0][1]
                rows.append(
                    {
                        "timestamp": t,
                        "index_price": 1,
                        "prev_index_price": 1,
                        "interest_8h": json_number(rate),
                        "interest_1h": json_number(rate / 8),
                    }
                )
        return {"jsonrpc": "2.0", "result": rows, "usIn": 0, "usOut": 0, "usDiff": 0, "testnet": False}

    # -- generated listings ----------------------------------------------------
    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        if spec.multiplier != 1:
            return None
        # Half-unit ticks as the venue uses them (BTC 0.5, ETH 0.05).
        tick = 5 * Decimal(1).scaleb(spec.reference_price.adjusted() - 5)
        if spec.group == "USD-inverse" and spec.base in INVERSE_PERPETUALS:
            kind, native, quote, settle = ContractKind.INVERSE, f"{spec.base}-PERPETUAL", "USD", spec.base
        elif spec.group == "USDC":
            kind, native, quote, settle = ContractKind.LINEAR, f"{spec.base}_USDC-PERPETUAL", "USDC", "USDC"
        else:
            return None
        # Amounts are USD (inverse) or base coin (linear): one amount unit is worth 1.
        return make_instrument(cls.name, native, spec.base, quote, settle, kind, Decimal(1), tick, 8)

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        rows = [_instrument_row(n, i) for n, i in enumerate(instruments) if i.venue == self.name]
        return {
            Deribit.instrument_paths[0]: {
                "jsonrpc": "2.0",
                "result": rows,
                "usIn": 1790516400000123,
                "usOut": 1790516400004567,
                "usDiff": 4444,
                "testnet": False,
            }
        }

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


def _instrument_row(n: int, inst: Instrument) -> dict[str, Any]:
    """One ``get_instruments`` row; numbers are Decimals (JSON numbers on the wire, exact)."""
    inverse = inst.kind is ContractKind.INVERSE
    tick = inst.tick_size or Decimal("0.0001")
    size = INVERSE_PERPETUALS.get(inst.base, Decimal(1)) if inverse else Decimal(1).scaleb(tick.adjusted() - 1)
    return {
        "tick_size": tick,
        "tick_size_steps": [],
        "taker_commission": Decimal("0.0005"),
        "settlement_period": "perpetual",
        "settlement_currency": inst.settle,
        "quote_currency": inst.quote,
        "price_index": f"{inst.base.lower()}_{inst.quote.lower()}",
        "min_trade_amount": size,
        "max_liquidation_commission": Decimal("0.0075"),
        "max_leverage": 50,
        "maker_commission": 0,
        "kind": "future",
        "is_active": True,
        "instrument_name": inst.native_symbol,
        "instrument_id": 300_000 + n,
        "instrument_type": "reversed" if inverse else "linear",
        "future_type": "reversed" if inverse else "linear",
        "expiration_timestamp": 32503708800000,
        "creation_timestamp": 1646824342000,
        "counter_currency": inst.quote,
        "contract_size": size,
        "block_trade_tick_size": Decimal("0.01"),
        "block_trade_min_trade_amount": 200000,
        "block_trade_commission": Decimal("0.00025"),
        "base_currency": inst.base,
        "state": "open",
    }


SIM = DeribitSim
