"""CoinEx futures (API v2): USDT/USDC-margined linear and USD coin-margined inverse perpetuals.

Docs: https://docs.coinex.com/api/v2/ (Integration Guide; futures "Market Status
Subscription", "BBO Subscription", "Get Market Status"). Server frames are
GZIP-compressed binary (plain text is accepted too); replies are
``{"id","code","message"}``, code 0 meaning OK. The client sends ``server.ping``
(a silent socket is closed at 60 s). BBO sizes are base coin on linear contracts
and, we assume, USD on the inverse ``BTCUSD`` (its ``min_amount`` is 10 USD).

``state.update`` (~200 ms, no timestamp) lists many markets per frame.
``latest_funding_rate`` is collected at ``latest_funding_time``, the *upcoming*
settlement; ``next_funding_rate`` predicts the one after, at
``next_funding_time``. The gap between the two times is the interval (8 h by
default, 4 h or 2 h when premiums run high).

CoinEx futures were reported ceased on 2026-09-22: the socket still acks, but
books are empty and ``state.update`` repeats frozen values. So an empty or
zero-priced book gives no Quote, a state whose settlement is long past gives no
Funding, and each is named once per symbol per connection in ``Parsed.error``.
Books and state use separate sockets, so frozen state frames cannot keep the
runner's stale watchdog away from the book connection.

At whole-market scale: ``state.subscribe`` with an empty ``market_list`` is
every market ("Market Status Subscription": an empty list subscribes all), so
funding rides one subscription on one socket whatever the number of markets;
books take ``bbo.subscribe`` with up to 200 markets in one frame per socket. No
WebSocket connection or subscription limit is documented (the docs' rate limits
are per HTTP endpoint group); 221 markets in one frame were accepted on the wire
([AO] coinex/websocket.md), and a repeated subscription of a channel replaces the
previous one, so a channel is never split over two frames of one socket.

Funding interval: 8 h by default, "dynamically adjusted to 2h or 4h"
(https://docs.coinex.com/api/v2/futures/market/http/list-market-funding-rate).
The listing reads it per market from ``GET /v2/futures/funding-rate`` (all
markets: the gap between ``latest_funding_time`` and ``next_funding_time``),
and every ``state.update`` carries it again, so a live change applies at once.
The 24 h quote volume is the ``value`` of ``GET /v2/futures/ticker`` (all
markets), taken for linear contracts only (⚠ the inverse ``value`` unit is not
documented). A listing file without them (the bundled snapshot, older caches)
gives 8 h and no volume; a live fetch fails without the funding rates (a wrong
interval is a wrong APR: the cached listing is better) and goes on without the
ticker. Open interest: the same ticker rows' ``open_interest_volume`` (base units of a linear
market, https://docs.coinex.com/api/v2/futures/market/http/list-market-ticker) x their
``mark_price``, linear only again (the inverse unit is not documented either: None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    gunzip,
    load_json,
    make_funding,
    make_instrument,
    make_quote,
    ms_to_ns,
)
from ingest.venues.history import HistoryRequest, HistorySpec, Paging, rows_of, settlement
from schemas.funding import FundingSettlement
from schemas.market import ContractKind, Instrument

BBO = "bbo"
STATE = "state"
KINDS = {"linear": ContractKind.LINEAR, "inverse": ContractKind.INVERSE}
HOUR_MS = 3_600_000
# The venue rolls latest_funding_time within a minute of each settlement; a time
# further in the past than this means the state is frozen, not merely late.
FROZEN_AFTER_MS = 15 * 60_000
# One subscribe frame per channel and connection: 221 markets in one frame were
# accepted on the wire, and the v1 API replaced an earlier subscription of the
# same channel with a repeated one, so never split a channel over two frames.
MARKETS_PER_CONNECTION = 200
MARKET_PATH = "/v2/futures/market"
FUNDING_PATH = "/v2/futures/funding-rate"
TICKER_PATH = "/v2/futures/ticker"
ALL_MARKETS = ""
"""The state topic's market for "every market" (an empty ``market_list``)."""
DEFAULT_INTERVAL_H = 8


class Coinex(Venue):
    name = "coinex"
    ws_base = "wss://socket.coinex.com"
    rest_base = "https://api.coinex.com"
    instrument_paths = (MARKET_PATH, FUNDING_PATH, TICKER_PATH)
    # A failed ticker costs volumes only; a failed funding-rate call fails the fetch (a wrong
    # interval is a wrong APR: better the cached listing), decision 0010.
    optional_instrument_paths = frozenset({TICKER_PATH})
    max_topics_per_connection = MARKETS_PER_CONNECTION
    topics_per_subscribe = MARKETS_PER_CONNECTION
    subscribe_interval_s = 0.2
    ping_interval_s: ClassVar[float | None] = 20.0
    stale_after_s = 30.0

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        self._reported: set[tuple[str, str]] = set()
        """(channel, market) pairs already named in Parsed.error on this connection."""

    # -- connection plan -------------------------------------------------
    def topics(self, instrument: Instrument) -> list[str]:
        return [f"{BBO}:{instrument.native_symbol}"]

    def connections(self, ws_base: str) -> list[Connection]:
        """Books split over sockets by the cap; the all-markets state on a socket of its own
        (frozen state must not keep the stale watchdog away from empty books)."""
        books = [t for inst in self.by_native.values() for t in self.topics(inst)]
        cap = self.max_topics_per_connection
        plans = [
            Connection(f"coinex-{BBO}-{n}", self.ws_url(ws_base, BBO), tuple(books[start : start + cap]))
            for n, start in enumerate(range(0, len(books), cap))
        ]
        if books:
            plans.append(Connection(f"coinex-{STATE}-0", self.ws_url(ws_base, STATE), (f"{STATE}:{ALL_MARKETS}",)))
        return plans

    def ws_url(self, ws_base: str, kind: str) -> str:
        return f"{ws_base}/v2/futures"

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        by_channel: dict[str, list[str]] = {}
        for topic in topics:
            channel, _, market = topic.partition(":")
            markets = by_channel.setdefault(channel, [])
            if market != ALL_MARKETS:  # an empty list is every market
                markets.append(market)
        frames = []
        for channel, markets in by_channel.items():
            for start in range(0, max(1, len(markets)), self.topics_per_subscribe):
                params = {"market_list": markets[start : start + self.topics_per_subscribe]}
                frames.append(self._request(f"{channel}.subscribe", params))
        return frames

    def ping_message(self) -> str | None:
        return self._request("server.ping", {})

    def reset(self) -> None:
        self._reported.clear()

    def _request(self, method: str, params: dict[str, Any]) -> str:
        request_id = self.next_request_id()
        return orjson.dumps({"method": method, "params": params, "id": request_id}).decode()

    # -- parsing ----------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        message = load_json(_gunzip(frame))
        if not isinstance(message, dict):
            raise FrameError("expected a JSON object")
        method = message.get("method")
        if method is None:
            return _reply(message)
        data = message.get("data")
        if not isinstance(data, dict):
            raise FrameError(f"{method} without a data object")
        parsed = Parsed()
        try:
            if method == "bbo.update":
                self._bbo(data, receipt_ts_ns, parsed)
            elif method == "state.update":
                for item in data["state_list"]:
                    self._state(item, receipt_ts_ns, parsed)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise FrameError(f"{method}: bad or missing field {exc!r}") from exc
        return parsed

    def _bbo(self, data: dict[str, Any], receipt_ts_ns: int, out: Parsed) -> None:
        market = data["market"]
        instrument = self.instrument(market)
        if instrument is None:
            return  # acked but untracked
        bid, bid_qty = _side(data.get("best_bid_price"), data.get("best_bid_size"))
        ask, ask_qty = _side(data.get("best_ask_price"), data.get("best_ask_size"))
        if bid is None and ask is None:
            # A halted venue keeps pushing empty books: never a zero-priced Quote.
            self._report(out, BBO, market, f"empty book for {market} (venue acknowledged but sends no prices)")
            return
        out.events.append(
            make_quote(
                instrument,
                bid=bid,
                bid_qty=bid_qty,
                ask=ask,
                ask_qty=ask_qty,
                exchange_ts_ns=ms_to_ns(data["updated_at"]),
                receipt_ts_ns=receipt_ts_ns,
            )
        )

    def _state(self, item: dict[str, Any], receipt_ts_ns: int, out: Parsed) -> None:
        market = item["market"]
        instrument = self.instrument(market)
        if instrument is None:
            return
        settles_ms = int(item["latest_funding_time"] or 0)
        following_ms = int(item.get("next_funding_time") or 0)
        if settles_ms and settles_ms + FROZEN_AFTER_MS < receipt_ts_ns // 1_000_000:
            reason = f"frozen funding state for {market} (settlement at {settles_ms} ms is long past)"
            self._report(out, STATE, market, reason)
            return
        gap_ms = following_ms - settles_ms
        interval_h = gap_ms // HOUR_MS if settles_ms and gap_ms > 0 and gap_ms % HOUR_MS == 0 else None
        out.events.append(
            make_funding(
                instrument,
                rate=dec(item["latest_funding_rate"]),
                predicted_rate=dec(item.get("next_funding_rate")),
                next_funding_ts_ns=ms_to_ns(settles_ms) if settles_ms else None,
                mark=dec(item.get("mark_price")),
                index=dec(item.get("index_price")),
                interval_h=interval_h,
                exchange_ts_ns=None,  # state.update carries no event time
                receipt_ts_ns=receipt_ts_ns,
            )
        )

    def _report(self, out: Parsed, channel: str, market: str, reason: str) -> None:
        """Name a dead symbol in Parsed.error once per connection, so health shows why it is silent."""
        if (channel, market) in self._reported:
            return
        self._reported.add((channel, market))
        out.error = reason if out.error is None else f"{out.error}; {reason}"

    # -- instruments ------------------------------------------------------
    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        intervals = _by_market(listing.get(FUNDING_PATH), _interval_h)
        volumes = _by_market(listing.get(TICKER_PATH), lambda row: dec(row.get("value")))
        depths = _by_market(listing.get(TICKER_PATH), _open_interest)
        instruments = []
        for row in listing[MARKET_PATH]["data"]:
            kind = KINDS.get(row.get("contract_type", ""))
            if kind is None or row.get("status") != "online":
                continue
            market = row["market"]
            volume = volumes.get(market) if kind is ContractKind.LINEAR else None
            instrument = cls._instrument(row, kind, intervals.get(market) or DEFAULT_INTERVAL_H)
            if kind is ContractKind.LINEAR and depths.get(market) is not None:
                instrument = msgspec.structs.replace(instrument, open_interest_quote=depths[market])
            instruments.append(
                instrument if volume is None else msgspec.structs.replace(instrument, volume_24h_quote=volume)
            )
        return instruments

    @classmethod
    def _instrument(cls, row: dict[str, Any], kind: ContractKind, interval_h: int) -> Instrument:
        # Linear sizes count base_ccy units; a 1000x-prefixed base makes one
        # unit worth 1000 coins. Inverse sizes are USD (one unit = 1 USD).
        _, multiplier = canonical_base(row["base_ccy"])
        quote = row["quote_ccy"]
        return make_instrument(
            cls.name,
            row["market"],
            row["base_ccy"],
            quote,
            quote if kind is ContractKind.LINEAR else row["base_ccy"],
            kind,
            contract_size=multiplier if kind is ContractKind.LINEAR else Decimal(1),
            tick_size=dec(row.get("tick_size")),
            funding_interval_h=interval_h,
        )


def _open_interest(row: dict[str, Any]) -> Decimal | None:
    """``open_interest_volume`` (base units) x ``mark_price``: quote currency for a linear market."""
    held, mark = dec(row.get("open_interest_volume")), dec(row.get("mark_price"))
    return held * mark if held is not None and mark is not None else None


def _by_market(response: Any, value: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """``{market: value(row)}`` over a ``{"code": 0, "data": [...]}`` answer; empty when absent."""
    if response is None or response.get("code") != 0:
        return {}
    return {row["market"]: value(row) for row in response["data"]}


def _interval_h(row: dict[str, Any]) -> int | None:
    """Hours between the upcoming settlement and the one after (None unless a whole number)."""
    gap_ms = int(row.get("next_funding_time") or 0) - int(row.get("latest_funding_time") or 0)
    return gap_ms // HOUR_MS if gap_ms > 0 and gap_ms % HOUR_MS == 0 else None


def _gunzip(frame: str | bytes) -> str | bytes:
    if isinstance(frame, bytes) and frame[:2] == b"\x1f\x8b":
        return gunzip(frame)
    return frame


def _reply(message: dict[str, Any]) -> Parsed:
    """An answer to one of our requests: ack, pong or error."""
    if "code" not in message:
        raise FrameError("neither a push (method) nor a reply (code)")
    code = message["code"]
    if code != 0:
        return Parsed(error=f"code {code}: {message.get('message')}")
    data = message.get("data")
    if isinstance(data, dict) and data.get("result") == "pong":
        return Parsed()
    return Parsed(subscribed=True)


def _side(price: Any, size: Any) -> tuple[Decimal | None, Decimal | None]:
    """One side of the book; an empty or zero price (or size) is no side at all."""
    value, amount = dec(price), dec(size)
    if value is None or value <= 0 or amount is None or amount <= 0:
        return None, None
    return value, amount


# -- funding history ---------------------------------------------------------------------------
# GET /v2/futures/funding-rate-history (https://docs.coinex.com/api/v2/futures/market/http/list-
# market-funding-rate-history): market, start_time/end_time (ms), page, limit; ``data`` rows
# ``{market, funding_time (ms), theoretical_funding_rate, actual_funding_rate}`` newest first,
# ``pagination.has_next``. ``actual_funding_rate`` is the one charged. Market data: 400 requests
# / s per IP; the backfill asks 5 a second.
FUNDING_HISTORY_PATH = "/v2/futures/funding-rate-history"
FUNDING_HISTORY = HistorySpec(page_size=100, paging=Paging.PAGES, min_interval_s=0.2)


def funding_history_request(instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
    window = {"start_time": str(start_ms), "end_time": str(end_ms)}
    return HistoryRequest(
        FUNDING_HISTORY_PATH, {"market": instrument.native_symbol, **window, "page": str(page), "limit": "100"}
    )


def parse_funding_history(payload: Any, instrument: Instrument) -> list[FundingSettlement]:
    if isinstance(payload, dict) and payload.get("code") not in (0, None):
        raise FrameError(f"{FUNDING_HISTORY_PATH}: code {payload.get('code')}: {payload.get('message')}")
    try:
        rows = rows_of(payload, "data")
        return [settlement(instrument, dec(r["actual_funding_rate"]), ms_to_ns(r["funding_time"])) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: bad row ({exc!r})") from exc


VENUE = Coinex
