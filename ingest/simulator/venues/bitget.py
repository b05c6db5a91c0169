"""Bitget classic v2 simulator: one public socket, ``books1`` + ``ticker`` per contract, text ping/pong."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, SimSession, VenueSim, to_venue_qty
from ingest.simulator.market import SimFunding, SimQuote
from schemas.market import ContractKind, Instrument

_CHANNELS = {"books1": BOOK, "ticker": FUNDING}
# Coin-M book sequence numbers on the wire already exceed 2**53.
_COIN_M_SEQ_START = 1_483_653_649_371_725_838


def _text(value: Decimal) -> str:
    return format(value, "f")


def _family(inst: Instrument) -> str:
    """The product type the venue lists a contract under (its own catalogue, not the client's guess)."""
    if inst.kind is ContractKind.INVERSE:
        return "COIN-FUTURES"
    return "USDC-FUTURES" if inst.settle == "USDC" else "USDT-FUTURES"


def _size(inst: Instrument, base_qty: Decimal, price: Decimal) -> str:
    # Every Bitget family quotes sizes in base coin, Coin-M included.
    return _text(base_qty if inst.kind is ContractKind.INVERSE else to_venue_qty(inst, base_qty, price))


def _dumps(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()


class BitgetSim(VenueSim):
    name = "bitget"
    ws_paths = ("/v2/ws/public",)

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        text = frame.decode() if isinstance(frame, bytes) else frame
        if text == "ping":
            return ["pong"]
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_dumps({"event": "error", "code": 30016, "msg": "Param error"})]
        if not isinstance(request, dict) or request.get("op") not in ("subscribe", "unsubscribe"):
            return [_dumps({"event": "error", "code": 30016, "msg": "Param error"})]
        return [self._one_arg(session, request["op"], arg) for arg in request.get("args") or []]

    def _one_arg(self, session: SimSession, op: str, arg: Any) -> Frame:
        if not isinstance(arg, dict) or arg.get("channel") not in _CHANNELS:
            return _dumps({"event": "error", "arg": arg, "code": 30016, "msg": "Param error", "op": op})
        inst_id = arg.get("instId")
        inst = self.by_native.get(inst_id) if isinstance(inst_id, str) else None
        if inst is None:
            described = f"instType:{arg.get('instType')},channel:{arg['channel']},instId:{arg.get('instId')}"
            return _dumps({"event": "error", "arg": arg, "code": 30001, "msg": f"{described} doesn't exist", "op": op})
        # Like the real venue: a real contract under the wrong instType is acked, then silent.
        if _family(inst) == arg.get("instType"):
            key = (_CHANNELS[arg["channel"]], inst.native_symbol)
            if op == "subscribe":
                session.subscriptions.add(key)
            else:
                session.subscriptions.discard(key)
        return _dumps({"event": op, "arg": arg})

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        native = inst.native_symbol
        start = _COIN_M_SEQ_START if inst.kind is ContractKind.INVERSE else 77_120_043_112
        previous = session.sequences.get(native, start)
        seq = session.next_seq(native, start=start)
        session.state.setdefault("quotes", {})[native] = quote  # the ticker echoes the top of book
        data = {
            "asks": [[_text(quote.ask), _size(inst, quote.ask_size, quote.ask)]],
            "bids": [[_text(quote.bid), _size(inst, quote.bid_size, quote.bid)]],
            "ts": str(quote.ts_ms),
            "seq": seq,
            "pseq": previous,
        }
        arg = {"instType": _family(inst), "channel": "books1", "instId": native}
        return [_dumps({"action": "snapshot", "arg": arg, "data": [data], "ts": quote.ts_ms + 1})]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        native = inst.native_symbol
        data: dict[str, Any] = {"instId": native, "lastPr": _text(funding.mark)}
        quote: SimQuote | None = session.state.get("quotes", {}).get(native)
        if quote is not None:
            data |= {
                "bidPr": _text(quote.bid),
                "askPr": _text(quote.ask),
                "bidSz": _size(inst, quote.bid_size, quote.bid),
                "askSz": _size(inst, quote.ask_size, quote.ask),
            }
        data |= {
            "fundingRate": _text(funding.rate),
            "nextFundingTime": str(funding.next_funding_ms),
            "markPrice": _text(funding.mark),
            "indexPrice": _text(funding.index),
            "symbolType": 1,
            "symbol": native,
            "deliveryPrice": "0",
            "ts": str(funding.ts_ms),
        }
        arg = {"instType": _family(inst), "channel": "ticker", "instId": native}
        return [_dumps({"action": "snapshot", "arg": arg, "data": [data], "ts": funding.ts_ms + 2})]


SIM = BitgetSim
