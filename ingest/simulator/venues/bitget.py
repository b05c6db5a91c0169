"""Bitget classic v2 simulator: one public socket, ``books1`` + ``ticker`` per contract, text ping/pong.

Generated listings: ``mix/market/contracts`` and ``mix/market/tickers`` for each family:
USDT-M (``BTCUSDT``, ``1000BONKUSDT``), USDC-M (``BTCPERP``) and Coin-M inverse (``BTCUSD``,
for the handful of majors Bitget lists there). Sizes are base coin on every family.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, ListingSpec, SimSession, VenueSim, to_venue_qty
from ingest.simulator.funding_history import Settled, instrument, int_param
from ingest.simulator.listing_helpers import (
    nominal_price,
    open_units,
    plain,
    prefixed,
    tick_for,
    with_unit_open_interest,
)
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import make_instrument
from ingest.venues.bitget import COIN_M, FUNDING_HISTORY_PATH, LISTINGS, TICKERS, USDC_M, USDT_M
from schemas.market import ContractKind, Instrument

_CHANNELS = {"books1": BOOK, "ticker": FUNDING}
# Coin-M book sequence numbers on the wire already exceed 2**53.
_COIN_M_SEQ_START = 1_483_653_649_371_725_838
# Coin-M perpetuals: nine on the classic listing on 2026-09-15 ([AO] bitget/rest.md §2); which
# nine is not recorded there, so these are the usual majors.
COIN_M_BASES = frozenset({"BTC", "ETH", "SOL", "XRP", "LTC", "ADA", "DOGE", "BCH", "LINK"})
_SUFFIX = {USDT_M: "USDT", USDC_M: "PERP", COIN_M: "USD"}


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
    funding_history_path = FUNDING_HISTORY_PATH

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any:
        """Newest first, page ``pageNo`` of ``pageSize`` (<= 100) rows; no time window."""
        inst = instrument(self, query.get("symbol"))
        size, page = min(int_param(query, "pageSize", 20), 100), max(1, int_param(query, "pageNo", 1))
        rows = settled(inst, 0, 2**62)[::-1][(page - 1) * size : page * size]
        data = [{"symbol": inst.native_symbol, "fundingRate": _text(r), "fundingTime": str(t)} for t, r in rows]
        return {"code": "00000", "msg": "success", "requestTime": 1_790_516_400_000, "data": data}

    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        asset = prefixed(spec.base, spec.multiplier)
        if asset is None:
            return None
        price = spec.reference_price * spec.multiplier
        if spec.group == "USD-inverse":
            if spec.base not in COIN_M_BASES or spec.multiplier != 1:
                return None
            kind, native, quote, settle, size = ContractKind.INVERSE, f"{asset}USD", "USD", asset, Decimal(1)
        elif spec.group in ("USDT", "USDC"):
            family = USDT_M if spec.group == "USDT" else USDC_M
            kind, native, quote, settle = ContractKind.LINEAR, f"{asset}{_SUFFIX[family]}", spec.group, spec.group
            size = Decimal(spec.multiplier)  # sizes count the named asset (1000BONK)
        else:
            return None
        inst = make_instrument(
            cls.name, native, asset, quote, settle, kind, size, tick_for(price), spec.funding_interval_h
        )
        inst = msgspec.structs.replace(inst, volume_24h_quote=spec.volume_24h_quote)
        return with_unit_open_interest(inst, nominal_price(inst.tick_size))

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        mine = [i for i in instruments if i.venue == self.name]
        responses = {}
        for family, path in LISTINGS.items():
            members = [i for i in mine if _family(i) == family]
            responses[path] = _ok([_contract_row(i) for i in members])
            responses[TICKERS[family]] = _ok([_ticker_row(i) for i in members if i.volume_24h_quote is not None])
        return responses

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


def _ok(data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"code": "00000", "msg": "success", "requestTime": 1790516400000, "data": data}


def _asset(inst: Instrument) -> str:
    """``baseCoin`` as listed: the native symbol without its family suffix (``1000BONK``)."""
    return inst.native_symbol.removesuffix(_SUFFIX[_family(inst)])


def _contract_row(inst: Instrument) -> dict[str, Any]:
    """One classic ``mix/market/contracts`` row (every value a string, as Bitget sends them)."""
    tick = inst.tick_size or Decimal("0.1")
    places = max(0, -tick.adjusted())
    step = tick.scaleb(places)  # priceEndStep at pricePlace: 1 at 10 is 1E-10
    lot = plain(Decimal(1).scaleb(-nominal_price(tick).adjusted()))  # order step worth ~$1-10
    margin = [inst.settle] if inst.kind is ContractKind.LINEAR else [inst.settle, "USDT", "USDC"]
    return {
        "symbol": inst.native_symbol,
        "baseCoin": _asset(inst),
        "quoteCoin": inst.quote,
        "buyLimitPriceRatio": "0.05",
        "sellLimitPriceRatio": "0.05",
        "feeRateUpRatio": "0.005",
        "makerFeeRate": "0.0002",
        "takerFeeRate": "0.0006",
        "openCostUpRatio": "0.01",
        "supportMarginCoins": margin,
        "minTradeNum": lot,
        "priceEndStep": plain(step),
        "volumePlace": str(max(0, -Decimal(lot).adjusted())),
        "pricePlace": str(places),
        "sizeMultiplier": lot,
        "symbolType": "perpetual",
        "minTradeUSDT": "5",
        "maxSymbolOrderNum": "200",
        "maxProductOrderNum": "400",
        "maxPositionNum": "150",
        "symbolStatus": "normal",
        "offTime": "-1",
        "limitOpenTime": "-1",
        "deliveryTime": "",
        "deliveryStartTime": "",
        "deliveryPeriod": "",
        "launchTime": "",
        "fundInterval": str(inst.funding_interval_h or 8),
        "minLever": "1",
        "maxLever": "50",
        "posLimit": "0.1",
        "maintainTime": "",
        "maxMarketOrderQty": "20000",
        "maxOrderQty": "100000",
        "isRwa": "NO",
    }


def _ticker_row(inst: Instrument) -> dict[str, Any]:
    """One ``mix/market/tickers`` row; ``quoteVolume`` carries the 24 h quote turnover."""
    price = plain(nominal_price(inst.tick_size))
    volume = inst.volume_24h_quote or Decimal(0)
    return {
        "symbol": inst.native_symbol,
        "lastPr": price,
        "askPr": price,
        "bidPr": price,
        "bidSz": "1",
        "askSz": "1",
        "high24h": price,
        "low24h": price,
        "ts": "1790516400005",
        "change24h": "0",
        "baseVolume": plain((volume / Decimal(price)).quantize(Decimal(1))),
        "quoteVolume": plain(volume),
        "usdtVolume": plain(volume),
        "openUtc": price,
        "changeUtc24h": "0",
        "indexPrice": price,
        "fundingRate": "0.0001",
        "holdingAmount": plain(open_units(inst, Decimal(price))),
        "deliveryStartTime": None,
        "deliveryTime": None,
        "deliveryStatus": "",
        "open24h": price,
        "markPrice": price,
    }
