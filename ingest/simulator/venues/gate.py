"""Gate USDT futures simulator: futures.book_ticker and futures.tickers on /v4/ws/usdt.

Sizes go out as decimal strings, as the real venue sends them to a client that
set ``X-Gate-Size-Decimal: 1`` (the venue module always does).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, SimSession, VenueSim, to_venue_qty
from ingest.simulator.market import SimFunding, SimQuote
from schemas.market import Instrument

_KINDS = {"futures.book_ticker": BOOK, "futures.tickers": FUNDING}
_CONN_ID = "5e74253e9c793974"


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _envelope(channel: str, event: str, ts_ms: int, **rest: Any) -> str:
    body = {"time": ts_ms // 1000, "time_ms": ts_ms, "conn_id": _CONN_ID, "channel": channel, "event": event}
    return orjson.dumps(body | rest).decode()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class GateSim(VenueSim):
    name = "gate"
    ws_paths = ("/v4/ws/usdt",)

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict):
            error = {"code": 1, "message": "invalid argument struct"}
            return [_envelope("", "", _now_ms(), error=error, result={"status": "fail"})]
        channel, event, ts_ms = request.get("channel", ""), request.get("event", ""), _now_ms()
        if channel == "futures.ping":
            return [_envelope("futures.pong", "", ts_ms, result=None)]
        kind = _KINDS.get(channel)
        payload = request.get("payload")
        if kind is None or event not in ("subscribe", "unsubscribe") or not isinstance(payload, list):
            return [self._fail(channel, event, ts_ms, payload, "invalid argument")]
        unknown = [c for c in payload if c not in self.by_native and str(c).endswith("_USDT")]
        if unknown:
            return [self._fail(channel, event, ts_ms, payload, f"unknown currency pair {unknown[0]}")]
        for contract in payload:
            # Like the real venue, a contract of another settle family (BTC_USD)
            # is acknowledged and then stays silent on this socket.
            if contract in self.by_native:
                if event == "subscribe":
                    session.subscriptions.add((kind, contract))
                else:
                    session.subscriptions.discard((kind, contract))
        return [_envelope(channel, event, ts_ms, payload=payload, result={"status": "success"})]

    @staticmethod
    def _fail(channel: str, event: str, ts_ms: int, payload: Any, message: str) -> str:
        error = {"code": 2, "message": message}
        return _envelope(channel, event, ts_ms, payload=payload, error=error, result={"status": "fail"})

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        result = {
            "t": quote.ts_ms - 1,
            "u": session.next_seq(inst.native_symbol),
            "s": inst.native_symbol,
            "b": _text(quote.bid),
            "B": _text(to_venue_qty(inst, quote.bid_size, quote.bid)),
            "a": _text(quote.ask),
            "A": _text(to_venue_qty(inst, quote.ask_size, quote.ask)),
        }
        return [_envelope("futures.book_ticker", "update", quote.ts_ms, result=result)]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        interval_s = (inst.funding_interval_h or 8) * 3600
        result = {
            "contract": inst.native_symbol,
            "last": _text(funding.mark),
            "change_percentage": "0",
            "funding_rate": _text(funding.rate),
            "funding_rate_indicative": _text(funding.rate),
            "mark_price": _text(funding.mark),
            "index_price": _text(funding.index),
            "total_size": "0",
            "volume_24h": "0",
            "volume_24h_base": "0",
            "volume_24h_quote": "0",
            "volume_24h_settle": "0",
            "low_24h": _text(funding.mark),
            "high_24h": _text(funding.mark),
            "funding_interval": interval_s,
            "funding_next_apply": funding.next_funding_ms // 1000,
        }
        return [_envelope("futures.tickers", "update", funding.ts_ms, result=[result])]


SIM = GateSim
