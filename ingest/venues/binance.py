"""Binance USDⓈ-M perpetual futures.

Docs: https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
Since 2026-04-23 book streams live under ``/public`` and mark price under
``/market``; a stream on the wrong path fails silently, so the two kinds get
separate connections. Quantities are base-asset units (``1000PEPEUSDT``
quantities count 1000-PEPE units). The server sends protocol pings every 3 min,
answered by the WebSocket library; there is no application-level ping.

Limits at whole-market scale (same page, "Websocket Market Streams"): a
connection carries at most 1024 streams, takes at most 10 incoming messages per
second (over that it is closed; repeated offences ban the IP) and lives 24 h.
So one ``bookTicker`` stream per symbol, up to 1024 per ``/public`` connection,
100 names per SUBSCRIBE frame and one frame every 0.3 s (3.3/s: a third-party
client measured closes from 5/s on, nautilus ``BINANCE_WS_SUBSCRIPTION_QUOTA``).
Mark price and funding come from the all-market ``!markPrice@arr@1s`` stream
(one stream, every symbol each second) instead of one stream per symbol.
``bookTicker`` has no gap-free sequence (``u`` is the book's update id, shared
with the depth streams), so it is passed through and never checked.

Funding interval (``/fapi/v1/fundingInfo``, https://developers.binance.com/docs/derivatives/
usds-margined-futures/market-data/rest-api/Get-Funding-Rate-Info): it lists only
the symbols whose cap/floor or interval was adjusted, with ``fundingIntervalHours``;
every other symbol funds every 8 h. Binance changes intervals live (announced
moves to 4 h or 1 h); the hourly listing refresh picks them up. The mark-price
stream does not carry the interval.

Open interest: none. ``/fapi/v1/ticker/24hr`` carries no open interest; Binance publishes it
only per symbol (``GET /fapi/v1/openInterest?symbol=``, https://developers.binance.com/docs/
derivatives/usds-margined-futures/market-data/rest-api/Open-Interest), i.e. ~500 calls per
refresh, and no stream carries it; ``Instrument.open_interest_quote`` stays None (decision 0028).
"""

from __future__ import annotations

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
    ms_to_ns,
)
from ingest.venues.history import HistoryRequest, HistorySpec, Paging, settlement
from schemas.funding import FundingSettlement
from schemas.market import ContractKind, Instrument

BOOK = "bookTicker"
ALL_MARKS = "!markPrice@arr@1s"
"""Every symbol's mark price and funding, once a second, as one array frame."""
STREAMS_PER_SUBSCRIBE = 100
EXCHANGE_INFO = "/fapi/v1/exchangeInfo"
FUNDING_INFO = "/fapi/v1/fundingInfo"
TICKER_24H = "/fapi/v1/ticker/24hr"
DEFAULT_FUNDING_H = 8


class Binance(Venue):
    name = "binance"
    ws_base = "wss://fstream.binance.com"
    rest_base = "https://fapi.binance.com"
    # fundingInfo: per-symbol funding intervals; ticker/24hr (no symbol: every
    # symbol in one GET, weight 40): 24 h quote volume for ``top:N``. Files saved
    # before these were fetched lack them and still load (8 h, no volume).
    instrument_paths = (EXCHANGE_INFO, FUNDING_INFO, TICKER_24H)
    optional_instrument_paths = frozenset({TICKER_24H})  # volumes only
    max_topics_per_connection = 1024
    topics_per_subscribe = STREAMS_PER_SUBSCRIBE
    subscribe_interval_s = 0.3
    ping_interval_s: ClassVar[float | None] = None
    stale_after_s = 30.0

    def topics(self, instrument: Instrument) -> list[str]:
        """The per-symbol book stream; funding rides the one all-market stream (see connections)."""
        return [f"{instrument.native_symbol.lower()}@{BOOK}"]

    def connections(self, ws_base: str) -> list[Connection]:
        """Book streams on ``/public`` (≤1024 per connection); the all-market mark stream on ``/market``."""
        topics = [t for inst in self.by_native.values() for t in self.topics(inst)]
        cap = self.max_topics_per_connection
        plans = [
            Connection(f"binance-public-{n}", self.ws_url(ws_base, "public"), tuple(topics[start : start + cap]))
            for n, start in enumerate(range(0, len(topics), cap))
        ]
        if self.by_native:
            plans.append(Connection("binance-market-0", self.ws_url(ws_base, "market"), (ALL_MARKS,)))
        return plans

    def ws_url(self, ws_base: str, kind: str) -> str:
        return f"{ws_base}/{kind}/stream"

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        frames = []
        for start in range(0, len(topics), self.topics_per_subscribe):
            request_id = self.next_request_id()
            params = list(topics[start : start + self.topics_per_subscribe])
            frames.append(orjson.dumps({"method": "SUBSCRIBE", "params": params, "id": request_id}).decode())
        return frames

    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        message = load_json(frame)
        if isinstance(message, list):  # raw all-market stream: a bare array of events
            message = {"data": message}
        if not isinstance(message, dict):
            raise FrameError("expected a JSON object or array")
        if "id" in message and "result" in message:
            return Parsed(subscribed=True)
        if "error" in message:
            error = message["error"]
            return Parsed(error=f"code {error.get('code')}: {error.get('msg')}")
        payload = message.get("data", message)
        items = payload if isinstance(payload, list) else [payload]
        parsed = Parsed()
        for item in items:
            self._parse_item(item, receipt_ts_ns, parsed)
        return parsed

    def _parse_item(self, item: Any, receipt_ts_ns: int, out: Parsed) -> None:
        if not isinstance(item, dict):
            raise FrameError("expected an event object")
        instrument = self.instrument(item.get("s", ""))
        if instrument is None:
            return  # a symbol we do not track (e.g. from an all-market stream)
        event_type = item.get("e")
        try:
            if event_type == "bookTicker":
                out.events.append(
                    make_quote(
                        instrument,
                        bid=dec(item["b"]),
                        bid_qty=dec(item["B"]),
                        ask=dec(item["a"]),
                        ask_qty=dec(item["A"]),
                        exchange_ts_ns=ms_to_ns(item["E"]),
                        receipt_ts_ns=receipt_ts_ns,
                        sequence=int(item["u"]),
                    )
                )
            elif event_type == "markPriceUpdate":
                next_funding = int(item["T"])
                out.events.append(
                    make_funding(
                        instrument,
                        rate=dec(item["r"]),
                        next_funding_ts_ns=ms_to_ns(next_funding) if next_funding else None,
                        mark=dec(item["p"]),
                        index=dec(item["i"]),
                        exchange_ts_ns=ms_to_ns(item["E"]),
                        receipt_ts_ns=receipt_ts_ns,
                    )
                )
        except KeyError as exc:
            raise FrameError(f"{event_type} without field {exc}") from exc

    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        intervals = _funding_intervals(listing.get(FUNDING_INFO))
        caps = _funding_caps(listing.get(FUNDING_INFO))
        volumes = _quote_volumes(listing.get(TICKER_24H))
        instruments = []
        for row in listing[EXCHANGE_INFO]["symbols"]:
            if row.get("contractType") != "PERPETUAL" or row.get("status") != "TRADING":
                continue
            tick = next((dec(f["tickSize"]) for f in row.get("filters", []) if f["filterType"] == "PRICE_FILTER"), None)
            # Quantities count units of the prefixed asset (1000PEPE), so one unit
            # is price_multiplier base units.
            _, multiplier = canonical_base(row["baseAsset"])
            instrument = make_instrument(
                cls.name,
                row["symbol"],
                row["baseAsset"],
                row["quoteAsset"],
                row["marginAsset"],
                ContractKind.LINEAR,
                contract_size=multiplier,
                tick_size=tick,
                funding_interval_h=intervals.get(row["symbol"], DEFAULT_FUNDING_H),
            )
            volume = volumes.get(row["symbol"])
            if volume is not None:
                instrument = msgspec.structs.replace(instrument, volume_24h_quote=volume)
            cap, floor = caps.get(row["symbol"], (None, None))
            instruments.append(msgspec.structs.replace(instrument, funding_cap=cap, funding_floor=floor))
        return instruments


def _funding_intervals(response: Any) -> dict[str, int]:
    """``fundingIntervalHours`` of the adjusted symbols (absent response: none adjusted)."""
    if response is None:
        return {}
    if not isinstance(response, list):
        raise FrameError(f"{FUNDING_INFO}: expected a list")
    return {row["symbol"]: int(row["fundingIntervalHours"]) for row in response if row.get("fundingIntervalHours")}


def _funding_caps(response: Any) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    """``adjustedFundingRateCap``/``Floor`` per symbol: fundingInfo lists only symbols whose cap,
    floor or interval was adjusted, so every other symbol's cap is unknown here (None)."""
    if not isinstance(response, list):
        return {}  # absent (None) or malformed: _funding_intervals reports the latter
    return {
        row["symbol"]: (dec(row.get("adjustedFundingRateCap")), dec(row.get("adjustedFundingRateFloor")))
        for row in response
    }


def _quote_volumes(response: Any) -> dict[str, Decimal]:
    """24 h ``quoteVolume`` per symbol from the all-symbol ticker (absent response: none known)."""
    if response is None:
        return {}
    if not isinstance(response, list):
        raise FrameError(f"{TICKER_24H}: expected a list")
    volumes = {}
    for row in response:
        volume = dec(row.get("quoteVolume"))
        if volume is not None:
            volumes[row["symbol"]] = volume
    return volumes


# -- funding history ---------------------------------------------------------------------------
# GET /fapi/v1/fundingRate (https://developers.binance.com/docs/derivatives/usds-margined-futures/
# market-data/rest-api/Get-Funding-Rate-History): symbol, startTime/endTime (ms, inclusive),
# limit <= 1000, ascending; more rows than limit -> the first `limit` from startTime. Shares
# 500 requests / 5 min / IP with fundingInfo (which the hourly listing refresh also calls):
# one request every 0.75 s is 400 / 5 min.
FUNDING_HISTORY_PATH = "/fapi/v1/fundingRate"
FUNDING_HISTORY = HistorySpec(page_size=1000, paging=Paging.FORWARD, min_interval_s=0.75)


def funding_history_request(instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
    params = {"symbol": instrument.native_symbol, "startTime": str(start_ms), "endTime": str(end_ms)}
    return HistoryRequest(FUNDING_HISTORY_PATH, {**params, "limit": str(FUNDING_HISTORY.page_size)})


def parse_funding_history(payload: Any, instrument: Instrument) -> list[FundingSettlement]:
    """Rows ``{symbol, fundingRate, fundingTime (ms), markPrice}``."""
    if not isinstance(payload, list):
        raise FrameError(f"{FUNDING_HISTORY_PATH}: expected a list")
    try:
        return [settlement(instrument, dec(r["fundingRate"]), ms_to_ns(r["fundingTime"])) for r in payload]
    except (KeyError, TypeError) as exc:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: row without {exc}") from exc


VENUE = Binance
