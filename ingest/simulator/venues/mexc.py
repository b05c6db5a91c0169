"""MEXC contract simulator: one socket on /edge, one contract per subscribe frame.

Books go out as ``push.depth.full`` (5 levels a side, JSON numbers, integer
contracts); funding as ``push.ticker`` (fair/index price, if subscribed) then
``push.funding.rate``. Acks name no contract, like the real venue; an unknown
contract gets ``rs.error``; an unknown method or non-JSON frame gets no reply.

Generated listings: ``contract/detail``, the bulk ``contract/funding_rate`` (``collectCycle``
per contract) and the bulk ``contract/ticker`` (24 h volume). USDT and USDC linear contracts
(``PEPE_USDT`` priced per coin, ``1000BONK_USDT`` / ``1000000MOG_USDT`` prefixed) and the ten
coin-margined ``<BASE>_USD`` inverses MEXC lists (BTC 100 USD a contract, the others 10 USD).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import msgspec
import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, ListingSpec, SimSession, VenueSim, to_contracts
from ingest.simulator.funding_history import Settled, instrument, int_param, json_number
from ingest.simulator.listing_helpers import (
    funding_limits,
    next_funding_ms,
    nominal_price,
    number,
    open_contracts,
    prefixed,
    tick_for,
    with_funding_limits,
    with_open_interest,
)
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import canonical_base, make_instrument
from ingest.venues.mexc import DETAIL_PATH, ENABLED, FUNDING_HISTORY_PATH, FUNDING_PATH, PERPETUAL, TICKER_PATH
from schemas.market import ContractKind, Instrument

LEVELS = 5
TICKERS = "tickers"
_KINDS = {"sub.depth.full": BOOK, "sub.funding.rate": FUNDING, "sub.ticker": TICKERS}
# The venue sends numbers, not strings: encode Decimals as JSON numbers.
_encode = msgspec.json.Encoder(decimal_format="number").encode
# Coin-margined perpetuals on the live listing ([AO] mexc/rest.md §2, 2026-09-15): USD per contract.
INVERSE_USD = {"BTC": 100, **dict.fromkeys(("ETH", "SOL", "XRP", "SUI", "DOGE", "ADA", "LTC", "AVAX", "LINK"), 10)}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


FUNDING_CAP = Decimal("0.003")
"""Funding-rate bound per interval the generated listing publishes (both signs)."""


class MexcSim(VenueSim):
    name = "mexc"
    ws_paths = ("/edge",)
    funding_history_path = FUNDING_HISTORY_PATH

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any:
        """Newest first, page ``page_num`` of ``page_size`` (<= 1000) rows; no time window."""
        inst = instrument(self, query.get("symbol"))
        size, page = min(int_param(query, "page_size", 20), 1000), max(1, int_param(query, "page_num", 1))
        every = settled(inst, 0, 2**62)[::-1]
        rows = [
            {"symbol": inst.native_symbol, "fundingRate": json_number(r), "settleTime": t}
            for t, r in every[(page - 1) * size : page * size]
        ]
        pages = {"pageSize": size, "totalCount": len(every), "totalPage": -(-len(every) // size), "currentPage": page}
        return {"success": True, "code": 0, "data": {**pages, "resultList": rows}}

    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        inst = cls._listed(spec)
        if inst is None:
            return None
        return with_open_interest(with_funding_limits(inst, FUNDING_CAP), nominal_price(inst.tick_size))

    @classmethod
    def _listed(cls, spec: ListingSpec) -> Instrument | None:
        if spec.group == "USD-inverse":
            usd = INVERSE_USD.get(spec.base)
            if usd is None or spec.multiplier != 1:
                return None
            inst = make_instrument(
                cls.name, f"{spec.base}_USD", spec.base, "USD", spec.base, ContractKind.INVERSE, Decimal(usd),
                tick_for(spec.reference_price), spec.funding_interval_h,
            )  # fmt: skip
            # The venue counts whole USD contracts: the volume is a multiple of the contract value.
            if spec.volume_24h_quote is not None:
                contracts = (spec.volume_24h_quote / usd).quantize(Decimal(1))
                return msgspec.structs.replace(inst, volume_24h_quote=contracts * usd)
        else:
            asset = prefixed(spec.base, spec.multiplier)
            if asset is None or spec.group not in ("USDT", "USDC"):
                return None
            price = spec.reference_price * spec.multiplier
            # contractSize: coins of the named asset, a contract worth $1-10 (BTC_USDT 0.0001).
            size = Decimal(1).scaleb(-price.adjusted())
            inst = make_instrument(
                cls.name, f"{asset}_{spec.group}", asset, spec.group, spec.group, ContractKind.LINEAR,
                size * spec.multiplier, tick_for(price), spec.funding_interval_h,
            )  # fmt: skip
        return msgspec.structs.replace(inst, volume_24h_quote=spec.volume_24h_quote)

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        mine = [i for i in instruments if i.venue == self.name]
        return {
            DETAIL_PATH: _ok([_detail_row(i) for i in mine]),
            FUNDING_PATH: _ok([_funding_row(i) for i in mine]),
            TICKER_PATH: _ok([_ticker_row(i) for i in mine if i.volume_24h_quote is not None]),
        }

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


def _ok(data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"success": True, "code": 0, "data": data}


def _venue_contract_size(inst: Instrument) -> Decimal:
    """``contractSize`` as listed: coins of the named asset (linear) or USD (inverse)."""
    if inst.kind is ContractKind.INVERSE:
        return inst.contract_size
    return inst.contract_size / canonical_base(inst.native_symbol.rpartition("_")[0])[1]


def _detail_row(inst: Instrument) -> dict[str, Any]:
    """One ``contract/detail`` row (JSON numbers, as MEXC sends them)."""
    asset = inst.native_symbol.rpartition("_")[0]
    tick = inst.tick_size or Decimal("0.1")
    return {
        "symbol": inst.native_symbol,
        "displayName": f"{inst.native_symbol}永续",
        "displayNameEn": f"{inst.native_symbol} PERPETUAL",
        "positionOpenType": 3,
        "baseCoin": asset,
        "quoteCoin": inst.quote,
        "baseCoinName": asset,
        "quoteCoinName": inst.quote,
        "futureType": PERPETUAL,
        "settleCoin": inst.settle,
        "contractSize": number(_venue_contract_size(inst)),
        "minLeverage": 1,
        "maxLeverage": 200 if inst.kind is ContractKind.LINEAR else 100,
        "priceScale": max(0, -int(tick.as_tuple().exponent)),
        "volScale": 0,
        "amountScale": 4,
        "priceUnit": number(tick),
        "volUnit": 1,
        "minVol": 1,
        "maxVol": 1_000_000,
        "takerFeeRate": Decimal("0.0002"),
        "makerFeeRate": Decimal(0),
        "maintenanceMarginRate": Decimal("0.004"),
        "initialMarginRate": Decimal("0.005"),
        "state": ENABLED,
        "isNew": False,
        "isHot": False,
        "isHidden": False,
        "apiAllowed": True,
        "depthStepList": [str(number(tick)), str(number(tick * 10))],
    }


def _funding_row(inst: Instrument) -> dict[str, Any]:
    price = nominal_price(inst.tick_size)
    return {
        "symbol": inst.native_symbol,
        "fundingRate": Decimal("0.0001"),
        "maxFundingRate": funding_limits(inst, FUNDING_CAP)[0],
        "minFundingRate": funding_limits(inst, FUNDING_CAP)[1],
        "collectCycle": inst.funding_interval_h or 8,
        "nextSettleTime": next_funding_ms(inst.funding_interval_h),
        "timestamp": next_funding_ms(1) - 3_600_000,
        "idxPrice": price,
        "fairPrice": price,
    }


def _ticker_row(inst: Instrument) -> dict[str, Any]:
    """One bulk ``contract/ticker`` row; ``amount24`` (linear) or ``volume24`` (inverse) carry the volume."""
    price = nominal_price(inst.tick_size)
    volume = inst.volume_24h_quote or Decimal(0)
    if inst.kind is ContractKind.LINEAR:
        contracts = (volume / price / inst.contract_size).quantize(Decimal(1))
        amount = volume
    else:
        contracts = volume / inst.contract_size
        amount = (volume / price).quantize(Decimal("0.0001"))
    return {
        "symbol": inst.native_symbol,
        "lastPrice": price,
        "bid1": price,
        "ask1": price,
        "volume24": number(contracts),
        "amount24": number(amount),
        "holdVol": number(open_contracts(inst, price)),
        "lower24Price": price,
        "high24Price": price,
        "riseFallRate": Decimal(0),
        "riseFallValue": Decimal(0),
        "indexPrice": price,
        "fairPrice": price,
        "fundingRate": Decimal("0.0001"),
        "timestamp": next_funding_ms(1) - 3_600_000,
    }
