"""Gate USDT-settled perpetual futures.

Docs: https://www.gate.com/docs/developers/futures/ws/en/ (book_ticker, tickers,
ping) and https://www.gate.com/docs/developers/apiv4/en/#list-all-futures-contracts.
One socket per settle currency: this module dials only ``/v4/ws/usdt``, where a
contract of another settle family would be acked and then stay silent.

Sizes are contracts of ``quanto_multiplier`` coins (BTC_USDT 0.0001 BTC). The
``X-Gate-Size-Decimal: 1`` handshake header makes size fields decimal strings
(Gate announcement 48788); without it they are integers truncated toward zero.
Both forms are accepted. The server pings at protocol level; the client may
also send ``futures.ping`` and gets ``futures.pong`` back.

At whole-market scale (~600 USDT contracts, 2 channels each):

- Limits: Gate documents none for market data. Its maintainers answered "no limit on
  subscriptions", "no limit for message sent", no connection cap but "100 connections at
  most from one host are recommended", and warned that a connection with many subscriptions
  "can be closed easily" when the client does not consume updates in time
  (https://github.com/gateio/gatews/issues/25). A third-party probe ran 150 streams on one
  socket ([AO] ``gate/websocket.md``). So 150 topics (75 contracts) per socket, ~8 sockets
  for the whole listing, and 50 contracts per subscribe request (one request per channel).
- Funding interval: Gate changes it per contract on the fly (8 h -> 4 h -> 1 h). The listing
  carries ``funding_interval`` (seconds) per contract and is refreshed hourly; the live
  ``futures.tickers`` push carries ``funding_interval`` too (seen on the wire, not in the WS
  docs), which Funding events use when present, so a change applies at the next push.
- 24 h volume: the contracts listing has none; ``GET /api/v4/futures/usdt/tickers`` ("Get
  all futures trading statistics", one GET for every contract,
  https://www.gate.com/docs/developers/apiv4/en/#get-all-futures-trading-statistics) has
  ``volume_24h_quote`` (USDT), fetched with the listing. Older cached/bundled files without
  it parse with ``volume_24h_quote`` None.
- Open interest: the same tickers rows carry ``total_size``, the open contracts ("Contract total
  size", https://www.gate.com/docs/developers/apiv4/en/#get-all-futures-trading-statistics;
  ccxt reads open interest in contracts from Gate's ``total_size`` too). ``open_interest_quote`` =
  total_size x quanto_multiplier (``contract_size``) x ``mark_price``; None without a row.
- Sequences: ``book_ticker`` ``u`` is an order-book update id, not contiguous: no gaps.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
    ms_to_ns,
    open_interest_notional,
)
from ingest.venues.history import HistoryRequest, HistorySpec, Paging, settlement
from schemas.funding import FundingSettlement
from schemas.market import ContractKind, Instrument

TICKERS_PATH = "/api/v4/futures/usdt/tickers"
BOOK = "futures.book_ticker"
TICKERS = "futures.tickers"
PING = "futures.ping"
PONG = "futures.pong"
# Gate publishes no per-connection subscription cap (see the module docstring).
TOPICS_PER_CONNECTION = 150
CONTRACTS_PER_SUBSCRIBE = 50
# Listing statuses that still quote a live book ("circuit_breaker" is a
# temporary mark-price guard on an otherwise trading contract).
LIVE_STATUSES = {"trading", "circuit_breaker"}
_CAUGHT = (KeyError, TypeError, ValueError, IndexError, ArithmeticError)


def _seconds_to_ns(value: Any) -> int | None:
    """Unix seconds (int, numeric string or Decimal such as 1.7132256e9) to ns; 0/absent is None."""
    seconds = dec(value)
    return int(seconds * 1_000_000_000) if seconds else None


def _interval_hours(value: Any) -> int | None:
    """Funding interval in seconds to whole hours; None when absent or not whole hours."""
    seconds = dec(value)
    if not seconds:
        return None
    hours, rest = divmod(int(seconds), 3600)
    return hours if hours and not rest else None


class Gate(Venue):
    name = "gate"
    ws_base = "wss://fx-ws.gateio.ws"
    rest_base = "https://api.gateio.ws"
    instrument_paths = ("/api/v4/futures/usdt/contracts", TICKERS_PATH)
    optional_instrument_paths = frozenset({TICKERS_PATH})  # volumes only
    max_topics_per_connection = TOPICS_PER_CONNECTION
    topics_per_subscribe = CONTRACTS_PER_SUBSCRIBE
    subscribe_interval_s = 0.2
    # A socket without client frames was seen closed after ~30 s; ping well inside that.
    ping_interval_s: ClassVar[float | None] = 15.0
    # Quiet contracts push tickers at most every ~30 s and books only on change; a socket of 75
    # tail contracts must not flap at 30 s (VENUE_AUDIT "stale watchdog").
    stale_after_s = 60.0
    ws_headers: ClassVar[dict[str, str]] = {"X-Gate-Size-Decimal": "1"}

    def topics(self, instrument: Instrument) -> list[str]:
        return [f"{BOOK}:{instrument.native_symbol}", f"{TICKERS}:{instrument.native_symbol}"]

    def ws_url(self, ws_base: str, kind: str) -> str:
        return f"{ws_base}/v4/ws/usdt"

    def connections(self, ws_base: str) -> list[Connection]:
        plans = super().connections(ws_base)
        return [Connection(f"gate-usdt-{n}", p.url, p.topics) for n, p in enumerate(plans)]

    def subscribe_messages(self, topics: Sequence[str], now_s: int | None = None) -> list[str]:
        """One request per channel and batch of contracts; ``now_s`` pins the request time (tests)."""
        stamp = int(time.time()) if now_s is None else now_s
        by_channel: dict[str, list[str]] = {}
        for topic in topics:
            channel, _, contract = topic.partition(":")
            by_channel.setdefault(channel, []).append(contract)
        frames = []
        for channel, contracts in by_channel.items():
            for start in range(0, len(contracts), self.topics_per_subscribe):
                payload = contracts[start : start + self.topics_per_subscribe]
                request = {"time": stamp, "channel": channel, "event": "subscribe", "payload": payload}
                frames.append(orjson.dumps(request).decode())
        return frames

    def ping_message(self) -> str | None:
        return orjson.dumps({"time": int(time.time()), "channel": PING}).decode()

    # -- parsing ----------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        message = load_json(frame)
        if not isinstance(message, dict):
            raise FrameError("expected a JSON object")
        error = message.get("error")
        if error:
            return Parsed(error=self._error_text(error))
        channel, event = message.get("channel"), message.get("event")
        if event in ("subscribe", "unsubscribe"):
            result = message.get("result")
            status = result.get("status") if isinstance(result, dict) else None
            if status != "success":
                return Parsed(error=f"{channel} {event} status {status!r}")
            return Parsed(subscribed=event == "subscribe")
        if event not in ("update", "all") or channel == PONG:
            return Parsed()  # pong and anything else without market data
        try:
            if channel == BOOK:
                return self._book(message, receipt_ts_ns)
            if channel == TICKERS:
                return self._tickers(message, receipt_ts_ns)
        except FrameError:
            raise
        except _CAUGHT as exc:
            raise FrameError(f"{channel}: bad field {exc!r}") from exc
        return Parsed()

    @staticmethod
    def _error_text(error: Any) -> str:
        if isinstance(error, dict):
            return f"code {error.get('code')}: {error.get('message')}"
        return str(error)

    @staticmethod
    def _envelope_ns(message: dict[str, Any]) -> int | None:
        if message.get("time_ms"):
            return ms_to_ns(message["time_ms"])
        return _seconds_to_ns(message.get("time"))

    def _book(self, message: dict[str, Any], receipt_ts_ns: int) -> Parsed:
        result = message["result"]
        if not isinstance(result, dict):
            raise FrameError("book_ticker result is not an object")
        instrument = self.instrument(result["s"])
        if instrument is None:
            return Parsed()
        bid, ask = dec(result["b"]), dec(result["a"])
        # An empty side is b:"" with B:0: no price and no size, never a zero quote.
        quote = make_quote(
            instrument,
            bid=bid,
            bid_qty=dec(result["B"]) if bid is not None else None,
            ask=ask,
            ask_qty=dec(result["A"]) if ask is not None else None,
            exchange_ts_ns=ms_to_ns(result["t"]) if result.get("t") else self._envelope_ns(message),
            receipt_ts_ns=receipt_ts_ns,
            sequence=int(result["u"]),
        )
        return Parsed(events=[quote])

    def _tickers(self, message: dict[str, Any], receipt_ts_ns: int) -> Parsed:
        result = message["result"]
        items = result if isinstance(result, list) else [result]
        exchange_ts_ns = self._envelope_ns(message)
        parsed = Parsed()
        for item in items:
            if not isinstance(item, dict):
                raise FrameError("tickers item is not an object")
            instrument = self.instrument(item["contract"])
            if instrument is None:
                continue  # a contract we do not track
            parsed.events.append(
                make_funding(
                    instrument,
                    rate=dec(item["funding_rate"]),
                    # Documented as the next period's indicative rate (deprecated upstream).
                    predicted_rate=dec(item.get("funding_rate_indicative")),
                    # Not in the WS docs but seen on the wire (2026-09): absent -> the listing's
                    # interval (make_funding's default) and no next time.
                    next_funding_ts_ns=_seconds_to_ns(item.get("funding_next_apply")),
                    interval_h=_interval_hours(item.get("funding_interval")),
                    mark=dec(item.get("mark_price")),
                    index=dec(item.get("index_price")),
                    exchange_ts_ns=exchange_ts_ns,
                    receipt_ts_ns=receipt_ts_ns,
                )
            )
        return parsed

    # -- instruments ------------------------------------------------------
    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        rows = listing[cls.instrument_paths[0]]
        if not isinstance(rows, list):
            raise FrameError("contracts listing is not an array")
        tickers = cls._ticker_rows(listing.get(TICKERS_PATH, []))
        return [
            cls._with_ticker(inst, tickers.get(inst.native_symbol))
            for row in rows
            if (inst := cls._instrument(row)) is not None
        ]

    @staticmethod
    def _ticker_rows(tickers: Any) -> dict[str, dict[str, Any]]:
        """Tickers rows per contract (absent in older files)."""
        if not isinstance(tickers, list):
            raise FrameError("tickers listing is not an array")
        try:
            return {row["contract"]: row for row in tickers}
        except (KeyError, TypeError) as exc:
            raise FrameError(f"tickers listing: bad row {exc!r}") from exc

    @staticmethod
    def _with_ticker(inst: Instrument, row: dict[str, Any] | None) -> Instrument:
        """24 h quote volume and open interest from the contract's tickers row."""
        if row is None:
            return inst
        if not isinstance(row, dict):
            raise FrameError(f"tickers listing: bad row {row!r:.200}")
        volume = dec(row.get("volume_24h_quote"))
        open_interest = open_interest_notional(inst, dec(row.get("total_size")), dec(row.get("mark_price")))
        return msgspec.structs.replace(inst, volume_24h_quote=volume, open_interest_quote=open_interest)

    @classmethod
    def _instrument(cls, row: dict[str, Any]) -> Instrument | None:
        # The usdt listing holds only perpetuals; skip delisting/pre-launch rows and
        # anything not linear (an inverse contract would not be served on this socket).
        if row.get("in_delisting") or row.get("status", "trading") not in LIVE_STATUSES:
            return None
        if row.get("type", "direct") != "direct":
            return None
        base_asset, _, quote = row["name"].rpartition("_")
        multiplier = dec(row["quanto_multiplier"])
        if not multiplier:
            return None
        # quanto_multiplier counts units of the named asset; a 1000X name counts 1000-X units.
        _, price_multiplier = canonical_base(base_asset)
        instrument = make_instrument(
            cls.name,
            row["name"],
            base_asset,
            quote,
            quote,
            ContractKind.LINEAR,
            contract_size=multiplier * price_multiplier,
            tick_size=dec(row.get("order_price_round")),
            funding_interval_h=_interval_hours(row.get("funding_interval")) or 8,
        )
        # funding_rate_limit: "Upper and lower limits of funding rate" (one bound, both signs).
        limit = dec(row.get("funding_rate_limit"))
        return (
            instrument
            if limit is None
            else msgspec.structs.replace(instrument, funding_cap=limit, funding_floor=-limit)
        )


# -- funding history ---------------------------------------------------------------------------
# GET /api/v4/futures/{settle}/funding_rate (https://www.gate.io/docs/developers/apiv4/#funding-
# rate-history): contract, from/to (Unix seconds), limit <= 1000; rows ``{t (s), r}`` newest
# first. Public endpoints: 200 requests / 10 s per endpoint and IP; the backfill asks 5 a second.
FUNDING_HISTORY_PATH = "/api/v4/futures/usdt/funding_rate"
FUNDING_HISTORY = HistorySpec(page_size=1000, paging=Paging.BACKWARD, min_interval_s=0.2)


def funding_history_request(instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
    window = {"from": str(-(-start_ms // 1000)), "to": str(end_ms // 1000)}
    return HistoryRequest(FUNDING_HISTORY_PATH, {"contract": instrument.native_symbol, **window, "limit": "1000"})


def parse_funding_history(payload: Any, instrument: Instrument) -> list[FundingSettlement]:
    if not isinstance(payload, list):
        raise FrameError(f"{FUNDING_HISTORY_PATH}: expected a list ({str(payload)[:200]})")
    try:
        return [settlement(instrument, dec(r["r"]), int(r["t"]) * 1_000_000_000) for r in payload]
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: bad row ({exc!r})") from exc


VENUE = Gate
