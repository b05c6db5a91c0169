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
"""

from __future__ import annotations

import struct
import time
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, SimSession, VenueSim, to_venue_qty
from ingest.simulator.market import SimFunding, SimQuote
from schemas.market import Instrument

_NULL = -(2**63)
_HEADER = struct.Struct("<HHHH")  # blockLength, templateId, schemaId, version
_SCHEMA_ID = 1
_CHANNELS = "channels"


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


SIM = ParadexSim
