"""Paradex simulator: JSON-RPC 2.0 control plane and SBE binary data on /v1 (schema 1, version 0 or 1).

Subscribes ``bbo.{market}`` (book) and ``markets_summary[.{market}]`` (funding),
one channel per request, acked with ``{"result": {"channel": ...}}``; an unknown
channel, a duplicate subscription or an unknown method gets a JSON-RPC error.
Data go out as binary SBE frames laid out per ``paradex_1_0.xml``: BboEvent
(template 2, 48-byte block) and MarketSummaryEvent (template 4, 240-byte block
at version 1, 216 at version 0 as negotiated by ``sbeSchemaVersion``).
Mantissas are int64 at exponent -8 (``fundingRatePrecise`` -12), rounded the
way the venue stores them (8 decimals); INT64_MIN is null. The BBO ``seq`` comes
from ``session.next_seq``, so injected gaps show up as skipped numbers (the real
feed's BBO seq is the book's and skips too). The venue's protocol pings are left
to aiohttp; idle-connection HeartbeatEvent frames are not simulated.
⚠ The error text for a duplicate subscription is assumed (the docs only say it is an error).

Generated listings: USDC-settled, USD-quoted ``<COIN>-USD-PERP`` markets (the
venue's only perpetual group), ``k``-prefixed for 1000x (``kPEPE-USD-PERP``),
the spec's funding period, served as ``GET /v1/markets`` plus the all-markets
``GET /v1/markets/summary?market=ALL`` (24 h USD volume).
"""

from __future__ import annotations

import struct
import time
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec
import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, ListingSpec, SimSession, VenueSim, to_venue_qty
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
from schemas.market import ContractKind, Instrument

_NULL = -(2**63)
_HEADER = struct.Struct("<HHHH")  # blockLength, templateId, schemaId, version
_SCHEMA_ID = 1
_CHANNELS = "channels"
MARKETS_PATH = "/v1/markets"
SUMMARY_PATH = "/v1/markets/summary?market=ALL"
OPENED_AT_MS = 1_718_323_200_000


def _mantissa(value: Decimal | None, exponent: int = -8, rounding: str = ROUND_HALF_EVEN) -> int:
    if value is None:
        return _NULL
    return int(value.scaleb(-exponent).to_integral_value(rounding))


def _frame(template: int, version: int, block: bytes, market: str) -> bytes:
    symbol = market.encode()
    return _HEADER.pack(len(block), template, _SCHEMA_ID, version) + block + bytes([len(symbol)]) + symbol


def _dumps(body: dict[str, Any]) -> str:
    return orjson.dumps(body).decode()


def _reply(request_id: Any, key: str, value: Any) -> str:
    us_in = time.time_ns() // 1000
    return _dumps({"jsonrpc": "2.0", key: value, "usIn": us_in, "usOut": us_in + 40, "usDiff": 40, "id": request_id})


class ParadexSim(VenueSim):
    name = "paradex"
    ws_paths = ("/v1",)

    # -- generated listings -------------------------------------------------
    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        if spec.group != "USDC" or spec.multiplier not in (1, 1000):
            return None  # USDC-settled linear only; 1000x is spelt kPEPE
        coin = prefixed(spec.base, spec.multiplier, prefix_k=True)
        if coin is None:
            return None
        instrument = make_instrument(
            cls.name, f"{coin}-USD-PERP", coin, "USDC", "USDC", ContractKind.LINEAR,
            contract_size=Decimal(spec.multiplier), tick_size=tick_for(spec.reference_price * spec.multiplier),
            funding_interval_h=spec.funding_interval_h,
        )  # fmt: skip
        if spec.volume_24h_quote is None:
            return instrument
        instrument = msgspec.structs.replace(instrument, volume_24h_quote=spec.volume_24h_quote)
        return with_unit_open_interest(instrument, nominal_price(instrument.tick_size))

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        mine = [i for i in instruments if i.venue == self.name]
        summaries = [_summary(i) for i in mine if i.volume_24h_quote is not None]
        return {MARKETS_PATH: {"results": [_market(i) for i in mine]}, SUMMARY_PATH: {"results": summaries}}

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            request = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return [_reply(None, "error", {"code": -32700, "message": "Parse error"})]
        if not isinstance(request, dict):
            return [_reply(None, "error", {"code": -32600, "message": "Invalid request"})]
        request_id, method = request.get("id"), request.get("method")
        params = request.get("params")
        channel = str(params.get("channel")) if isinstance(params, dict) else ""
        if method not in ("subscribe", "unsubscribe"):
            return [_reply(request_id, "error", {"code": -32601, "message": "method does not exist"})]
        targets = self._targets(channel)
        if not targets:
            error = {"code": -32600, "message": f"invalid {method} request", "data": "invalid channel"}
            return [_reply(request_id, "error", error)]
        channels: set[str] = session.state.setdefault(_CHANNELS, set())
        if (channel in channels) == (method == "subscribe"):
            data = "already subscribed" if method == "subscribe" else "not subscribed"
            return [_reply(request_id, "error", {"code": -32600, "message": f"invalid {method} request", "data": data})]
        if method == "subscribe":
            channels.add(channel)
            session.subscriptions |= targets
        else:
            channels.discard(channel)
            session.subscriptions -= targets
        return [_reply(request_id, "result", {"channel": channel})]

    def _targets(self, channel: str) -> set[tuple[str, str]]:
        """(kind, market) pairs a channel name covers; empty for an invalid channel."""
        if channel == "markets_summary":
            return {(FUNDING, market) for market in self.by_native}
        name, _, market = channel.partition(".")
        kind = {"bbo": BOOK, "markets_summary": FUNDING}.get(name)
        return {(kind, market)} if kind and market in self.by_native else set()

    @staticmethod
    def _version(session: SimSession) -> int:
        return 0 if session.query.get("sbeSchemaVersion") == "0" else 1

    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        block = struct.pack(
            "<6q",
            quote.ts_ms * 1000,
            session.next_seq(inst.native_symbol),
            _mantissa(quote.bid),
            _mantissa(to_venue_qty(inst, quote.bid_size, quote.bid)),
            _mantissa(quote.ask),
            _mantissa(to_venue_qty(inst, quote.ask_size, quote.ask)),
        )
        return [_frame(2, self._version(session), block, inst.native_symbol)]

    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        version = self._version(session)
        mark = _mantissa(funding.mark)
        block = struct.pack(
            "<27q",
            funding.ts_ms * 1000,
            session.next_seq(f"summary:{inst.native_symbol}"),
            mark,
            _mantissa(funding.index),
            mark,  # lastPrice
            _mantissa(Decimal("18250431.5")),  # volumeUsd24h
            _mantissa(Decimal("512.345")),  # openInterest
            _mantissa(funding.rate, rounding=ROUND_DOWN),  # Rate8 truncates
            *[_NULL] * 2,  # bid, ask: the BBO channel carries those
            _mantissa(Decimal("9876543210.5")),  # totalVolume
            _mantissa(Decimal("0.0123")),  # priceChangeRate24h
            *[_NULL] * 15,  # option-only fields, bidSize, askSize
        )
        if version >= 1:  # forwardRate, riskFreeRate, fundingRatePrecise
            block += struct.pack("<3q", _NULL, _NULL, _mantissa(funding.rate, -12, ROUND_DOWN))
        return [_frame(4, version, block, inst.native_symbol)]

    def malformed_frame(self) -> Frame:
        # A BboEvent header promising a 48-byte block, cut off after 12 bytes.
        return _HEADER.pack(48, 2, _SCHEMA_ID, 1) + bytes(12)


def _market(inst: Instrument) -> dict[str, Any]:
    """One ``/v1/markets`` row (strings as the venue sends them)."""
    tick = inst.tick_size or Decimal("0.01")
    lot = Decimal(1).scaleb(min(0, -(tick.adjusted() + 3)))
    return {
        "symbol": inst.native_symbol,
        "base_currency": inst.native_symbol.removesuffix("-USD-PERP"),
        "quote_currency": "USD",
        "settlement_currency": "USDC",
        "order_size_increment": plain(lot),
        "price_tick_size": plain(tick),
        "min_notional": "10",
        "open_at": OPENED_AT_MS,
        "expiry_at": 0,
        "asset_kind": "PERP",
        "market_kind": "cross",
        "position_limit": plain(lot.scaleb(7)),
        "price_bands_width": "0.05",
        "max_open_orders": 100,
        "max_funding_rate": "0.05",
        "max_funding_rate_change": "0.0005",
        "interest_rate": "0.0001",
        "clamp_rate": "0.0005",
        "funding_period_hours": inst.funding_interval_h,
        "delta1_cross_margin_params": {"imf_base": "0.1", "imf_factor": "0", "imf_shift": "0", "mmf_factor": "0.5"},
        "max_order_size": plain(lot.scaleb(6)),
        "max_tob_spread": "0.2",
        "tags": [],
    }


def _summary(inst: Instrument) -> dict[str, Any]:
    """One ``/v1/markets/summary`` row: the 24 h USD volume the listing reads, plausible prices."""
    price = plain(nominal_price(inst.tick_size))
    return {
        "symbol": inst.native_symbol,
        "oracle_price": price,
        "mark_price": price,
        "last_traded_price": price,
        "bid": price,
        "ask": price,
        "volume_24h": plain(inst.volume_24h_quote or Decimal(0)),
        "total_volume": plain((inst.volume_24h_quote or Decimal(0)) * 400),
        "created_at": OPENED_AT_MS,
        "underlying_price": price,
        "open_interest": plain(open_units(inst, nominal_price(inst.tick_size))),
        "funding_rate": "0.0000125",
        "price_change_rate_24h": "0.0123",
    }


SIM = ParadexSim
