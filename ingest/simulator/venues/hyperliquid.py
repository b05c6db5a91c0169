"""Hyperliquid simulator: one socket on /ws, one subscription per frame; the listing is POST /info.

``POST /info`` answers ``{"type":"meta"}`` (universe) and ``{"type":"metaAndAssetCtxs"}``
(``[meta, contexts]``, contexts by position, with the 24 h notional volume
``dayNtlVlm``) for the simulator's instruments: USDC-settled, ``k``-prefixed for
1000x, hourly funding, no fixed tick (``szDecimals`` from the price instead).

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

import msgspec
import orjson
from aiohttp import web

from ingest.simulator.base import BOOK, FUNDING, Frame, ListingSpec, RestHandler, SimSession, VenueSim, to_venue_qty
from ingest.simulator.funding_history import HistoryError, Settled, instrument
from ingest.simulator.listing_helpers import open_units, plain, prefixed, with_unit_open_interest
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import make_instrument
from schemas.market import ContractKind, Instrument

PREMIUM_OFFSET = Decimal("0.0000125")
"""Hyperliquid's funding is the premium plus 0.00125 % an hour of interest: the premium shown."""

# Spelt out here rather than imported, so the simulator checks the venue module.
CTXS_KEY = "POST /info metaAndAssetCtxs"
QUOTE = "USDC"
FUNDING_INTERVAL_H = 1
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
    funding_history_path = "/info"

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any:
        """``{"type": "fundingHistory", coin, startTime, endTime?}``: oldest first, at most 500, each
        ``time`` a few ms past the hour as the venue stamps them; other info types: None."""
        if not isinstance(body, dict) or body.get("type") != "fundingHistory":
            return None
        inst = instrument(self, body.get("coin"))
        start, end = body.get("startTime"), body.get("endTime", 2**62)
        if not isinstance(start, int) or not isinstance(end, int):
            raise HistoryError("startTime (and endTime) must be integers")
        return [
            {"coin": inst.native_symbol, "fundingRate": _text(r), "premium": _text(r - PREMIUM_OFFSET), "time": t + 76}
            for t, r in settled(inst, start, end)[:500]
        ]

    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        if spec.group != QUOTE or spec.multiplier not in (1, 1000):
            return None  # USDC only; 1000x is spelt kPEPE, nothing else is prefixed
        coin = prefixed(spec.base, spec.multiplier, prefix_k=True)
        if coin is None:
            return None
        instrument = make_instrument(
            cls.name, coin, coin, QUOTE, QUOTE, ContractKind.LINEAR,
            contract_size=Decimal(spec.multiplier), tick_size=None, funding_interval_h=FUNDING_INTERVAL_H,
        )  # fmt: skip
        # Every coin's context carries its 24 h notional volume, zero for an idle coin.
        instrument = msgspec.structs.replace(instrument, volume_24h_quote=spec.volume_24h_quote or Decimal(0))
        return with_unit_open_interest(instrument, _reference_price(instrument))

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        mine = [i for i in instruments if i.venue == self.name]
        universe = [_asset(i) for i in mine]
        meta = {"universe": universe, "marginTables": _MARGIN_TABLES, "collateralToken": 0}
        return {CTXS_KEY: [meta, [_context(i) for i in mine]]}

    def rest_routes(self) -> dict[str, RestHandler]:
        """``POST /info`` with ``{"type":"meta"}`` or ``metaAndAssetCtxs``: the simulator's listing."""
        meta_and_contexts = self.listing(list(self.by_native.values()))[CTXS_KEY]
        answers = {"meta": orjson.dumps(meta_and_contexts[0]), "metaAndAssetCtxs": _json(meta_and_contexts)}

        async def info(request: web.Request) -> web.StreamResponse:
            if request.method != "POST":
                raise web.HTTPMethodNotAllowed(request.method, ["POST"])
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                body = None
            answer = answers.get(str(body.get("type"))) if isinstance(body, dict) else None
            if answer is None:
                raise web.HTTPUnprocessableEntity(text="Failed to deserialize the JSON body into the target type")
            return web.Response(body=answer, content_type="application/json")

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


# Margin tables the universe rows refer to (id -> leverage tiers), as the venue publishes them.
_MARGIN_TABLES = [
    [id_, {"description": f"tiered {lev}x", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}]}]
    for id_, lev in ((3, 3), (5, 5), (10, 10), (20, 20), (40, 40))
]
_json = msgspec.json.Encoder(decimal_format="number").encode


def _asset(inst: Instrument) -> dict[str, Any]:
    """A universe row; ``szDecimals`` keeps a size step worth about a dollar or more."""
    reference = _reference_price(inst)
    leverage = 40 if inst.base in ("BTC", "ETH") else 20 if reference > 10 else 10 if reference > Decimal("0.1") else 5
    return {
        "szDecimals": max(0, min(5, reference.adjusted() + 1)),
        "name": inst.native_symbol,
        "maxLeverage": leverage,
        "marginTableId": leverage,
    }


def _reference_price(inst: Instrument) -> Decimal:
    """A plausible price of one listed unit (no tick in the listing; volumes relate to it loosely)."""
    known = {"BTC": Decimal("86400"), "ETH": Decimal("3200"), "SOL": Decimal("180")}
    return known.get(inst.base, Decimal("1.5")) * inst.contract_size


def _context(inst: Instrument) -> dict[str, Any]:
    """The coin's asset context, all strings; ``dayNtlVlm`` carries the listing's 24 h volume."""
    price = plain(_reference_price(inst))
    context: dict[str, Any] = {"funding": "0.0000125"}
    volume = inst.volume_24h_quote
    if volume is not None:  # units of the listed coin (a bundled instrument, without one, has none)
        context["openInterest"] = plain(open_units(inst, _reference_price(inst)))
    context["prevDayPx"] = price
    if volume is not None:  # an instrument without one (a bundled listing's) is served without
        context["dayNtlVlm"] = plain(volume)
    context |= {"premium": "0.0", "oraclePx": price, "markPx": price, "midPx": price}
    context |= {"impactPxs": [price, price]}
    if volume is not None:
        context["dayBaseVlm"] = plain((volume / Decimal(price)).quantize(Decimal("0.01")))
    return context


SIM = HyperliquidSim
