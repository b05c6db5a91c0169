"""MEXC contract simulator: one socket on /edge, one contract per subscribe frame.

Books go out as ``push.depth.full`` (5 levels a side, JSON numbers, integer
contracts); funding as ``push.ticker`` (fair/index price, if subscribed) then
``push.funding.rate``. Acks name no contract, like the real venue; an unknown
contract gets ``rs.error``; an unknown method or non-JSON frame gets no reply.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import msgspec
import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, SimSession, VenueSim, to_contracts
from ingest.simulator.market import SimFunding, SimQuote
from schemas.market import Instrument

LEVELS = 5
TICKERS = "tickers"
_KINDS = {"sub.depth.full": BOOK, "sub.funding.rate": FUNDING, "sub.ticker": TICKERS}
# The venue sends numbers, not strings: encode Decimals as JSON numbers.
_encode = msgspec.json.Encoder(decimal_format="number").encode


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MexcSim(VenueSim):
    name = "mexc"
    ws_paths = ("/edge",)

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(request, dict):
            return []
        method = request.get("method")
        now = _now_ms()
        if method == "ping":
            return [orjson.dumps({"channel": "pong", "data": now, "ts": now}).decode()]
        kind = _KINDS.get(method) if isinstance(method, str) else None
        if kind is None:
            return []  # the real venue ignores unknown methods
        param = request.get("param")
        symbol = param.get("symbol") if isinstance(param, dict) else None
        if symbol not in self.by_native:
            return [
                orjson.dumps({"channel": "rs.error", "data": f"Contract [{symbol}] not exists", "ts": now}).decode()
            ]
        if kind == TICKERS:
            session.state.setdefault(TICKERS, set()).add(symbol)
        else:
            session.subscriptions.add((kind, symbol))
        return [orjson.dumps({"channel": f"rs.{method}", "data": "success", "ts": now}).decode()]

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        step = inst.tick_size or Decimal("0.1")
        bid_contracts = to_contracts(inst, quote.bid_size, quote.bid)
        ask_contracts = to_contracts(inst, quote.ask_size, quote.ask)
        # Deeper levels are filler: only the first level of each side is the BBO.
        bids = [[quote.bid - n * step, bid_contracts + 7 * n, n + 1] for n in range(LEVELS)]
        asks = [[quote.ask + n * step, ask_contracts + 5 * n, n + 1] for n in range(LEVELS)]
        data = {"cts": quote.ts_ms - 3, "asks": asks, "bids": bids, "version": session.next_seq(inst.native_symbol)}
        return [self._push("push.depth.full", inst, data, quote.ts_ms)]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        frames: list[Frame] = []
        symbol = inst.native_symbol
        if symbol in session.state.get(TICKERS, set()):
            ticker = {
                "symbol": symbol,
                "lastPrice": funding.mark,
                "fairPrice": funding.mark,
                "indexPrice": funding.index,
                "fundingRate": funding.rate,
                "timestamp": funding.ts_ms,
            }
            frames.append(self._push("push.ticker", inst, ticker, funding.ts_ms))
        rate = {"symbol": symbol, "rate": funding.rate, "nextSettleTime": funding.next_funding_ms}
        frames.append(self._push("push.funding.rate", inst, rate, funding.ts_ms))
        return frames

    @staticmethod
    def _push(channel: str, inst: Instrument, data: dict[str, Any], ts_ms: int) -> str:
        return _encode({"symbol": inst.native_symbol, "data": data, "channel": channel, "ts": ts_ms}).decode()


SIM = MexcSim
