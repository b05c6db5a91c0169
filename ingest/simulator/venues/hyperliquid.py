"""Hyperliquid simulator: one socket on /ws, one subscription per frame; the listing is POST /info.

Books go out as ``bbo`` (whole top of book with the block ``time``, sizes in
units of the listed coin, all numbers as strings); funding as
``activeAssetCtx`` (hourly rate, mark, oracle; no timestamp, no next funding
time). ``{"method":"ping"}`` is answered with ``{"channel":"pong"}``.

Like the real venue, a subscription to a coin it does not list *closes the
socket* (1006) instead of returning an error: this simulator asks the server to
abort the connection (``session.close_requested``) and marks the session closed
(``state["close_code"]``) so nothing more is sent on it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from ingest.instruments import listing_path
from ingest.simulator.base import BOOK, FUNDING, Frame, RestHandler, SimSession, VenueSim, to_venue_qty
from ingest.simulator.market import SimFunding, SimQuote
from schemas.market import Instrument

# Spelt out here rather than imported, so the simulator checks the venue module.
META_KEY = "POST /info meta"
GREETING = "Websocket connection established."
_KINDS = {"bbo": BOOK, "activeAssetCtx": FUNDING}
CLOSE_CODE = "close_code"
ABNORMAL_CLOSURE = 1006
_PREMIUM_STEP = Decimal("0.0000000001")


def _text(value: Decimal) -> str:
    return format(value, "f")


def _frame(channel: str, data: Any) -> str:
    return orjson.dumps({"channel": channel, "data": data}).decode()


def _parse_error(text: str) -> str:
    # The venue's own sentence for anything it cannot read as a request.
    return _frame("error", f"Error parsing JSON into valid websocket request: {text}")


class HyperliquidSim(VenueSim):
    name = "hyperliquid"
    ws_paths = ("/ws",)

    def rest_routes(self) -> dict[str, RestHandler]:
        """``POST /info`` with ``{"type":"meta"}`` returns the bundled meta; the default GET routes do not apply."""
        listing = orjson.loads(listing_path(self.name, None).read_bytes())
        meta = orjson.dumps(listing[META_KEY])

        async def info(request: web.Request) -> web.StreamResponse:
            if request.method != "POST":
                raise web.HTTPMethodNotAllowed(request.method, ["POST"])
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                body = None
            if not isinstance(body, dict) or body.get("type") != "meta":
                raise web.HTTPUnprocessableEntity(text="Failed to deserialize the JSON body into the target type")
            return web.Response(body=meta, content_type="application/json")

        return {"/info": info}

    def on_open(self, session: SimSession) -> list[Frame]:
        return [GREETING]

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        if CLOSE_CODE in session.state:
            return []  # the socket is gone: nothing more is read or answered
        text = frame.decode(errors="replace") if isinstance(frame, bytes) else frame
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return [_parse_error(text)]
        method = request.get("method") if isinstance(request, dict) else None
        if method == "ping":
            return [orjson.dumps({"channel": "pong"}).decode()]
        subscription = request.get("subscription") if isinstance(request, dict) else None
        if method not in ("subscribe", "unsubscribe") or not isinstance(subscription, dict):
            return [_parse_error(text)]
        kind_name, coin = subscription.get("type"), subscription.get("coin")
        kind = _KINDS.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None or not isinstance(coin, str):
            return [_parse_error(text)]  # this simulator speaks bbo and activeAssetCtx only
        if coin not in self.by_native:
            return self._close(session)
        key = (kind, coin)
        if method == "subscribe" and key in session.subscriptions:
            return [_frame("error", f"Already subscribed: {orjson.dumps(subscription).decode()}")]
        if method == "subscribe":
            session.subscriptions.add(key)
        else:
            session.subscriptions.discard(key)
        return [_frame("subscriptionResponse", {"method": method, "subscription": subscription})]

    @staticmethod
    def _close(session: SimSession) -> list[Frame]:
        """What the venue does to an unknown coin: drop the connection, no error frame."""
        session.state[CLOSE_CODE] = ABNORMAL_CLOSURE
        session.close_requested = True
        session.subscriptions.clear()
        return []

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        if CLOSE_CODE in session.state:
            return []
        levels = [
            {"px": _text(px), "sz": _text(to_venue_qty(inst, size, px)), "n": 1 + (quote.ts_ms + side) % 9}
            for side, (px, size) in enumerate(((quote.bid, quote.bid_size), (quote.ask, quote.ask_size)))
        ]
        return [_frame("bbo", {"coin": inst.native_symbol, "time": quote.ts_ms, "bbo": levels})]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        if CLOSE_CODE in session.state:
            return []
        mark, oracle = funding.mark, funding.index
        premium = ((mark - oracle) / oracle).quantize(_PREMIUM_STEP) if oracle else Decimal(0)
        ctx = {
            "funding": _text(funding.rate),
            "openInterest": "30122.44012",
            "prevDayPx": _text(mark),
            "dayNtlVlm": "3120993814.20331",
            "premium": _text(premium),
            "oraclePx": _text(oracle),
            "markPx": _text(mark),
            "midPx": _text(mark),
            "impactPxs": [_text(mark), _text(mark)],
            "dayBaseVlm": "36231.00491",
        }
        return [_frame("activeAssetCtx", {"coin": inst.native_symbol, "ctx": ctx})]


SIM = HyperliquidSim
