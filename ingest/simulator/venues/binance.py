"""Binance USDⓈ-M simulator: combined streams on /public/stream (book) and /market/stream (mark)."""

from __future__ import annotations

from decimal import Decimal

import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, SimSession, VenueSim, to_venue_qty
from ingest.simulator.market import SimFunding, SimQuote
from schemas.market import Instrument

_KINDS = {"bookTicker": (BOOK, "/public/stream"), "markPrice@1s": (FUNDING, "/market/stream")}


def _text(value: Decimal) -> str:
    return format(value, "f")


class BinanceSim(VenueSim):
    name = "binance"
    ws_paths = ("/public/stream", "/market/stream")

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return [orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}).decode()]
        if not isinstance(request, dict) or request.get("method") != "SUBSCRIBE":
            return [orjson.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": None}).decode()]
        lower = {native.lower(): native for native in self.by_native}
        for stream in request.get("params", []):
            symbol, _, channel = stream.partition("@")
            kind_path = _KINDS.get(channel)
            # Like the real venue: a stream on the wrong path, or for an unknown
            # symbol, is acknowledged and then silent.
            if kind_path and kind_path[1] == session.path and symbol in lower:
                session.subscriptions.add((kind_path[0], lower[symbol]))
        return [orjson.dumps({"result": None, "id": request.get("id")}).decode()]

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        data = {
            "e": "bookTicker",
            "u": session.next_seq(inst.native_symbol),
            "s": inst.native_symbol,
            "b": _text(quote.bid),
            "B": _text(to_venue_qty(inst, quote.bid_size, quote.bid)),
            "a": _text(quote.ask),
            "A": _text(to_venue_qty(inst, quote.ask_size, quote.ask)),
            "T": quote.ts_ms - 2,
            "E": quote.ts_ms,
        }
        return [orjson.dumps({"stream": f"{inst.native_symbol.lower()}@bookTicker", "data": data}).decode()]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        data = {
            "e": "markPriceUpdate",
            "E": funding.ts_ms,
            "s": inst.native_symbol,
            "p": _text(funding.mark),
            "P": _text(funding.mark),
            "i": _text(funding.index),
            "r": _text(funding.rate),
            "T": funding.next_funding_ms,
        }
        return [orjson.dumps({"stream": f"{inst.native_symbol.lower()}@markPrice@1s", "data": data}).decode()]


SIM = BinanceSim
