"""Phemex simulator: one socket for COIN-M (scaled integers) and hedged USDT-M (decimal strings).

Like the live DataGW: one symbol per subscribe frame, ``{"status":"success"}``
acks, ``6001 invalid argument`` for anything it does not know (including a
symbol on the other family's channel), ``6015`` past the documented 20
subscriptions, ``server.ping`` answered with ``"pong"``. A book subscription
gets a snapshot, then increments (qty 0 deletes a level) and a fresh snapshot
every 60 s; sequences strictly increase. The all-symbol tickers send one frame
per symbol and tick. COIN-M scales are read from the bundled listing here, not
from the venue module, so the two sides stay independent.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson

from ingest.instruments import listing_path
from ingest.simulator.base import BOOK, FUNDING, Frame, SimSession, VenueSim, to_contracts, to_venue_qty
from ingest.simulator.market import SimFunding, SimQuote
from schemas.market import Instrument

MAX_SUBSCRIPTIONS = 20
SNAPSHOT_EVERY = 600  # book frames: 60 s at the simulator's 100 ms tick
DEEPER_LEVELS = 2
PACK_FIELDS = ["symbol", "openRp", "highRp", "lowRp", "lastRp", "volumeRq", "turnoverRv", "openInterestRv",
               "indexRp", "markRp", "fundingRateRr", "predFundingRateRr"]  # fmt: skip

Side = dict[str, Any]  # price as sent -> qty as sent


def _text(value: Decimal) -> str:
    return format(value, "f")


def _scaled(value: Decimal, power: int) -> int:
    return int(value.scaleb(power).to_integral_value(ROUND_HALF_EVEN))


def _dump(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _error(request_id: Any, code: int, message: str) -> str:
    return _dump({"error": {"code": code, "message": message}, "id": request_id, "result": None})


class PhemexSim(VenueSim):
    name = "phemex"
    ws_paths = ("/",)  # the live socket is wss://ws.phemex.com/, no further path allowed

    def __init__(self, instruments: list[Instrument]) -> None:
        super().__init__(instruments)
        listing = orjson.loads(listing_path(self.name, None).read_bytes())
        products = listing["/public/products"]["data"]["products"]
        # (priceScale, ratioScale) of every COIN-M symbol: they speak the scaled dialect.
        self.scales = {
            p["symbol"]: (int(p["priceScale"]), int(p["ratioScale"]))
            for p in products
            if p.get("type") == "Perpetual" and p["symbol"] in self.by_native
        }
        coin = [s for s in self.by_native if s in self.scales]
        hedged = [s for s in self.by_native if s not in self.scales]
        self.channels = {"orderbook": coin, "orderbook_p": hedged, "market24h": coin, "perp_market24h_pack_p": hedged}

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return [_error(None, 6001, "invalid argument")]
        if not isinstance(request, dict):
            return [_error(None, 6001, "invalid argument")]
        request_id, method, params = request.get("id"), str(request.get("method")), request.get("params")
        if method == "server.ping":
            return [_dump({"error": None, "id": request_id, "result": "pong"})]
        channel, _, verb = method.rpartition(".")
        symbols = self.channels.get(channel)
        if verb != "subscribe" or symbols is None or not isinstance(params, list):
            return [_error(request_id, 6001, "invalid argument")]
        count = session.state.setdefault("subscribe_count", 0)
        if count >= MAX_SUBSCRIPTIONS:
            return [_error(request_id, 6015, "subscription limit exceeded")]
        if channel.startswith("orderbook"):
            if not params or params[0] not in symbols:
                return [_error(request_id, 6001, "invalid argument")]
            session.subscriptions.add((BOOK, params[0]))
            session.state.setdefault("books", {}).pop(params[0], None)  # a new snapshot follows
        else:  # the all-symbol tickers take no parameters
            session.subscriptions.update((FUNDING, s) for s in symbols)
        session.state["subscribe_count"] = count + 1
        return [_dump({"error": None, "id": request_id, "result": {"status": "success"}})]

    # -- books -----------------------------------------------------------------
    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        symbol = inst.native_symbol
        scales = self.scales.get(symbol)
        tick = inst.tick_size or Decimal("0.01")
        wanted_bids, wanted_asks = {}, {}
        for depth in range(DEEPER_LEVELS + 1):
            bid, ask = quote.bid - depth * tick, quote.ask + depth * tick
            wanted_bids[self._price(bid, scales)] = self._qty(inst, quote.bid_size, bid, scales)
            wanted_asks[self._price(ask, scales)] = self._qty(inst, quote.ask_size, ask, scales)
        books: dict[str, tuple[Side, Side, int]] = session.state.setdefault("books", {})
        previous = books.get(symbol)
        if previous is None or previous[2] >= SNAPSHOT_EVERY:
            kind, bids, asks, age = "snapshot", list(wanted_bids.items()), list(wanted_asks.items()), 0
        else:
            kind, age = "incremental", previous[2] + 1
            bids, asks = self._diff(previous[0], wanted_bids), self._diff(previous[1], wanted_asks)
        books[symbol] = (wanted_bids, wanted_asks, age)
        sides = {"asks": [list(level) for level in asks], "bids": [list(level) for level in bids]}
        ts_ns = quote.ts_ms * 1_000_000
        frame: dict[str, Any] = {"depth": 30, "sequence": session.next_seq(symbol, start=68_604_886_000),
                                 "symbol": symbol, "timestamp": ts_ns, "type": kind}  # fmt: skip
        if scales is not None:
            return [_dump({"book": sides} | frame)]
        return [_dump({"dts": ts_ns + 2_500_000, "mts": ts_ns + 1_000_000, "orderbook_p": sides} | frame)]

    @staticmethod
    def _price(price: Decimal, scales: tuple[int, int] | None) -> Any:
        return _scaled(price, scales[0]) if scales else _text(price)

    @staticmethod
    def _qty(inst: Instrument, base_qty: Decimal, price: Decimal, scales: tuple[int, int] | None) -> Any:
        if scales:
            return to_contracts(inst, base_qty, price)  # whole USD contracts
        return _text(to_venue_qty(inst, base_qty, price))

    @staticmethod
    def _diff(old: Side, new: Side) -> list[tuple[Any, Any]]:
        """Increments turning ``old`` into ``new``: changed levels, and qty 0 for vanished ones."""
        zero = next((0 if isinstance(q, int) else "0" for q in new.values()), "0")
        gone = [(price, zero) for price in old if price not in new]
        return gone + [(price, qty) for price, qty in new.items() if old.get(price) != qty]

    # -- tickers ----------------------------------------------------------------
    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        symbol, ts_ns = inst.native_symbol, funding.ts_ms * 1_000_000
        scales = self.scales.get(symbol)
        if scales is not None:
            price, ratio = scales
            mark_ep, rate_er = _scaled(funding.mark, price), _scaled(funding.rate, ratio)
            index_ep = _scaled(funding.index, price)
            ticker = {"close": mark_ep, "fundingRate": rate_er, "high": mark_ep, "indexPrice": index_ep, "low": mark_ep,
                      "markPrice": mark_ep, "open": mark_ep, "openInterest": 1_422_018_832, "predFundingRate": rate_er,
                      "symbol": symbol, "timestamp": ts_ns, "turnover": 2_718_812_293_511,
                      "volume": 2_350_381_220}  # fmt: skip
            return [_dump({"market24h": ticker, "timestamp": ts_ns + 1_000_000})]
        mark, rate, index = _text(funding.mark), _text(funding.rate), _text(funding.index)
        row = [symbol, mark, mark, mark, mark, "8819.819", "182892627.4297", "0", index, mark, rate, rate]
        sent: set[str] = session.state.setdefault("pack_sent", set())
        kind = "incremental" if symbol in sent else "snapshot"
        sent.add(symbol)
        pack = {"data": [row], "fields": PACK_FIELDS, "method": "perp_market24h_pack_p.update",
                "timestamp": ts_ns, "type": kind}  # fmt: skip
        return [_dump(pack)]


SIM = PhemexSim
