"""OKX v5 perpetual swaps: USDT-margined linear and USD coin-margined inverse.

Docs: https://www.okx.com/docs-v5/en/#overview-websocket (connect, subscribe, notice),
"WS / Order book channel" (``bbo-tbt``), "Funding rate channel", "Mark price channel",
and "Get instruments" for the REST listing.

Book sizes are contracts: linear contracts are ``ctVal`` base units (BTC-USDT-SWAP
0.01 BTC, PEPE-USDT-SWAP 10,000,000 PEPE), inverse contracts ``ctVal`` USD
(BTC-USD-SWAP 100 USD). Every ``bbo-tbt`` push is a full one-level snapshot; its
``seqId`` is the instrument's book sequence shared with the deeper channels, so it
jumps between pushes and cannot reveal a gap. The client must send the text
``ping`` when idle (< 30 s); the server answers ``pong``.

Funding and mark arrive on separate channels (funding every 30-90 s, mark every
200 ms on change, else every 10 s). We keep the latest of both per instrument and
emit one merged Funding from either, so no event ever blanks out a known rate or
mark. A cached rate is dropped once its settlement time (``fundingTime``) has passed.

Limits at whole-market scale (https://www.okx.com/docs-v5/en/#overview-websocket-subscribe
and "Connect" / "Connection limit"): the args of one subscribe request may total
at most 64 KB, so requests are cut by encoded size (≤ 32 KB, half the cap) as
well as by count (200 args); 480 subscribe/unsubscribe/login requests per
connection per hour (600 topics need 3); 3 connection requests per second per
IP. The "30 connections per channel" cap is per sub-account, i.e. private
channels; these are public. ``bbo-tbt`` sequence ids are shared with the deeper
books, so they cannot reveal a gap (see above): no resync logic is needed.

Funding interval: OKX moves altcoins between 8/4/2/1 h; the instruments listing
does not say which. ``GET /api/v5/public/funding-rate?instId=ANY`` (every swap in
one GET) gives ``fundingTime`` and ``nextFundingTime``, whose difference is the
interval ("Get funding rate": "focus on the difference between fundingTime and
nextFundingTime"); every ``funding-rate`` push carries the same pair, so a live
change shows at the next push. 24 h volume: ``GET /api/v5/market/tickers?instType=SWAP``;
``volCcy24h`` is base coin, so linear quote volume is ``volCcy24h x last`` (an
estimate at the last price), inverse is ``vol24h`` contracts x contract value (USD).
Open interest: the tickers carry none; ``GET /api/v5/public/open-interest?instType=SWAP`` ("Get
open interest", https://www.okx.com/docs-v5/en/#public-data-rest-api-get-open-interest) lists
every swap in one GET (``oi`` contracts, ``oiCcy`` coin, ``oiUsd``), fetched with the listing
(optional, like the tickers). ``open_interest_quote``: linear ``oi`` x contract value (base) x the
ticker's ``last`` (quote currency, as the volume; ``oiUsd`` is USD, not USDT/USDC), inverse ``oi``
x contract value (USD). None without both rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, ClassVar

import orjson
from msgspec.structs import replace as replace_struct

from ingest.venues.base import (
    FrameError,
    Parsed,
    Venue,
    dec,
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

BOOK = "bbo-tbt"
FUNDING = "funding-rate"
MARK = "mark-price"
CHANNELS = (BOOK, FUNDING, MARK)
HOUR_MS = 3_600_000
DEFAULT_FUNDING_H = 8
# One subscribe argument is ~50 bytes; 200 of them stay far below the 64 KB cap,
# and 600 topics per connection need only 3 of the 480 subscribe ops allowed per hour.
ARGS_PER_SUBSCRIBE = 200
REQUEST_BYTES = 32 * 1024  # half the documented 64 KB, whatever the instId lengths
INSTRUMENTS = "/api/v5/public/instruments?instType=SWAP"
FUNDING_RATES = "/api/v5/public/funding-rate?instId=ANY"
TICKERS = "/api/v5/market/tickers?instType=SWAP"
OPEN_INTEREST = "/api/v5/public/open-interest?instType=SWAP"
KINDS = {"linear": ContractKind.LINEAR, "inverse": ContractKind.INVERSE}


@dataclass(frozen=True)
class _FundingState:
    """Latest funding and mark of one instrument, merged from both channels."""

    rate: Decimal | None = None
    predicted_rate: Decimal | None = None
    next_funding_ts_ns: int | None = None
    interval_h: int | None = None
    mark: Decimal | None = None
    rate_cap: Decimal | None = None
    """``maxFundingRate``/``minFundingRate`` of the funding-rate channel (kept across mark pushes)."""
    rate_floor: Decimal | None = None


class Okx(Venue):
    name = "okx"
    ws_base = "wss://ws.okx.com:8443"
    rest_base = "https://www.okx.com"
    # Files saved before the funding and ticker paths were fetched still load (8 h, no volume).
    instrument_paths = (INSTRUMENTS, FUNDING_RATES, TICKERS, OPEN_INTEREST)
    optional_instrument_paths = frozenset({TICKERS, OPEN_INTEREST})  # volumes and open interest only
    # A multiple of len(CHANNELS): the default split then keeps the three topics
    # of one instrument on the same connection.
    max_topics_per_connection = 600
    topics_per_subscribe = ARGS_PER_SUBSCRIBE
    subscribe_interval_s = 0.2
    ping_interval_s: ClassVar[float | None] = 20.0
    stale_after_s = 30.0

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        # Not cleared by reset(): funding and mark are facts about the market, not
        # about one connection, and they may ride different sockets.
        self._funding: dict[str, _FundingState] = {}

    def topics(self, instrument: Instrument) -> list[str]:
        return [f"{channel}:{instrument.native_symbol}" for channel in CHANNELS]

    def ws_url(self, ws_base: str, kind: str) -> str:
        return f"{ws_base}/ws/v5/public"

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        """Subscribe requests of at most ``topics_per_subscribe`` args and ``REQUEST_BYTES`` of args."""
        batches: list[list[bytes]] = []
        size = 0
        for topic in topics:
            channel, _, inst_id = topic.partition(":")
            arg = orjson.dumps({"channel": channel, "instId": inst_id})
            if not batches or len(batches[-1]) >= self.topics_per_subscribe or size + len(arg) > REQUEST_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(arg)
            size += len(arg) + 1
        return [
            f'{{"id":"{self.next_request_id()}","op":"subscribe","args":[{b",".join(batch).decode()}]}}'
            for batch in batches
        ]

    def ping_message(self) -> str | None:
        return "ping"

    # -- parsing ----------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        if frame in ("pong", b"pong"):
            return Parsed()
        message = load_json(frame)
        if not isinstance(message, dict):
            raise FrameError("expected a JSON object")
        if "event" in message:
            return _control(message)
        arg, data = message.get("arg"), message.get("data")
        if not isinstance(arg, dict) or not isinstance(data, list):
            raise FrameError("push without arg object and data array")
        channel, inst_id = arg.get("channel"), arg.get("instId")
        if not isinstance(channel, str) or not isinstance(inst_id, str):
            raise FrameError(f"push without channel and instId: {arg!r}")
        instrument = self.instrument(inst_id)
        handler = self._handlers().get(channel)
        parsed = Parsed()
        if instrument is None or handler is None:
            return parsed  # an instrument or channel we do not track
        for item in data:
            if not isinstance(item, dict):
                raise FrameError(f"{channel} item is not an object")
            try:
                parsed.events.append(handler(instrument, item, receipt_ts_ns))
            except FrameError:
                raise
            except (KeyError, TypeError, IndexError, ValueError) as exc:
                raise FrameError(f"{channel} {inst_id}: bad or missing field {exc!r}") from exc
        return parsed

    def _handlers(self) -> dict[str, Callable[[Instrument, dict[str, Any], int], Quote | Funding]]:
        return {BOOK: self._book, FUNDING: self._funding_rate, MARK: self._mark}

    def _book(self, inst: Instrument, item: dict[str, Any], receipt_ts_ns: int) -> Quote:
        bid, bid_qty = _top(item["bids"])
        ask, ask_qty = _top(item["asks"])
        seq = item.get("seqId")
        return make_quote(
            inst,
            bid=bid,
            bid_qty=bid_qty,
            ask=ask,
            ask_qty=ask_qty,
            exchange_ts_ns=ms_to_ns(item["ts"]),
            receipt_ts_ns=receipt_ts_ns,
            sequence=None if seq is None else int(seq),
        )

    def _funding_rate(self, inst: Instrument, item: dict[str, Any], receipt_ts_ns: int) -> Funding:
        settle_ms, after_ms = _optional_int(item.get("fundingTime")), _optional_int(item.get("nextFundingTime"))
        state = replace(
            self._funding.get(inst.native_symbol, _FundingState()),
            rate=dec(item["fundingRate"]),
            predicted_rate=dec(item.get("nextFundingRate")),  # deprecated: "" under current_period
            next_funding_ts_ns=None if settle_ms is None else ms_to_ns(settle_ms),
            interval_h=_interval_h(settle_ms, after_ms),
            rate_cap=dec(item.get("maxFundingRate")),
            rate_floor=dec(item.get("minFundingRate")),
        )
        return self._emit(inst, state, _optional_int(item.get("ts")), receipt_ts_ns)

    def _mark(self, inst: Instrument, item: dict[str, Any], receipt_ts_ns: int) -> Funding:
        ts_ms = int(item["ts"])
        state = replace(self._funding.get(inst.native_symbol, _FundingState()), mark=dec(item["markPx"]))
        if state.next_funding_ts_ns is not None and ms_to_ns(ts_ms) >= state.next_funding_ts_ns:
            # That rate has settled; the next period's arrives with the next funding push.
            state = replace(state, rate=None, predicted_rate=None, next_funding_ts_ns=None)
        return self._emit(inst, state, ts_ms, receipt_ts_ns)

    def _emit(self, inst: Instrument, state: _FundingState, ts_ms: int | None, receipt_ts_ns: int) -> Funding:
        self._funding[inst.native_symbol] = state
        funding = make_funding(
            inst,
            rate=state.rate,
            predicted_rate=state.predicted_rate,
            next_funding_ts_ns=state.next_funding_ts_ns,
            interval_h=state.interval_h,
            mark=state.mark,
            exchange_ts_ns=None if ts_ms is None else ms_to_ns(ts_ms),
            receipt_ts_ns=receipt_ts_ns,
        )
        if state.rate_cap is None and state.rate_floor is None:
            return funding
        return replace_struct(funding, rate_cap=state.rate_cap, rate_floor=state.rate_floor)

    # -- instruments ------------------------------------------------------
    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        funding_rows = _rows(FUNDING_RATES, listing.get(FUNDING_RATES))
        intervals = {inst_id: h for inst_id, row in funding_rows if (h := _row_interval(row))}
        caps = {
            inst_id: (dec(row.get("maxFundingRate")), dec(row.get("minFundingRate"))) for inst_id, row in funding_rows
        }
        tickers = dict(_rows(TICKERS, listing.get(TICKERS)))
        open_interest = dict(_rows(OPEN_INTEREST, listing.get(OPEN_INTEREST)))
        instruments = []
        for inst_id, row in _rows(INSTRUMENTS, listing[INSTRUMENTS]):
            # Pre-open listings carry "" in most fields until shortly before trading.
            if row.get("instType") != "SWAP" or row.get("state") != "live" or row.get("ctType") not in KINDS:
                continue
            instrument = _instrument(cls.name, row, intervals.get(inst_id, DEFAULT_FUNDING_H))
            if instrument is not None:
                cap, floor = caps.get(inst_id, (None, None))
                ticker = tickers.get(inst_id)
                volume = _quote_volume(instrument, ticker)
                depth = _open_interest(instrument, open_interest.get(inst_id), ticker)
                instruments.append(
                    replace_struct(
                        instrument,
                        volume_24h_quote=volume,
                        open_interest_quote=depth,
                        funding_cap=cap,
                        funding_floor=floor,
                    )
                )
        return instruments


def _rows(path: str, response: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(instId, row)`` of a v5 response; an absent (older file) response has none."""
    if response is None:
        return []
    if not isinstance(response, dict) or str(response.get("code")) != "0" or not isinstance(response.get("data"), list):
        code, msg = (response.get("code"), response.get("msg")) if isinstance(response, dict) else (None, None)
        raise FrameError(f"{path}: error {code}: {msg}")
    return [(str(row.get("instId")), row) for row in response["data"] if isinstance(row, dict)]


def _row_interval(row: dict[str, Any]) -> int | None:
    return _interval_h(_optional_int(row.get("fundingTime")), _optional_int(row.get("nextFundingTime")))


def _quote_volume(inst: Instrument, ticker: dict[str, Any] | None) -> Decimal | None:
    if ticker is None:
        return None
    if inst.kind is ContractKind.INVERSE:
        contracts = dec(ticker.get("vol24h"))
        return None if contracts is None else contracts * inst.contract_size
    base_volume, last = dec(ticker.get("volCcy24h")), dec(ticker.get("last"))
    return None if base_volume is None or last is None else base_volume * last


def _open_interest(inst: Instrument, row: dict[str, Any] | None, ticker: dict[str, Any] | None) -> Decimal | None:
    """``oi`` contracts in quote currency: inverse contracts are USD; linear ones at the ticker's last."""
    if row is None:
        return None
    last = dec(ticker.get("last")) if ticker is not None else None
    return open_interest_notional(inst, dec(row.get("oi")), last)


def _instrument(venue: str, row: dict[str, Any], interval_h: int) -> Instrument | None:
    base, _, quote = str(row.get("instFamily") or row["uly"]).partition("-")
    kind = KINDS[row["ctType"]]
    # Contract value is in base units (linear) or quote units (inverse); any other
    # denomination would need a conversion we do not know, so skip the row.
    if row.get("ctValCcy") != (base if kind is ContractKind.LINEAR else quote):
        return None
    ct_val, ct_mult = dec(row["ctVal"]), dec(row.get("ctMult")) or Decimal(1)
    if ct_val is None:
        return None
    return make_instrument(
        venue,
        row["instId"],
        base,
        quote,
        row["settleCcy"],
        kind,
        contract_size=ct_val * ct_mult,
        tick_size=dec(row.get("tickSz")),
        funding_interval_h=interval_h,  # each funding push carries the live one too
    )


def _control(message: dict[str, Any]) -> Parsed:
    event = message["event"]
    if event == "subscribe":
        return Parsed(subscribed=True)
    if event == "error":
        return Parsed(error=f"code {message.get('code')}: {message.get('msg')}")
    # unsubscribe, login, channel-conn-count, and notice (code 64008: the socket
    # closes soon for a service upgrade; the runner reconnects when it drops).
    return Parsed()


def _top(levels: Any) -> tuple[Decimal | None, Decimal | None]:
    """Best level's price and size (contracts); an empty side is (None, None)."""
    if not isinstance(levels, list):
        raise FrameError(f"book side is not a list: {levels!r}")
    if not levels:
        return None, None
    return dec(levels[0][0]), dec(levels[0][1])


def _optional_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _interval_h(settle_ms: int | None, after_ms: int | None) -> int | None:
    """Funding interval from two consecutive settlement times (None: instrument default)."""
    if settle_ms is None or after_ms is None:
        return None
    hours, rest = divmod(after_ms - settle_ms, HOUR_MS)
    return hours if hours > 0 and rest == 0 else None


# -- funding history ---------------------------------------------------------------------------
# GET /api/v5/public/funding-rate-history (https://www.okx.com/docs-v5/en/#public-data-rest-api-
# get-funding-rate-history): instId, `after` (rows with fundingTime earlier than it), `before`
# (later than it), limit <= 100, newest first. `realizedRate` is the rate actually settled
# (`fundingRate` the one published before it). Limit: 10 requests / 2 s per IP and instId; the
# backfill asks at most 5 a second.
FUNDING_HISTORY_PATH = "/api/v5/public/funding-rate-history"
FUNDING_HISTORY = HistorySpec(page_size=100, paging=Paging.BACKWARD, min_interval_s=0.2)


def funding_history_request(instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
    params = {"instId": instrument.native_symbol, "after": str(end_ms + 1), "before": str(start_ms - 1)}
    return HistoryRequest(FUNDING_HISTORY_PATH, {**params, "limit": str(FUNDING_HISTORY.page_size)})


def parse_funding_history(payload: Any, instrument: Instrument) -> list[FundingSettlement]:
    """``data`` rows ``{instId, fundingRate, realizedRate, fundingTime (ms string), method, ...}``."""
    if isinstance(payload, dict) and payload.get("code") not in ("0", None):
        raise FrameError(f"{FUNDING_HISTORY_PATH}: code {payload.get('code')}: {payload.get('msg')}")
    try:
        return [settlement(instrument, _settled_rate(r), ms_to_ns(r["fundingTime"])) for r in rows_of(payload, "data")]
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: bad row ({exc!r})") from exc


def _settled_rate(row: dict[str, Any]) -> Decimal | None:
    realized = dec(row.get("realizedRate"))  # "" on rows written before OKX published it
    return realized if realized is not None else dec(row["fundingRate"])


VENUE = Okx
