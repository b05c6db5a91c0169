"""MEXC contract (futures) perpetuals: USDT/USDC-margined linear and USD coin-margined inverse.

Docs: https://www.mexc.com/api-docs/futures/websocket-api (socket ``wss://contract.mexc.com/edge``)
and https://www.mexc.com/api-docs/futures/market-endpoints (REST, on ``api.mexc.com`` since 2026-01-19).

One contract per subscribe frame. ``push.ticker`` has ``bid1``/``ask1`` but no
sizes, so top of book comes from ``sub.depth.full`` (a whole top-5 book on every
push, so there is nothing to merge and no contiguous sequence to check: ``version``
advances with every book change, not per push). Funding comes from
``push.funding.rate`` (rate + next settlement, rarely pushed) and ``push.ticker``
(rate + fair/index price, ~1/s); the two are merged per contract so every Funding
event carries both. Levels are JSON numbers, sometimes in exponent form
(``7.548E+4``); sizes are contracts of ``contractSize`` (base coins for linear,
USD for inverse). The client must ping at least once a minute, traffic does not count.

At whole-market scale (~1,200 perpetuals, 3 channels each):

- Limits: MEXC publishes no subscription, connection or message-rate limit for the contract
  socket (https://www.mexc.com/api-docs/futures/websocket-api; the 2025 docs
  ``mexcdevelop/apidocs`` ``contract_v1_en`` say nothing either). A third-party probe
  ([AO] ``mexc/websocket.md`` §3, §5, 2026-09-15) ran 150 contracts on one socket and had
  150 subscribe frames at 20/s all acknowledged. So 50 contracts (150 topics, what the probe
  saw delivered) per socket, one contract per frame (the protocol's only form), 0.05 s apart: a
  socket subscribes in 7.5 s. The runner reads and pings only once it has subscribed, and MEXC
  drops a socket that sent no ping for a minute, so a socket's subscribe phase must stay short
  (300 topics took 15 s nominal and starved under a loaded event loop in a local run).
- Funding interval: MEXC changes ``collectCycle`` per contract. The WS funding push carries
  only ``rate`` and ``nextSettleTime`` (no interval), so the interval comes from the bulk
  ``GET /api/v1/contract/funding_rate`` (symbol optional: every contract's
  ``collectCycle`` in one reply), fetched with the listing and refreshed hourly by ingest.
- 24 h volume: ``GET /api/v1/contract/ticker`` without a symbol lists every contract
  (documented "symbol: false" in the contract REST docs), ``amount24`` is the quote turnover
  of a linear contract; an inverse one's is ``volume24`` contracts x ``contractSize`` USD.
  Optional: older cached/bundled files without it give ``volume_24h_quote`` None.
- Open interest: the same ticker rows carry ``holdVol``, the open contracts ("holdVol: open
  interest", https://www.mexc.com/api-docs/futures/market-endpoints "Get Contract Trend Data");
  ``open_interest_quote`` = holdVol x contractSize x ``fairPrice`` (the mark) for a linear
  contract, holdVol x contractSize USD for an inverse one. None without a row.
- Sequences: ``depth.full`` sends the whole top 5 each push; nothing to resync.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import msgspec
import orjson

from ingest.venues.base import (
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
    open_interest_notional,
)
from ingest.venues.history import HistoryRequest, HistorySpec, Paging, rows_of, settlement
from schemas.funding import FundingSettlement
from schemas.market import ContractKind, Funding, Instrument, Quote

DEPTH = "depth.full"
FUNDING = "funding.rate"
TICKER = "ticker"
CHANNELS = (DEPTH, FUNDING, TICKER)
DEPTH_LEVELS = 5
PERPETUAL = 1  # futureType: 1 perpetual, 2 daily
ENABLED = 0  # state: 0 enabled, 1 delivery, 2 completed, 3 offline, 4 paused
DEFAULT_FUNDING_H = 8
DETAIL_PATH = "/api/v1/contract/detail"
FUNDING_PATH = "/api/v1/contract/funding_rate"
TICKER_PATH = "/api/v1/contract/ticker"


def _num(value: Any) -> Decimal | None:
    """Exact decimal, with exponent forms like ``7.548E+4`` written out as ``75480``."""
    result = dec(value)
    if result is not None and int(result.as_tuple().exponent) > 0:
        result = result.quantize(Decimal(1))
    return result


def _quote_volume(instrument: Instrument, ticker: dict[str, Any] | None) -> Decimal | None:
    """24 h turnover in the quote currency from a ``contract/ticker`` row (None: no row)."""
    if ticker is None:
        return None
    if instrument.kind is ContractKind.LINEAR:
        return _num(ticker.get("amount24"))
    contracts = _num(ticker.get("volume24"))  # inverse: USD contracts
    return None if contracts is None else contracts * instrument.contract_size


def _open_interest(instrument: Instrument, ticker: dict[str, Any] | None) -> Decimal | None:
    """Open contracts (``holdVol``) in the quote currency, linear ones at the mark (None: no row)."""
    if ticker is None:
        return None
    return open_interest_notional(instrument, _num(ticker.get("holdVol")), _num(ticker.get("fairPrice")))


def _ts_ns(*candidates: Any) -> int | None:
    """The first present millisecond timestamp, in nanoseconds."""
    for value in candidates:
        if value is not None and value != "":
            return ms_to_ns(value)
    return None


class Mexc(Venue):
    name = "mexc"
    ws_base = "wss://contract.mexc.com"
    rest_base = "https://api.mexc.com"
    instrument_paths = (DETAIL_PATH, FUNDING_PATH, TICKER_PATH)
    # Volumes only. The funding listing stays required: without it every interval would read 8 h.
    optional_instrument_paths = frozenset({TICKER_PATH})
    # No published cap (module docstring): 50 contracts x 3 channels per socket.
    max_topics_per_connection = 150
    topics_per_subscribe = 1  # the protocol takes one contract per frame
    # No published message-rate limit; 150 frames at 20/s were all acknowledged.
    subscribe_interval_s = 0.05
    ping_interval_s: ClassVar[float | None] = 15.0  # docs: every 10-20 s, closed after 60 s
    stale_after_s = 30.0

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        self._next_settle_ms: dict[str, int] = {}
        self._mark_index: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        self._rate: dict[str, Decimal | None] = {}

    def topics(self, instrument: Instrument) -> list[str]:
        return [f"{channel}:{instrument.native_symbol}" for channel in CHANNELS]

    def ws_url(self, ws_base: str, kind: str) -> str:
        return f"{ws_base}/edge"

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        frames = []
        for topic in topics:
            channel, _, symbol = topic.partition(":")
            param: dict[str, Any] = {"symbol": symbol}
            if channel == DEPTH:
                param["limit"] = DEPTH_LEVELS
            frames.append(orjson.dumps({"method": f"sub.{channel}", "param": param}).decode())
        return frames

    def ping_message(self) -> str | None:
        return '{"method":"ping"}'

    def reset(self) -> None:
        self._next_settle_ms.clear()
        self._mark_index.clear()
        self._rate.clear()

    # -- parsing ----------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        if isinstance(frame, bytes) and frame[:2] == b"\x1f\x8b":
            frame = gunzip(frame)  # the docs imply gzip payloads unless "gzip": false
        message = load_json(frame)
        if not isinstance(message, dict):
            raise FrameError("expected a JSON object")
        channel = message.get("channel")
        if not isinstance(channel, str):
            raise FrameError("frame without a channel")
        if channel == "rs.error":
            return Parsed(error=str(message.get("data")))
        if channel.startswith("rs.sub."):
            return Parsed(subscribed=True)
        handler = self._handlers().get(channel)
        if handler is None:
            return Parsed()  # pong, rs.unsub.*, channels we do not use
        data = message.get("data")
        if not isinstance(data, dict):
            raise FrameError(f"{channel} without a data object")
        symbol = message.get("symbol") or data.get("symbol")
        if not isinstance(symbol, str):
            raise FrameError(f"{channel} without a symbol")
        instrument = self.instrument(symbol)
        if instrument is None:
            return Parsed()  # a contract we do not track
        try:
            return Parsed(events=[handler(instrument, data, message.get("ts"), receipt_ts_ns)])
        except FrameError:
            raise
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise FrameError(f"{channel}: {exc!r}") from exc

    def _handlers(self) -> dict[str, Callable[[Instrument, dict[str, Any], Any, int], Quote | Funding]]:
        return {"push.depth.full": self._depth, "push.funding.rate": self._funding_rate, "push.ticker": self._ticker}

    @staticmethod
    def _best(levels: Any) -> tuple[Decimal | None, Decimal | None]:
        """Price and contracts of the best level; levels are ``[price, contracts, orderCount]``."""
        if not isinstance(levels, list):
            raise FrameError("depth side is not a list")
        if not levels:
            return None, None
        return _num(levels[0][0]), _num(levels[0][1])

    def _depth(self, instrument: Instrument, data: dict[str, Any], ts: Any, receipt_ts_ns: int) -> Quote:
        bid, bid_qty = self._best(data["bids"])  # bids descending, asks ascending
        ask, ask_qty = self._best(data["asks"])
        return make_quote(
            instrument,
            bid=bid,
            bid_qty=bid_qty,
            ask=ask,
            ask_qty=ask_qty,
            exchange_ts_ns=_ts_ns(data.get("cts"), ts),  # cts: matching-engine time; ts: push time
            receipt_ts_ns=receipt_ts_ns,
            sequence=int(data["version"]),
        )

    def _funding_rate(self, instrument: Instrument, data: dict[str, Any], ts: Any, receipt_ts_ns: int) -> Funding:
        symbol = instrument.native_symbol
        # The wire key is "rate"; the docs' field table says "fundingRate".
        rate = _num(data["rate"] if "rate" in data else data["fundingRate"])
        self._rate[symbol] = rate
        if data.get("nextSettleTime"):
            self._next_settle_ms[symbol] = int(data["nextSettleTime"])
        return self._funding(instrument, rate, _ts_ns(ts), receipt_ts_ns)

    def _ticker(self, instrument: Instrument, data: dict[str, Any], ts: Any, receipt_ts_ns: int) -> Funding:
        symbol = instrument.native_symbol
        self._mark_index[symbol] = (_num(data.get("fairPrice")), _num(data.get("indexPrice")))
        if "fundingRate" in data:
            self._rate[symbol] = _num(data["fundingRate"])
        return self._funding(instrument, self._rate.get(symbol), _ts_ns(ts, data.get("timestamp")), receipt_ts_ns)

    def _funding(self, instrument: Instrument, rate: Decimal | None, ts_ns: int | None, receipt_ts_ns: int) -> Funding:
        """One Funding from the latest of both channels for this contract."""
        mark, index = self._mark_index.get(instrument.native_symbol, (None, None))
        next_ms = self._next_settle_ms.get(instrument.native_symbol)
        # A settlement time already passed is stale until the next funding push.
        if next_ms is not None and ts_ns is not None and next_ms * 1_000_000 <= ts_ns:
            next_ms = None
        return make_funding(
            instrument,
            rate=rate,
            next_funding_ts_ns=None if next_ms is None else ms_to_ns(next_ms),
            mark=mark,
            index=index,
            exchange_ts_ns=ts_ns,
            receipt_ts_ns=receipt_ts_ns,
        )

    # -- instruments ------------------------------------------------------
    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        try:
            cycles = {row["symbol"]: int(row["collectCycle"]) for row in cls._rows(listing, FUNDING_PATH)}
            caps = {
                row["symbol"]: (_num(row.get("maxFundingRate")), _num(row.get("minFundingRate")))
                for row in cls._rows(listing, FUNDING_PATH)
            }
            tickers = {row["symbol"]: row for row in cls._rows(listing, TICKER_PATH)}
            instruments = [
                cls._instrument(row, cycles.get(row["symbol"], DEFAULT_FUNDING_H))
                for row in cls._rows(listing, DETAIL_PATH)
                if row.get("futureType") == PERPETUAL and row.get("state") == ENABLED
            ]
            return [
                msgspec.structs.replace(
                    i,
                    volume_24h_quote=_quote_volume(i, tickers.get(i.native_symbol)),
                    open_interest_quote=_open_interest(i, tickers.get(i.native_symbol)),
                    funding_cap=caps.get(i.native_symbol, (None, None))[0],
                    funding_floor=caps.get(i.native_symbol, (None, None))[1],
                )
                for i in instruments
            ]
        except FrameError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FrameError(f"unexpected contract listing: {exc!r}") from exc

    @staticmethod
    def _rows(listing: dict[str, Any], path: str) -> list[dict[str, Any]]:
        """The ``data`` rows of one response; the funding and ticker listings are optional."""
        response = listing.get(path, None if path == DETAIL_PATH else {"data": []})
        rows = response.get("data") if isinstance(response, dict) else None
        if not isinstance(rows, list):
            raise FrameError(f"{path}: expected an object with a data list")
        return rows

    @classmethod
    def _instrument(cls, row: dict[str, Any], funding_h: int) -> Instrument:
        inverse = row["quoteCoin"] != row["settleCoin"]  # BTC_USD settles in BTC
        size = _num(row["contractSize"])
        if size is None:
            raise FrameError(f"{row['symbol']} without contractSize")
        if not inverse:
            # contractSize counts coins of the named base (1000BONK), so one
            # contract is contractSize x price_multiplier canonical base units.
            size *= canonical_base(row["baseCoin"])[1]
        return make_instrument(
            cls.name,
            row["symbol"],
            row["baseCoin"],
            row["quoteCoin"],
            row["settleCoin"],
            ContractKind.INVERSE if inverse else ContractKind.LINEAR,
            contract_size=size,
            tick_size=_num(row.get("priceUnit")),
            funding_interval_h=funding_h,
        )


# -- funding history ---------------------------------------------------------------------------
# GET /api/v1/contract/funding_rate/history (https://mexcdevelop.github.io/apidocs/contract_v1_en/
# #get-contract-funding-rate-history): symbol, page_num, page_size (default 20); no time window,
# ``data.resultList`` rows ``{symbol, fundingRate (number), settleTime (ms)}`` newest first.
# Pages of 100: the documented maximum is not verified here, and a page size above the venue's
# cap would make its first (capped) page look like the last. 20 requests / 2 s per IP; the
# backfill asks 5 a second.
FUNDING_HISTORY_PATH = "/api/v1/contract/funding_rate/history"
FUNDING_HISTORY = HistorySpec(page_size=100, paging=Paging.PAGES, min_interval_s=0.2)


def funding_history_request(instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
    params = {"symbol": instrument.native_symbol, "page_num": str(page), "page_size": str(FUNDING_HISTORY.page_size)}
    return HistoryRequest(FUNDING_HISTORY_PATH, params)


def parse_funding_history(payload: Any, instrument: Instrument) -> list[FundingSettlement]:
    if isinstance(payload, dict) and payload.get("success") is False:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: code {payload.get('code')}: {payload.get('message')}")
    try:
        rows = rows_of(payload, "data", "resultList")
        return [settlement(instrument, dec(r["fundingRate"]), ms_to_ns(r["settleTime"])) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: bad row ({exc!r})") from exc


VENUE = Mexc
