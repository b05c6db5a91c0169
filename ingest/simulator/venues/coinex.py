"""CoinEx futures v2 simulator: one socket path, /v2/futures, every server frame gzip-compressed.

Answers ``bbo.subscribe`` / ``state.subscribe`` with ``{"id","code":0,"message":"OK"}``
(an unknown market is acked and then silent, like the real venue; an empty
``state`` list means every market), ``server.ping`` with the documented pong,
and an unknown method with code 30002. Books go out as ``bbo.update`` (base-coin
sizes; USD for inverse), funding as ``state.update`` with a one-market
``state_list`` (the real venue batches many markets per frame; the contract
test wants one market per call).

Empty-books mode reproduces CoinEx after its reported 2026-09-22 cessation:
subscriptions are still acked, every ``bbo.update`` carries zero prices and
sizes, and ``state.update`` repeats values frozen at the first push with the
settlement times of the morning the venue stopped. Turn it on for one
connection with ``session.state["empty_books"] = True``, for a whole simulator
instance with ``sim.empty_books = True``, or for every instance created later
with ``CoinexSim.empty_books = True`` (restore it afterwards).

Generated listings: USDT- and USDC-margined linear ``<COIN>USDT``/``<COIN>USDC``
and USD coin-margined inverse ``<COIN>USD``, unprefixed (the venue lists PEPE as
``PEPEUSDT``), served as ``/v2/futures/market``, ``/v2/futures/funding-rate``
(the interval as the gap between the next two settlement times) and
``/v2/futures/ticker`` (24 h quote turnover ``value``).
"""

from __future__ import annotations

import gzip
from decimal import Decimal
from typing import Any

import msgspec
import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, ListingSpec, SimSession, VenueSim, to_venue_qty
from ingest.simulator.funding_history import Settled, instrument, int_param
from ingest.simulator.listing_helpers import (
    next_funding_ms,
    nominal_price,
    open_units,
    plain,
    tick_for,
    with_unit_open_interest,
)
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import make_instrument
from ingest.venues.coinex import FUNDING_HISTORY_PATH
from schemas.market import ContractKind, Instrument

_CHANNELS = {"bbo.subscribe": BOOK, "state.subscribe": FUNDING}
# Settlement times frozen in the venue's last state push (2026-09-22 08:00 and 16:00 UTC).
FROZEN_SETTLEMENT_MS = 1_790_064_000_000
MARKET_PATH = "/v2/futures/market"
FUNDING_PATH = "/v2/futures/funding-rate"
TICKER_PATH = "/v2/futures/ticker"
LINEAR_GROUPS = ("USDT", "USDC")
INVERSE = "USD-inverse"
LISTED_AT_MS = 1_790_516_400_000
EMPTY = "empty_books"
FROZEN = "frozen_state"


def _text(value: Decimal) -> str:
    return format(value, "f")


def _gz(message: dict[str, Any]) -> bytes:
    # mtime=0: identical frames compress to identical bytes.
    return gzip.compress(orjson.dumps(message), mtime=0)


class CoinexSim(VenueSim):
    name = "coinex"
    ws_paths = ("/v2/futures",)
    funding_history_path = FUNDING_HISTORY_PATH

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any:
        """Newest first within start_time..end_time, page ``page`` of ``limit`` (<= 100) rows."""
        inst = instrument(self, query.get("market"))
        size, page = min(int_param(query, "limit", 10), 100), max(1, int_param(query, "page", 1))
        every = settled(inst, int_param(query, "start_time", 0), int_param(query, "end_time", 2**62))[::-1]
        rows = [
            {
                "market": inst.native_symbol,
                "funding_time": t,
                "theoretical_funding_rate": _text(r),
                "actual_funding_rate": _text(r),
            }
            for t, r in every[(page - 1) * size : page * size]
        ]
        return {"code": 0, "data": rows, "pagination": {"has_next": page * size < len(every)}, "message": "OK"}

    empty_books: bool = False
    """Default for the empty-books mode (see the module docstring)."""

    # -- generated listings -------------------------------------------------
    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        if spec.multiplier != 1 or spec.group not in (*LINEAR_GROUPS, INVERSE):
            return None  # unprefixed names only (PEPEUSDT)
        linear = spec.group in LINEAR_GROUPS
        quote = spec.group if linear else "USD"
        instrument = make_instrument(
            cls.name, f"{spec.base}{quote}", spec.base, quote, quote if linear else spec.base,
            ContractKind.LINEAR if linear else ContractKind.INVERSE,
            tick_size=tick_for(spec.reference_price), funding_interval_h=spec.funding_interval_h,
        )  # fmt: skip
        if not linear or spec.volume_24h_quote is None:
            return instrument  # the inverse turnover's unit is not documented: no volume read
        instrument = msgspec.structs.replace(instrument, volume_24h_quote=spec.volume_24h_quote)
        return with_unit_open_interest(instrument, nominal_price(instrument.tick_size))

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        mine = [i for i in instruments if i.venue == self.name]
        tickers = [_ticker(i) for i in mine if i.volume_24h_quote is not None or i.kind is ContractKind.INVERSE]
        return {
            MARKET_PATH: {"code": 0, "data": [_market(i) for i in mine], "message": "OK"},
            FUNDING_PATH: {"code": 0, "data": [_funding_rate(i) for i in mine], "message": "OK"},
            TICKER_PATH: {"code": 0, "data": tickers, "message": "OK"},
        }

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return []  # nothing to answer: no id to echo
        if not isinstance(request, dict):
            return []
        method, request_id = request.get("method"), request.get("id")
        if method == "server.ping":
            return [_gz({"id": request_id, "code": 0, "data": {"result": "pong"}, "message": "OK"})]
        kind = _CHANNELS.get(method) if isinstance(method, str) else None
        if kind is None:
            return [_gz({"id": request_id, "code": 30002, "message": "unknown method"})]
        params = request.get("params")
        markets = params.get("market_list") if isinstance(params, dict) else None
        if not isinstance(markets, list):
            return [_gz({"id": request_id, "code": 30001, "message": "invalid argument"})]
        if kind == FUNDING and not markets:
            markets = list(self.by_native)
        for market in markets:
            if market in self.by_native:
                session.subscriptions.add((kind, market))
        return [_gz({"id": request_id, "code": 0, "message": "OK"})]

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        if self._empty(session):
            prices = {"best_bid_price": "0", "best_bid_size": "0", "best_ask_price": "0", "best_ask_size": "0"}
        else:
            prices = {
                "best_bid_price": _text(quote.bid),
                "best_bid_size": _text(to_venue_qty(inst, quote.bid_size, quote.bid)),
                "best_ask_price": _text(quote.ask),
                "best_ask_size": _text(to_venue_qty(inst, quote.ask_size, quote.ask)),
            }
        data = {"market": inst.native_symbol, "updated_at": quote.ts_ms, **prices}
        return [_gz({"method": "bbo.update", "data": data, "id": None})]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        if self._empty(session):
            frozen: dict[str, dict[str, Any]] = session.state.setdefault(FROZEN, {})
            state = frozen.setdefault(inst.native_symbol, self._state(inst, funding, FROZEN_SETTLEMENT_MS))
        else:
            state = self._state(inst, funding, funding.next_funding_ms)
        return [_gz({"method": "state.update", "data": {"state_list": [state]}, "id": None})]

    def malformed_frame(self) -> Frame:
        return gzip.compress(b'{"truncated": ', mtime=0)

    def _empty(self, session: SimSession) -> bool:
        return bool(session.state.get(EMPTY, self.empty_books))

    @staticmethod
    def _state(inst: Instrument, funding: SimFunding, settles_ms: int) -> dict[str, Any]:
        mark, index = _text(funding.mark), _text(funding.index)
        return {
            "market": inst.native_symbol,
            "last": mark,
            "open": mark,
            "close": mark,
            "high": mark,
            "low": mark,
            "volume": "0",
            "value": "0",
            "volume_sell": "0",
            "volume_buy": "0",
            "insurance_fund_size": "0",
            "mark_price": mark,
            "index_price": index,
            "open_interest_size": "0",
            "latest_funding_rate": _text(funding.rate),
            "next_funding_rate": _text(funding.rate),
            "latest_funding_time": settles_ms,
            "next_funding_time": settles_ms + (inst.funding_interval_h or 8) * 3_600_000,
            "period": 86400,
        }


def _market(inst: Instrument) -> dict[str, Any]:
    """One ``/v2/futures/market`` row (strings, as the venue sends them)."""
    tick = inst.tick_size or Decimal("0.01")
    linear = inst.kind is ContractKind.LINEAR
    precision = max(0, -(tick.adjusted() + 4)) if linear else 8
    return {
        "market": inst.native_symbol,
        "contract_type": "linear" if linear else "inverse",
        "maker_fee_rate": "0.0003" if linear else "0",
        "taker_fee_rate": "0.0005" if linear else "0",
        "min_amount": plain(Decimal(1).scaleb(-precision)) if linear else "10",
        "base_ccy": inst.base,
        "quote_ccy": inst.quote,
        "base_ccy_precision": precision,
        "quote_ccy_precision": max(0, -tick.adjusted()),
        "status": "online",
        "delisted_at": 0,
        "tick_size": plain(tick),
        "leverage": ["1", "2", "3", "5", "8", "10", "15", "20"],
        "open_interest_volume": "0",
        "is_market_available": True,
        "is_copy_trading_available": True,
        "is_api_trading_available": True,
    }


def _funding_rate(inst: Instrument) -> dict[str, Any]:
    """One ``/v2/futures/funding-rate`` row: the next two settlements are one interval apart."""
    settles = next_funding_ms(inst.funding_interval_h, LISTED_AT_MS)
    return {
        "market": inst.native_symbol,
        "mark_price": plain(nominal_price(inst.tick_size)),
        "latest_funding_rate": "0.0001",
        "next_funding_rate": "0.00012",
        "max_funding_rate": "0.00375",
        "min_funding_rate": "-0.00375",
        "latest_funding_time": settles,
        "next_funding_time": settles + (inst.funding_interval_h or 8) * 3_600_000,
    }


def _ticker(inst: Instrument) -> dict[str, Any]:
    """One ``/v2/futures/ticker`` row; ``value`` is the 24 h turnover in the quote currency."""
    price = plain(nominal_price(inst.tick_size))
    value = inst.volume_24h_quote if inst.volume_24h_quote is not None else Decimal("12.5")
    return {
        "market": inst.native_symbol,
        "last": price,
        "open": price,
        "close": price,
        "high": price,
        "low": price,
        "volume": plain((value / Decimal(price)).quantize(Decimal("0.0001"))),
        "value": plain(value),
        "volume_sell": "0",
        "volume_buy": "0",
        "index_price": price,
        "mark_price": price,
        # Base units (linear); an inverse row's figure is not read (its unit is not documented).
        "open_interest_volume": plain(open_units(inst, Decimal(price))),
        "period": 86400,
    }


SIM = CoinexSim
