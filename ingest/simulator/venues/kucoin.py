"""KuCoin Futures simulator: public bullet token, welcome, JSON ping/pong, tickerV2 and instrument topics."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from ingest.simulator.base import BOOK, FUNDING, Frame, RestHandler, SimSession, VenueSim, to_contracts
from ingest.simulator.market import SimFunding, SimQuote
from schemas.market import Instrument

TICKER = "/contractMarket/tickerV2"
INSTRUMENT = "/contract/instrument"
_KINDS = {TICKER: BOOK, INSTRUMENT: FUNDING}
FUNDING_RATE_EVERY_MS = 60_000  # funding.rate is pushed once a minute, mark/index every second


def _dump(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _number(value: Decimal) -> orjson.Fragment:
    """A JSON *number* with the value's exact decimal text (the channel sends numbers)."""
    return orjson.Fragment(format(value, "f"))


def _error(request_id: str, code: int, text: str) -> str:
    return _dump({"id": request_id, "type": "error", "code": code, "data": text})


class KucoinSim(VenueSim):
    name = "kucoin"
    ws_paths = ("/",)  # the live bullet endpoint is wss://ws-api-futures.kucoin.com/

    def rest_routes(self) -> dict[str, RestHandler]:
        routes = super().rest_routes()
        routes["/api/v1/bullet-public"] = self._bullet
        return routes

    async def _bullet(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        server = {
            "endpoint": f"ws://{request.host}/{self.name}/",
            "encrypt": False,
            "protocol": "websocket",
            "pingInterval": 18000,
            "pingTimeout": 10000,
        }
        body = {"code": "200000", "data": {"token": uuid.uuid4().hex, "instanceServers": [server]}}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def on_open(self, session: SimSession) -> list[Frame]:
        # The welcome id echoes the client's connectId.
        return [_dump({"id": session.query.get("connectId", uuid.uuid4().hex), "type": "welcome"})]

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            return [_error(uuid.uuid4().hex, 400, f"Unrecognized token: {exc}")]
        if not isinstance(request, dict):
            return [_error(uuid.uuid4().hex, 400, "invalid request")]
        request_id = str(request.get("id", ""))
        kind = request.get("type")
        if kind == "ping":
            return [_dump({"id": request_id, "type": "pong", "timestamp": time.time_ns() // 1000})]
        if kind not in ("subscribe", "unsubscribe"):
            return [_error(request_id, 400, f"unsupported type {kind!r}")]
        channel, _, symbols = str(request.get("topic", "")).partition(":")
        topic_kind = _KINDS.get(channel)
        if topic_kind is None or not symbols:
            return [_error(request_id, 404, "topic does not exist")]
        for symbol in symbols.split(","):
            # Like the venue: an unknown symbol is acknowledged and then silent.
            if symbol in self.by_native:
                pair = (topic_kind, symbol)
                if kind == "subscribe":
                    session.subscriptions.add(pair)
                else:
                    session.subscriptions.discard(pair)
        return [_dump({"id": request_id, "type": "ack"})] if request.get("response") else []

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        sequence = session.next_seq(inst.native_symbol)
        data = {
            "symbol": inst.native_symbol,
            "sequence": sequence,
            "bestBidSize": to_contracts(inst, quote.bid_size, quote.bid),
            "bestBidPrice": format(quote.bid, "f"),
            "bestAskPrice": format(quote.ask, "f"),
            "bestAskSize": to_contracts(inst, quote.ask_size, quote.ask),
            "ts": quote.ts_ms * 1_000_000,
        }
        topic = f"{TICKER}:{inst.native_symbol}"
        return [_dump({"topic": topic, "type": "message", "subject": "tickerV2", "sn": sequence, "data": data})]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        topic = f"{INSTRUMENT}:{inst.native_symbol}"
        frames: list[Frame] = []
        last_rate_key = f"funding.rate:{inst.native_symbol}"
        if funding.ts_ms - session.state.get(last_rate_key, -FUNDING_RATE_EVERY_MS) >= FUNDING_RATE_EVERY_MS:
            session.state[last_rate_key] = funding.ts_ms
            rate = {"granularity": 60000, "fundingRate": _number(funding.rate), "timestamp": funding.ts_ms}
            frames.append(_dump({"topic": topic, "type": "message", "subject": "funding.rate", "data": rate}))
        mark = {
            "granularity": 1000,
            "indexPrice": _number(funding.index),
            "markPrice": _number(funding.mark),
            "timestamp": funding.ts_ms,
        }
        frames.append(_dump({"topic": topic, "type": "message", "subject": "mark.index.price", "data": mark}))
        return frames


SIM = KucoinSim
