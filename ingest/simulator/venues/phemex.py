"""Phemex simulator: one socket for COIN-M (scaled integers) and hedged USDT-M (decimal strings).

Like the live DataGW: one symbol per subscribe frame, ``{"status":"success"}``
acks, ``6001 invalid argument`` for anything it does not know (including a
symbol on the other family's channel), ``6015`` past the documented 20
subscriptions, ``server.ping`` answered with ``"pong"``. A book subscription
gets a snapshot, then increments (qty 0 deletes a level) and a fresh snapshot
every 60 s; sequences strictly increase. The all-symbol tickers send one frame
per symbol and tick; the hedged pack carries every symbol's best bid and ask
(no sizes), at most once a second per symbol. COIN-M contracts all use price
scale 4 and ratio scale 8 (the documented scale table), set here, not read from
the venue module, so the two sides stay independent.

Generated listings: ``/public/products`` (COIN-M ``products``: ``BTCUSD`` and
``c<BASE>USD`` for a few majors; hedged ``perpProductsV2``: ``BTCUSDT``,
``u1000PEPEUSDT``, ``BTCUSDC``) and ``/md/v3/ticker/24hr/all`` for the hedged
symbols' 24 h turnover.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec
import orjson

from ingest.simulator.base import (
    BOOK,
    FUNDING,
    Frame,
    ListingSpec,
    SimSession,
    VenueSim,
    to_contracts,
    to_venue_qty,
)
from ingest.simulator.listing_helpers import (
    nominal_price,
    number,
    open_units,
    plain,
    prefixed,
    tick_for,
    with_unit_open_interest,
)
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import canonical_base, make_instrument
from ingest.venues.phemex import PRODUCTS_PATH, TICKERS_PATH
from schemas.market import ContractKind, Instrument

MAX_SUBSCRIPTIONS = 20
SNAPSHOT_EVERY = 600  # book frames: 60 s at the simulator's 100 ms tick
DEEPER_LEVELS = 2
PACK_FIELDS = ["symbol", "openRp", "highRp", "lowRp", "lastRp", "volumeRq", "turnoverRv", "openInterestRv",
               "indexRp", "markRp", "fundingRateRr", "predFundingRateRr", "bidRp", "askRp"]  # fmt: skip
PACK_EVERY_MS = 1000  # "publish 24-hour ticker metrics for all symbols every 1 second"
COIN_M_SCALES = (4, 8)  # every COIN-M contract: priceScale 4, ratioScale 8
COIN_M_BASES = frozenset({"BTC", "ETH", "SOL", "XRP", "LTC", "DOGE"})

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

    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        if spec.group == "USD-inverse":
            if spec.base not in COIN_M_BASES or spec.multiplier != 1:
                return None
            # Prices are multiples of 10^-priceScale: no finer tick than 0.0001.
            tick = max(tick_for(spec.reference_price), Decimal(1).scaleb(-COIN_M_SCALES[0]))
            native = "BTCUSD" if spec.base == "BTC" else f"c{spec.base}USD"
            inst = make_instrument(
                cls.name, native, spec.base, "USD", spec.base, ContractKind.INVERSE, Decimal(1), tick,
                spec.funding_interval_h,
            )  # fmt: skip
            return inst  # the COIN-M ticker list is not fetched: no volume
        asset = prefixed(spec.base, spec.multiplier)
        if asset is None or spec.group not in ("USDT", "USDC"):
            return None
        native = f"u{asset}{spec.group}" if spec.multiplier != 1 else f"{asset}{spec.group}"
        price = spec.reference_price * spec.multiplier
        inst = make_instrument(
            cls.name, native, asset, spec.group, spec.group, ContractKind.LINEAR, Decimal(spec.multiplier),
            tick_for(price), spec.funding_interval_h,
        )  # fmt: skip
        inst = msgspec.structs.replace(inst, volume_24h_quote=spec.volume_24h_quote)
        return with_unit_open_interest(inst, nominal_price(inst.tick_size))

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        mine = [i for i in instruments if i.venue == self.name]
        coin = [_coin_product(i, n) for n, i in enumerate(mine) if i.kind is ContractKind.INVERSE]
        hedged = [_hedged_product(i, n) for n, i in enumerate(mine) if i.kind is ContractKind.LINEAR]
        data = {"ratioScale": 8, "currencies": _currencies(mine), "products": coin, "perpProductsV2": hedged,
                "riskLimits": [], "riskLimitsV2": [], "leverages": [], "md5Checksum": "0" * 32}  # fmt: skip
        tickers = [_ticker(i) for i in mine if i.kind is ContractKind.LINEAR and i.volume_24h_quote is not None]
        return {
            PRODUCTS_PATH: {"code": 0, "msg": "", "data": data},
            TICKERS_PATH: {"error": None, "id": 0, "result": tickers},
        }

    def __init__(self, instruments: list[Instrument]) -> None:
        super().__init__(instruments)
        # (priceScale, ratioScale) of every COIN-M symbol: they speak the scaled dialect.
        self.scales = {s: COIN_M_SCALES for s, i in self.by_native.items() if i.kind is ContractKind.INVERSE}
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
            session.state.setdefault("book_subs", set()).add(params[0])
            session.state.setdefault("books", {}).pop(params[0], None)  # a new snapshot follows
        else:  # the all-symbol tickers take no parameters
            session.subscriptions.update((FUNDING, s) for s in symbols)
            if channel == "perp_market24h_pack_p":  # the pack also carries every symbol's bid and ask
                session.subscriptions.update((BOOK, s) for s in symbols)
        session.state["subscribe_count"] = count + 1
        return [_dump({"error": None, "id": request_id, "result": {"status": "success"}})]

    # -- books -----------------------------------------------------------------
    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        symbol = inst.native_symbol
        session.state.setdefault("quotes", {})[symbol] = quote
        if symbol not in session.state.get("book_subs", ()):
            return self._pack_quote(session, inst, quote)
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
        session.state.setdefault("fundings", {})[symbol] = funding
        return [self._pack(session, inst, funding, session.state.get("quotes", {}).get(symbol), ts_ns)]

    def _pack_quote(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        """The pack row of a symbol without a book: its bid and ask, once a second at most."""
        symbol = inst.native_symbol
        sent: dict[str, int] = session.state.setdefault("pack_quote_ms", {})
        funding: SimFunding | None = session.state.get("fundings", {}).get(symbol)
        if funding is None or quote.ts_ms - sent.get(symbol, -PACK_EVERY_MS) < PACK_EVERY_MS:
            return []
        sent[symbol] = quote.ts_ms
        return [self._pack(session, inst, funding, quote, quote.ts_ms * 1_000_000)]

    @staticmethod
    def _pack(session: SimSession, inst: Instrument, funding: SimFunding, quote: SimQuote | None, ts_ns: int) -> str:
        symbol = inst.native_symbol
        mark, rate, index = _text(funding.mark), _text(funding.rate), _text(funding.index)
        bid, ask = ("", "") if quote is None else (_text(quote.bid), _text(quote.ask))
        row = [symbol, mark, mark, mark, mark, "8819.819", "182892627.4297", "0", index, mark, rate, rate, bid, ask]
        sent: set[str] = session.state.setdefault("pack_sent", set())
        kind = "incremental" if symbol in sent else "snapshot"
        sent.add(symbol)
        pack = {"data": [row], "fields": PACK_FIELDS, "method": "perp_market24h_pack_p.update",
                "timestamp": ts_ns, "type": kind}  # fmt: skip
        return _dump(pack)


SIM = PhemexSim


def _currencies(instruments: list[Instrument]) -> list[dict[str, Any]]:
    names = sorted({i.settle for i in instruments} | {"USD"})
    return [{"currency": c, "name": c, "valueScale": 4 if c == "USD" else 8, "status": "Listed"} for c in names]


def _coin_product(inst: Instrument, code: int) -> dict[str, Any]:
    """A COIN-M ``products`` row: numbers as JSON numbers, prices scaled by 10^4."""
    base, symbol = inst.base, inst.native_symbol
    tick = inst.tick_size or Decimal("0.5")
    hours = inst.funding_interval_h or 8
    return {
        "symbol": symbol, "code": 1 + code, "type": "Perpetual", "displaySymbol": f"{base} / USD",
        "indexSymbol": f".{base}", "markSymbol": f".M{base}", "fundingRateSymbol": f".{base}FR",
        "fundingRate8hSymbol": f".{base}FR8H", "contractUnderlyingAssets": "USD", "settleCurrency": inst.settle,
        "quoteCurrency": "USD", "baseCurrency": base, "contractSize": Decimal("1.0"), "lotSize": 1,
        "tickSize": number(tick), "priceScale": COIN_M_SCALES[0], "ratioScale": COIN_M_SCALES[1], "valueScale": 8,
        "pricePrecision": max(0, -tick.adjusted()), "minPriceEp": 100, "maxPriceEp": 10_000_000_000,
        "maxOrderQty": 1_000_000, "description": f"{symbol} is a {base}/USD inverse perpetual contract. Each "
        f"contract is worth 1 USD of {base}. Funding is paid and received every {hours} hours.",
        "status": "Listed", "tipOrderQty": 1_000_000, "listTime": 1704096000000, "majorSymbol": base == "BTC",
        "defaultLeverage": "0", "fundingInterval": hours * 3600, "maxLeverage": 100,
    }  # fmt: skip


def _hedged_product(inst: Instrument, code: int) -> dict[str, Any]:
    """A ``perpProductsV2`` row: unscaled decimal strings; 1000x contracts spell their asset "1000 PEPE"."""
    symbol, quote = inst.native_symbol, inst.quote
    asset = symbol.removeprefix("u").removesuffix(quote)
    _, multiplier = canonical_base(asset)
    spelled = f"{multiplier} {inst.base}" if multiplier != 1 else asset
    tick = inst.tick_size or Decimal("0.01")
    hours = inst.funding_interval_h or 8
    step = plain(Decimal(1).scaleb(-nominal_price(tick).adjusted()))
    return {
        "symbol": symbol, "code": 40000 + code, "type": "PerpetualV2", "displaySymbol": f"{spelled} / {quote}",
        "indexSymbol": f".{symbol}", "markSymbol": f".M{symbol}", "fundingRateSymbol": f".{symbol}FR",
        "fundingRate8hSymbol": f".{symbol}FR8H", "contractUnderlyingAssets": spelled, "settleCurrency": inst.settle,
        "quoteCurrency": quote, "tickSize": plain(tick), "priceScale": 0, "ratioScale": 0,
        "pricePrecision": max(0, -tick.adjusted()), "baseCurrency": spelled,
        "description": f"{spelled}/{quote} perpetual contracts are priced on the .{symbol} Index. Each contract "
        f"is worth 1 {spelled}. Funding fees are paid and received every {hours} hours.",
        "status": "Listed", "tipOrderQty": 0, "listTime": 1668225600000, "majorSymbol": False,
        "defaultLeverage": "-10", "fundingInterval": hours * 3600, "maxLeverage": 50,
        "perpProductSubType": "Normal", "maxOrderQtyRq": "1000000", "maxPriceRp": "2000000000",
        "minOrderValueRv": "1", "minPriceRp": plain(tick), "qtyPrecision": max(0, -Decimal(step).adjusted()),
        "qtyStepSize": step, "tipOrderQtyRq": "100000",
    }  # fmt: skip


def _ticker(inst: Instrument) -> dict[str, Any]:
    """A ``/md/v3/ticker/24hr/all`` row; ``turnoverRv`` is the 24 h turnover in the settle currency."""
    price = plain(nominal_price(inst.tick_size))
    volume = inst.volume_24h_quote or Decimal(0)
    return {
        "askRp": price, "bidRp": price, "fundingRateRr": "0.0001", "highRp": price, "indexRp": price,
        "lastRp": price, "lowRp": price, "markRp": price, "openRp": price,
        "openInterestRv": plain(open_units(inst, Decimal(price))),
        "predFundingRateRr": "0.0001", "symbol": inst.native_symbol, "timestamp": 1790516400000000000,
        "turnoverRv": plain(volume), "volumeRq": plain((volume / Decimal(price)).quantize(Decimal(1))),
    }  # fmt: skip
