"""Gate USDT futures simulator: futures.book_ticker and futures.tickers on /v4/ws/usdt.

Sizes go out as decimal strings, as the real venue sends them to a client that
set ``X-Gate-Size-Decimal: 1`` (the venue module always does).

Generated listings: ``/api/v4/futures/usdt/contracts`` and ``/api/v4/futures/usdt/tickers``
for USDT perpetuals only (``PEPE_USDT``, or ``1000RATS_USDT`` when the market prefixes):
inverse contracts live on Gate's BTC-settled socket, which ingest does not dial, and Gate
has no USDC perpetuals.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import msgspec
import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, ListingSpec, SimSession, VenueSim, to_venue_qty
from ingest.simulator.funding_history import Settled, instrument, int_param
from ingest.simulator.listing_helpers import (
    funding_limits,
    next_funding_ms,
    nominal_price,
    open_contracts,
    plain,
    prefixed,
    tick_for,
    with_funding_limits,
    with_open_interest,
)
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import canonical_base, make_instrument
from ingest.venues.gate import FUNDING_HISTORY_PATH, TICKERS_PATH, Gate
from schemas.market import ContractKind, Instrument

_KINDS = {"futures.book_ticker": BOOK, "futures.tickers": FUNDING}
_CONN_ID = "5e74253e9c793974"


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _envelope(channel: str, event: str, ts_ms: int, **rest: Any) -> str:
    body = {"time": ts_ms // 1000, "time_ms": ts_ms, "conn_id": _CONN_ID, "channel": channel, "event": event}
    return orjson.dumps(body | rest).decode()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


FUNDING_CAP = Decimal("0.003")
"""Funding-rate bound per interval the generated listing publishes (both signs)."""


class GateSim(VenueSim):
    name = "gate"
    ws_paths = ("/v4/ws/usdt",)
    funding_history_path = FUNDING_HISTORY_PATH

    def funding_history(self, query: dict[str, str], body: Any, settled: Settled) -> Any:
        """Newest first, at most ``limit`` (<= 1000) within ``from``..``to`` (Unix seconds)."""
        inst = instrument(self, query.get("contract"))
        limit = min(int_param(query, "limit", 100), 1000)
        start, end = int_param(query, "from", 0) * 1000, int_param(query, "to", 2**52) * 1000
        return [{"t": t // 1000, "r": _text(rate)} for t, rate in settled(inst, start, end)[::-1][:limit]]

    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        inst = cls._listed(spec)
        return inst if inst is None else with_funding_limits(inst, FUNDING_CAP)

    @classmethod
    def _listed(cls, spec: ListingSpec) -> Instrument | None:
        asset = prefixed(spec.base, spec.multiplier)
        if spec.group != "USDT" or asset is None:
            return None
        price = spec.reference_price * spec.multiplier
        # quanto_multiplier: coins of the named asset per contract, a contract worth $1-10
        # (BTC_USDT 0.0001, SOL_USDT 1, PEPE_USDT 10,000,000 on the live listing).
        quanto = Decimal(1).scaleb(-price.adjusted())
        inst = make_instrument(
            cls.name, f"{asset}_USDT", asset, "USDT", "USDT", ContractKind.LINEAR, quanto * spec.multiplier,
            tick_for(price), spec.funding_interval_h,
        )  # fmt: skip
        inst = msgspec.structs.replace(inst, volume_24h_quote=spec.volume_24h_quote)
        return with_open_interest(inst, nominal_price(inst.tick_size))

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        mine = [i for i in instruments if i.venue == self.name]
        return {
            Gate.instrument_paths[0]: [_contract_row(i) for i in mine],
            TICKERS_PATH: [_ticker_row(i) for i in mine if i.volume_24h_quote is not None],
        }

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict):
            error = {"code": 1, "message": "invalid argument struct"}
            return [_envelope("", "", _now_ms(), error=error, result={"status": "fail"})]
        channel, event, ts_ms = request.get("channel", ""), request.get("event", ""), _now_ms()
        if channel == "futures.ping":
            return [_envelope("futures.pong", "", ts_ms, result=None)]
        kind = _KINDS.get(channel)
        payload = request.get("payload")
        if kind is None or event not in ("subscribe", "unsubscribe") or not isinstance(payload, list):
            return [self._fail(channel, event, ts_ms, payload, "invalid argument")]
        unknown = [c for c in payload if c not in self.by_native and str(c).endswith("_USDT")]
        if unknown:
            return [self._fail(channel, event, ts_ms, payload, f"unknown currency pair {unknown[0]}")]
        for contract in payload:
            # Like the real venue, a contract of another settle family (BTC_USD)
            # is acknowledged and then stays silent on this socket.
            if contract in self.by_native:
                if event == "subscribe":
                    session.subscriptions.add((kind, contract))
                else:
                    session.subscriptions.discard((kind, contract))
        return [_envelope(channel, event, ts_ms, payload=payload, result={"status": "success"})]

    @staticmethod
    def _fail(channel: str, event: str, ts_ms: int, payload: Any, message: str) -> str:
        error = {"code": 2, "message": message}
        return _envelope(channel, event, ts_ms, payload=payload, error=error, result={"status": "fail"})

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        result = {
            "t": quote.ts_ms - 1,
            "u": session.next_seq(inst.native_symbol),
            "s": inst.native_symbol,
            "b": _text(quote.bid),
            "B": _text(to_venue_qty(inst, quote.bid_size, quote.bid)),
            "a": _text(quote.ask),
            "A": _text(to_venue_qty(inst, quote.ask_size, quote.ask)),
        }
        return [_envelope("futures.book_ticker", "update", quote.ts_ms, result=result)]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        interval_s = (inst.funding_interval_h or 8) * 3600
        result = {
            "contract": inst.native_symbol,
            "last": _text(funding.mark),
            "change_percentage": "0",
            "funding_rate": _text(funding.rate),
            "funding_rate_indicative": _text(funding.rate),
            "mark_price": _text(funding.mark),
            "index_price": _text(funding.index),
            "total_size": "0",
            "volume_24h": "0",
            "volume_24h_base": "0",
            "volume_24h_quote": "0",
            "volume_24h_settle": "0",
            "low_24h": _text(funding.mark),
            "high_24h": _text(funding.mark),
            "funding_interval": interval_s,
            "funding_next_apply": funding.next_funding_ms // 1000,
        }
        return [_envelope("futures.tickers", "update", funding.ts_ms, result=[result])]


SIM = GateSim


def _contract_row(inst: Instrument) -> dict[str, Any]:
    """One row of ``GET /futures/usdt/contracts`` (strings for decimals, integers for times)."""
    _, prefix = canonical_base(inst.native_symbol.removesuffix("_USDT"))
    price = plain(nominal_price(inst.tick_size))
    interval_s = (inst.funding_interval_h or 8) * 3600
    return {
        "name": inst.native_symbol,
        "type": "direct",
        "quanto_multiplier": plain(inst.contract_size / prefix),
        "leverage_min": "1",
        "leverage_max": "50",
        "maintenance_rate": "0.01",
        "mark_type": "index",
        "mark_price": price,
        "index_price": price,
        "last_price": price,
        "maker_fee_rate": "-0.0001",
        "taker_fee_rate": "0.00075",
        "order_price_round": plain(inst.tick_size) if inst.tick_size is not None else "0",
        "mark_price_round": plain(inst.tick_size / 10) if inst.tick_size is not None else "0",
        "funding_rate": "0.0001",
        "funding_rate_indicative": "0.0001",
        "funding_interval": interval_s,
        "funding_next_apply": next_funding_ms(inst.funding_interval_h) // 1000,
        "funding_offset": 0,
        "interest_rate": "0.0003",
        "order_size_min": "1",
        "order_size_max": "1000000",
        "enable_decimal": True,
        "in_delisting": False,
        "orders_limit": 100,
        "create_time": 1709251200,
        "status": "trading",
        "funding_rate_limit": str(funding_limits(inst, FUNDING_CAP)[0]),
        "contract_type": "",
    }


def _ticker_row(inst: Instrument) -> dict[str, Any]:
    """One row of ``GET /futures/usdt/tickers`` (all strings)."""
    price = nominal_price(inst.tick_size)
    volume = inst.volume_24h_quote or Decimal(0)
    base_volume = (volume / price).quantize(Decimal(1))
    return {
        "contract": inst.native_symbol,
        "last": plain(price),
        "low_24h": plain(price),
        "high_24h": plain(price),
        "change_percentage": "0",
        "total_size": plain(open_contracts(inst, price)),
        "volume_24h": plain((base_volume / inst.contract_size).quantize(Decimal(1))),
        "volume_24h_base": plain(base_volume),
        "volume_24h_quote": plain(volume),
        "volume_24h_settle": plain(volume),
        "mark_price": plain(price),
        "funding_rate": "0.0001",
        "funding_rate_indicative": "0.0001",
        "index_price": plain(price),
        "quanto_base_rate": "",
    }
