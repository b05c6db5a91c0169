"""BitMEX perpetual swaps (inverse XBTUSD, linear USDT-margined).

Docs: https://www.bitmex.com/app/wsAPI . One socket, ``/realtime``; topics are
``<table>:<symbol>``. Tables use "table diffing": a ``partial`` image first,
then ``insert``/``update``/``delete`` rows. ``quote`` rows are complete, so
every row is a Quote; ``instrument`` updates carry only the changed fields and
are merged per symbol here. Neither table has sequence numbers, so there is no
gap detection. Sizes are contracts (contract sizes: support article
16797952159261). Prices are JSON numbers; load_json keeps them exact.

Quanto contracts (ETHUSD, margined in XBT) are left out: one contract is worth
``multiplier`` satoshi per quote unit, so its size in ETH depends on the BTC
price and cannot be expressed as a fixed ``contract_size``.

At whole-market scale (every perpetual, ~2 topics each):

- Topics per connection: none documented; "This access is not rate-limited once
  connected" (https://www.bitmex.com/app/wsAPI, "Subscriptions"). What *is* limited is
  opening sockets: a token bucket of 20 connections per hour at first
  (https://blog.bitmex.com/site_announcement/rate-limiting-websocket-connections/),
  later raised to 60 per hour (https://blog.bitmex.com/api_announcement/updates-to-rate-limits/).
  So a few large connections (500 topics, i.e. 250 symbols, each) rather than many small
  ones: a reconnect storm over many sockets would exhaust the hourly budget.
- Args per subscribe: the docs allow an array of topics without a stated limit; 10 per
  frame as tardis-node does (``realtimefeeds/bitmex.ts``), 0.1 s apart: 250 symbols
  subscribe in about 5 s.
- Funding interval: per instrument, ``fundingInterval`` in the listing *and* on every
  ``instrument`` update, which is what Funding events use, so a live change applies at once.
- 24 h volume: the listing's ``foreignNotional24h`` (quote currency: USD for XBTUSD,
  USDT for the linear contracts) becomes ``Instrument.volume_24h_quote``.
- Open interest: the same rows' ``openInterest`` counts contracts (https://www.bitmex.com/api/
  explorer/#!/Instrument/Instrument_getActive; ``openValue`` is in the settlement currency's
  smallest unit, satoshis for XBTUSD, so not used): ``open_interest_quote`` = openInterest x the
  contract's quote units (XBTUSD: 1 USD) or x its underlying units x ``markPrice`` (linear).
- Sequences: neither table carries one; nothing to resync.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import msgspec
import orjson

from ingest.venues.base import (
    FrameError,
    Parsed,
    Venue,
    canonical_base,
    dec,
    iso_to_ns,
    load_json,
    make_funding,
    make_instrument,
    make_quote,
    open_interest_notional,
)
from ingest.venues.history import HistoryRequest, HistorySpec, Paging, settlement
from schemas.funding import FundingSettlement
from schemas.market import ContractKind, Instrument

QUOTE = "quote"
INSTRUMENT = "instrument"
_QUANTO = re.compile(r"[A-Z0-9]+USD")
PERPETUAL = "FFWCSX"  # BitMEX's CFI-style type code for perpetual swaps
# Fields of an instrument update that change what a Funding event says; other
# updates (lastPrice, openValue, volume...) produce nothing.
FUNDING_FIELDS = frozenset(
    {
        "fundingRate",
        "indicativeFundingRate",
        "fundingTimestamp",
        "fundingInterval",
        "markPrice",
        "indicativeSettlePrice",
    }
)
# fundingInterval is sent as a timestamp offset from this epoch ("2000-01-01T08:00:00.000Z" = 8 h).
_INTERVAL_EPOCH_NS = iso_to_ns("2000-01-01T00:00:00.000Z")
_HOUR_NS = 3_600_000_000_000
# Settlement currencies are named by their smallest unit (XBt = satoshi, USDt = micro-USDT).
_SETTLE_UNITS = {"XBt": "XBT", "USDt": "USDT", "Gwei": "ETH"}


def _ts(value: Any) -> int:
    if not isinstance(value, str):
        raise FrameError(f"timestamp is not a string: {value!r}")
    return iso_to_ns(value)


def interval_hours(value: Any) -> int | None:
    """Hours in a BitMEX ``fundingInterval`` ("2000-01-01T08:00:00.000Z" -> 8)."""
    if value is None:
        return None
    hours = (_ts(value) - _INTERVAL_EPOCH_NS) // _HOUR_NS
    return hours if hours > 0 else None


class Bitmex(Venue):
    name = "bitmex"
    ws_base = "wss://ws.bitmex.com"
    rest_base = "https://www.bitmex.com"
    instrument_paths = ("/api/v1/instrument/active",)
    max_topics_per_connection = 500
    topics_per_subscribe = 10
    subscribe_interval_s = 0.1
    # Docs: if no message for 5 s, send "ping" and expect "pong" within 5 s.
    ping_interval_s: ClassVar[float | None] = 5.0
    stale_after_s = 30.0
    subscribe_after_first_frame = True  # the welcome frame comes first

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        self._rows: dict[str, dict[str, Any]] = {}
        """Merged instrument rows by symbol (partial image + later updates)."""

    def topics(self, instrument: Instrument) -> list[str]:
        return [f"{QUOTE}:{instrument.native_symbol}", f"{INSTRUMENT}:{instrument.native_symbol}"]

    def ws_url(self, ws_base: str, kind: str) -> str:
        return f"{ws_base}/realtime"

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        step = self.topics_per_subscribe
        return [
            orjson.dumps({"op": "subscribe", "args": list(topics[i : i + step])}).decode()
            for i in range(0, len(topics), step)
        ]

    def ping_message(self) -> str | None:
        return "ping"

    def reset(self) -> None:
        self._rows.clear()

    # -- parsing ----------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        if frame in ("pong", b"pong"):
            return Parsed()
        message = load_json(frame)
        if not isinstance(message, dict):
            raise FrameError("expected a JSON object")
        if "table" in message:
            return self._parse_table(message, receipt_ts_ns)
        if "subscribe" in message:
            if message.get("success") is True:
                return Parsed(subscribed=True)
            return Parsed(error=f"subscribe {message['subscribe']} failed: {message.get('error')}")
        if "error" in message:
            return Parsed(error=f"status {message.get('status')}: {message['error']}")
        return Parsed()  # welcome ("info"), unsubscribe acks and other control frames

    def _parse_table(self, message: dict[str, Any], receipt_ts_ns: int) -> Parsed:
        table, action, rows = message["table"], message.get("action"), message.get("data")
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise FrameError(f"{table} {action}: data is not a list of rows")
        parsed = Parsed()
        try:
            if table == QUOTE and action in ("partial", "insert"):
                for row in rows:
                    self._quote(row, receipt_ts_ns, parsed)
            elif table == INSTRUMENT:
                for row in rows:
                    self._instrument(action, row, receipt_ts_ns, parsed)
        except KeyError as exc:
            raise FrameError(f"{table} {action} row without field {exc}") from exc
        except TypeError as exc:  # e.g. an unhashable symbol
            raise FrameError(f"{table} {action}: {exc}") from exc
        return parsed

    def _quote(self, row: dict[str, Any], receipt_ts_ns: int, out: Parsed) -> None:
        instrument = self.instrument(row["symbol"])
        if instrument is None:
            return
        # Since 2023 an empty book side is omitted rather than sent as null.
        out.events.append(
            make_quote(
                instrument,
                bid=dec(row.get("bidPrice")),
                bid_qty=dec(row.get("bidSize")),
                ask=dec(row.get("askPrice")),
                ask_qty=dec(row.get("askSize")),
                exchange_ts_ns=_ts(row["timestamp"]),
                receipt_ts_ns=receipt_ts_ns,
            )
        )

    def _instrument(self, action: Any, row: dict[str, Any], receipt_ts_ns: int, out: Parsed) -> None:
        symbol = row["symbol"]
        instrument = self.instrument(symbol)
        if instrument is None:
            return
        if action == "delete":
            self._rows.pop(symbol, None)
            return
        if action in ("partial", "insert"):
            self._rows[symbol] = dict(row)
        elif action == "update":
            self._rows.setdefault(symbol, {}).update(row)
            if FUNDING_FIELDS.isdisjoint(row):
                return
        else:
            return
        merged = self._rows[symbol]
        next_funding = merged.get("fundingTimestamp")
        timestamp = row.get("timestamp")
        out.events.append(
            make_funding(
                instrument,
                rate=dec(merged.get("fundingRate")),
                predicted_rate=dec(merged.get("indicativeFundingRate")),
                next_funding_ts_ns=None if next_funding is None else _ts(next_funding),
                mark=dec(merged.get("markPrice")),
                index=dec(merged.get("indicativeSettlePrice")),
                interval_h=interval_hours(merged.get("fundingInterval")),
                exchange_ts_ns=None if timestamp is None else _ts(timestamp),
                receipt_ts_ns=receipt_ts_ns,
            )
        )

    # -- instruments ------------------------------------------------------
    @classmethod
    def untracked_reason(cls, native_symbol: str) -> str | None:
        # ETHUSD, XRPUSD, ...: quanto swaps settled in XBT (isQuanto in the listing, skipped there too).
        if _QUANTO.fullmatch(native_symbol) and native_symbol != "XBTUSD":
            return "BitMEX quanto swap (settled in XBT; arbstream tracks linear and inverse contracts)"
        return None

    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        instruments = []
        for row in listing[cls.instrument_paths[0]]:
            if row.get("typ") != PERPETUAL or row.get("state") != "Open" or row.get("isQuanto"):
                continue
            try:
                instruments.append(cls._instrument_from_row(row))
            except (KeyError, TypeError, ZeroDivisionError, InvalidOperation) as exc:
                raise FrameError(f"instrument {row.get('symbol')!r}: {exc!r}") from exc
        return instruments

    @classmethod
    def _instrument_from_row(cls, row: dict[str, Any]) -> Instrument:
        settle = _SETTLE_UNITS.get(row["settlCurrency"], row["settlCurrency"])
        if row.get("isInverse"):
            # Quote units per contract: XBTUSD -1e8 / -1e8 = 1 USD.
            kind = ContractKind.INVERSE
            size = Decimal(row["multiplier"]) / Decimal(row["underlyingToSettleMultiplier"])
        else:
            # Underlying units per contract (XBTUSDT 1/1e6 XBT); a prefixed
            # underlying (1000X) counts multiplier base units per unit.
            kind = ContractKind.LINEAR
            _, multiplier = canonical_base(row["underlying"])
            size = multiplier / Decimal(row["underlyingToPositionMultiplier"])
        instrument = make_instrument(
            cls.name,
            row["symbol"],
            row["underlying"],
            row["quoteCurrency"],
            settle,
            kind,
            contract_size=size,
            tick_size=dec(row.get("tickSize")),
            funding_interval_h=interval_hours(row.get("fundingInterval")) or 8,
        )
        open_interest = open_interest_notional(instrument, dec(row.get("openInterest")), dec(row.get("markPrice")))
        return msgspec.structs.replace(
            instrument, volume_24h_quote=dec(row.get("foreignNotional24h")), open_interest_quote=open_interest
        )


# -- funding history ---------------------------------------------------------------------------
# GET /api/v1/funding (https://www.bitmex.com/api/explorer/#!/Funding/Funding_get): symbol,
# startTime/endTime (ISO 8601), count <= 500, reverse=false (oldest first); rows ``{timestamp
# (ISO), symbol, fundingInterval ("2000-01-01T08:00:00.000Z"), fundingRate (number),
# fundingRateDaily}``. Unauthenticated REST is limited to 30 requests a minute
# (https://www.bitmex.com/app/restAPI#Limits): one every 2.5 s.
FUNDING_HISTORY_PATH = "/api/v1/funding"
FUNDING_HISTORY = HistorySpec(page_size=500, paging=Paging.FORWARD, min_interval_s=2.5)


def funding_history_request(instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
    window = {"startTime": _iso(start_ms), "endTime": _iso(end_ms)}
    return HistoryRequest(
        FUNDING_HISTORY_PATH, {"symbol": instrument.native_symbol, **window, "count": "500", "reverse": "false"}
    )


def parse_funding_history(payload: Any, instrument: Instrument) -> list[FundingSettlement]:
    if not isinstance(payload, list):
        raise FrameError(f"{FUNDING_HISTORY_PATH}: expected a list ({str(payload)[:200]})")
    try:
        return [
            settlement(
                instrument, dec(r["fundingRate"]), iso_to_ns(r["timestamp"]), interval_hours(r.get("fundingInterval"))
            )
            for r in payload
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: bad row ({exc!r})") from exc


def _iso(ms: int) -> str:
    """Milliseconds to BitMEX's ISO form (``2026-09-28T00:00:00.000Z``), exactly."""
    return f"{datetime.fromtimestamp(ms // 1000, tz=UTC):%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


VENUE = Bitmex
