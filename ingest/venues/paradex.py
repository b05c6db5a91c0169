"""Paradex perpetuals (perp DEX on Starknet): JSON-RPC control plane, SBE binary market data.

Docs: https://docs.paradex.trade/ws/general-information/binary-encoding-sbe ,
schema ``paradex_1_0.xml`` (https://github.com/tradeparadex/paradex-py/blob/main/paradex_py/api/sbe/paradex_1_0.xml).
Since 2026-09-21 public channel payloads are SBE binary frames; we negotiate
**schema id 1, version 1** with ``?sbeSchemaId=1&sbeSchemaVersion=1``. Requests,
acks and errors stay JSON-RPC 2.0 text frames.

SBE frames: an 8-byte little-endian header (blockLength, templateId, schemaId,
version), the fixed root block, then the ``market`` symbol as a varString8
(uint8 length + UTF-8) at ``8 + blockLength``; the block length is read from
the header, never assumed, so a frame from an older or newer schema version
still finds its symbol. Prices, sizes and rates are int64 mantissas with a
constant exponent (-8; the version-1 ``fundingRatePrecise`` is -12), INT64_MIN
meaning null; timestamps are int64 microseconds.

Top of book comes from ``bbo.{market}`` (template 2 BboEvent); mark, index and
funding from ``markets_summary.{market}`` (template 4 MarketSummaryEvent). Sizes
are base-coin units (``kPEPE`` sizes count 1000-PEPE units). Funding accrues
continuously; the rate is per ``funding_period_hours`` and there is no
next-funding time. The BBO ``seq`` is the order book's sequence number, which
also advances on changes below the top, so gaps are normal and not checked.
Heartbeats: protocol pings every 55 s, answered by the WebSocket library;
template 40 HeartbeatEvent frames on idle connections carry nothing for us.

At whole-market scale: ``markets_summary`` without a market is the documented
all-markets form of the channel (``markets_summary[.{market_symbol}]``,
https://docs.paradex.trade/ws/web-socket-channels/markets-summary-market-symbol),
so funding costs one subscription per socket plan instead of one per market;
books stay one ``bbo.{market}`` each. The only documented WebSocket limit is on
opening connections, "20 connections per second or 600 per minute" per IP
(https://docs.paradex.trade/ws/general-information/rate-limits); no cap on
subscriptions per connection is documented, so 200 ride on each socket.

Markets are ``quote_currency`` USD, ``settlement_currency`` USDC; the canonical
quote is the settlement currency (``BTC-USDC-PERP@paradex``), so Paradex compares
with the other USDC-margined linear perpetuals (decision 0013).

Listing: ``GET /v1/markets`` (static data, ``funding_period_hours`` per market)
and ``GET /v1/markets/summary?market=ALL`` ("for all available markets use
ALL", https://docs.paradex.trade/api/prod/markets/get-markets-summary), whose
``volume_24h`` (USD) becomes ``volume_24h_quote``; a listing file without the
summary (older caches, the bundled snapshot) parses without volumes. The summary's
``open_interest`` is in the market's base unit (the listed coin, ``kPEPE`` units; the docs'
"Open interest in base currency"), so ``open_interest_quote`` = open_interest x ``mark_price``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

import msgspec
import orjson

from ingest.venues.base import (
    Connection,
    FrameError,
    Parsed,
    Venue,
    canonical_base,
    dec,
    load_json,
    make_funding,
    make_instrument,
    make_quote,
)
from schemas.market import ContractKind, Instrument

BBO = "bbo"
SUMMARY = "markets_summary"
"""Without a market suffix: every market's summary on one subscription."""
MARKETS_PATH = "/v1/markets"
SUMMARY_PATH = "/v1/markets/summary?market=ALL"
SCHEMA_ID = 1
SCHEMA_VERSION = 1
SBE_QUERY = f"?sbeSchemaId={SCHEMA_ID}&sbeSchemaVersion={SCHEMA_VERSION}"

NULL = -(2**63)  # INT64_MIN: the schema's null value for every mantissa
PRICE_EXP = -8  # Price8 / Qty8 / Rate8
PRECISE_EXP = -12  # Rate12NULL
HEADER = struct.Struct("<HHHH")
BBO_TEMPLATE = 2
BBO_BLOCK = struct.Struct("<6q")  # ts, seq, bidPrice, bidSize, askPrice, askSize
SUMMARY_TEMPLATE = 4
# Version-0 root block: 27 int64 fields (ts, seq, markPrice, indexPrice, lastPrice,
# volumeUsd24h, openInterest, fundingRate, bid, ask, ... bidSize, askSize).
SUMMARY_BLOCK = struct.Struct("<27q")
SUMMARY_MARK, SUMMARY_INDEX, SUMMARY_LAST, SUMMARY_RATE = 2, 3, 4, 7
# Version 1 appends forwardRate, riskFreeRate, fundingRatePrecise (offset 232, block 240).
PRECISE_OFFSET = 232
PRECISE = struct.Struct("<q")


def fixed(mantissa: int, exponent: int = PRICE_EXP) -> Decimal | None:
    """Exact decimal of an SBE fixed-point mantissa; None for the null value."""
    return None if mantissa == NULL else Decimal(mantissa).scaleb(exponent)


def us_to_ns(value: int) -> int | None:
    return value * 1000 if value > 0 else None


class Paradex(Venue):
    name = "paradex"
    ws_base = "wss://ws.api.prod.paradex.trade"
    rest_base = "https://api.prod.paradex.trade"
    instrument_paths = (MARKETS_PATH, SUMMARY_PATH)
    optional_instrument_paths = frozenset({SUMMARY_PATH})  # volumes only
    # One channel per JSON-RPC subscribe; no per-message or per-connection limit is documented
    # (only 20 new connections/s per IP), so a short pause is enough.
    max_topics_per_connection = 200
    topics_per_subscribe = 1
    subscribe_interval_s = 0.05
    ping_interval_s: ClassVar[float | None] = None
    stale_after_s = 30.0

    def topics(self, instrument: Instrument) -> list[str]:
        return [f"{BBO}.{instrument.native_symbol}"]

    def connections(self, ws_base: str) -> list[Connection]:
        """Books split by the cap; the all-markets summary is subscribed once, on the first socket."""
        plans = super().connections(ws_base)
        if not plans:
            return plans
        first = plans[0]
        return [Connection(first.label, first.url, (SUMMARY, *first.topics)), *plans[1:]]

    def ws_url(self, ws_base: str, kind: str) -> str:
        # Without the SBE parameters public channels are no longer served.
        return f"{ws_base}/v1{SBE_QUERY}"

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        frames = []
        for channel in topics:
            request_id = self.next_request_id()
            body = {"jsonrpc": "2.0", "method": "subscribe", "params": {"channel": channel}, "id": request_id}
            frames.append(orjson.dumps(body).decode())
        return frames

    # -- parsing ----------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        # Binary frames are channel data; text frames are the JSON-RPC control plane.
        if isinstance(frame, bytes):
            return self._parse_sbe(frame, receipt_ts_ns)
        return self._parse_rpc(load_json(frame))

    @staticmethod
    def _parse_rpc(message: Any) -> Parsed:
        if not isinstance(message, dict):
            raise FrameError("expected a JSON-RPC object")
        if "error" in message:
            error = message["error"]
            if not isinstance(error, dict):
                raise FrameError("error is not an object")
            text = f"code {error.get('code')}: {error.get('message')}"
            data = error.get("data")
            return Parsed(error=f"{text} ({data})" if data else text)
        if isinstance(message.get("result"), dict) and "channel" in message["result"]:
            return Parsed(subscribed=True)
        return Parsed()  # JSON channel data or another notice: nothing we subscribed to

    def _parse_sbe(self, frame: bytes, receipt_ts_ns: int) -> Parsed:
        if len(frame) < HEADER.size:
            raise FrameError(f"SBE frame of {len(frame)} bytes has no header")
        block_length, template, schema, _version = HEADER.unpack_from(frame)
        if schema != SCHEMA_ID:
            raise FrameError(f"SBE schema id {schema}, expected {SCHEMA_ID}")
        if template == BBO_TEMPLATE:
            return self._bbo(frame, block_length, receipt_ts_ns)
        if template == SUMMARY_TEMPLATE:
            return self._summary(frame, block_length, receipt_ts_ns)
        return Parsed()  # heartbeats, trades, books...: the schema says skip unknown templates

    def _instrument(self, frame: bytes, block_length: int, layout: struct.Struct) -> Instrument | None:
        """The frame's instrument (None: not tracked), after checking the block holds ``layout``."""
        if block_length < layout.size:
            raise FrameError(f"SBE root block of {block_length} bytes, expected at least {layout.size}")
        start = HEADER.size + block_length
        if start >= len(frame) or start + 1 + frame[start] > len(frame):
            raise FrameError("SBE frame truncated before the end of its market symbol")
        try:
            market = frame[start + 1 : start + 1 + frame[start]].decode()
        except UnicodeDecodeError as exc:
            raise FrameError(f"market symbol is not UTF-8: {exc}") from exc
        return self.instrument(market)

    def _bbo(self, frame: bytes, block_length: int, receipt_ts_ns: int) -> Parsed:
        instrument = self._instrument(frame, block_length, BBO_BLOCK)
        if instrument is None:
            return Parsed()
        ts, seq, bid, bid_size, ask, ask_size = BBO_BLOCK.unpack_from(frame, HEADER.size)
        quote = make_quote(
            instrument,
            bid=fixed(bid),
            bid_qty=fixed(bid_size),
            ask=fixed(ask),
            ask_qty=fixed(ask_size),
            exchange_ts_ns=us_to_ns(ts),
            receipt_ts_ns=receipt_ts_ns,
            sequence=seq,
        )
        return Parsed(events=[quote])

    def _summary(self, frame: bytes, block_length: int, receipt_ts_ns: int) -> Parsed:
        instrument = self._instrument(frame, block_length, SUMMARY_BLOCK)
        if instrument is None:
            return Parsed()
        fields = SUMMARY_BLOCK.unpack_from(frame, HEADER.size)
        rate = fixed(fields[SUMMARY_RATE])  # Rate8: truncated to 8 decimals
        if block_length >= PRECISE_OFFSET + PRECISE.size:
            # Version 1: the full-precision rate, preferred unless null.
            precise = fixed(PRECISE.unpack_from(frame, HEADER.size + PRECISE_OFFSET)[0], PRECISE_EXP)
            rate = rate if precise is None else precise
        funding = make_funding(
            instrument,
            rate=rate,
            mark=fixed(fields[SUMMARY_MARK]),
            index=fixed(fields[SUMMARY_INDEX]),
            exchange_ts_ns=us_to_ns(fields[0]),
            receipt_ts_ns=receipt_ts_ns,
        )
        return Parsed(events=[funding])

    # -- instruments ------------------------------------------------------
    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        try:
            volumes = _volumes(listing.get(SUMMARY_PATH))
            depths = _open_interest(listing.get(SUMMARY_PATH))
            instruments = [
                cls._listed(row, volumes.get(row["symbol"]), depths.get(row["symbol"]))
                for row in listing[MARKETS_PATH]["results"]
                if row.get("asset_kind") == "PERP"  # not perpetual options (PERP_OPTION) nor anything else
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FrameError(f"unexpected /v1/markets listing: {exc!r}") from exc
        return instruments

    @classmethod
    def _listed(cls, row: dict[str, Any], volume: Decimal | None, open_interest: Decimal | None) -> Instrument:
        # kPEPE sizes count 1000-PEPE units: one size unit is 1000 base units.
        _, multiplier = canonical_base(row["base_currency"])
        instrument = make_instrument(
            cls.name,
            row["symbol"],
            row["base_currency"],
            # Prices are in USD and settle 1:1 in USDC, like every USDC-margined linear perpetual
            # (Hyperliquid's, Bybit's, Deribit's): grouped as USDC so they compare with those.
            row["settlement_currency"],
            row["settlement_currency"],
            ContractKind.LINEAR,
            contract_size=multiplier,
            tick_size=dec(row.get("price_tick_size")),
            funding_interval_h=int(row.get("funding_period_hours") or 8),
        )
        if open_interest is not None:
            instrument = msgspec.structs.replace(instrument, open_interest_quote=open_interest)
        return instrument if volume is None else msgspec.structs.replace(instrument, volume_24h_quote=volume)


def _volumes(summary: Any) -> dict[str, Decimal]:
    """24 h USD volume per market from ``/v1/markets/summary?market=ALL`` (absent: none)."""
    if summary is None:
        return {}
    volumes = {}
    for row in summary["results"]:
        volume = dec(row.get("volume_24h"))
        if volume is not None:
            volumes[row["symbol"]] = volume
    return volumes


def _open_interest(summary: Any) -> dict[str, Decimal]:
    """Open interest in USD per market: ``open_interest`` (base units) x ``mark_price`` (absent: none)."""
    if summary is None:
        return {}
    depths = {}
    for row in summary["results"]:
        held, mark = dec(row.get("open_interest")), dec(row.get("mark_price"))
        if held is not None and mark is not None:
            depths[row["symbol"]] = held * mark
    return depths


# -- funding history ---------------------------------------------------------------------------
# Not backfilled (decision 0023): GET /v1/funding/data (https://docs.paradex.trade/api/prod/
# markets/get-funding-data) lists funding-index snapshots every few seconds, not settlements
# (funding accrues continuously): 30 days is hundreds of thousands of rows per market.
FUNDING_HISTORY = None


VENUE = Paradex
