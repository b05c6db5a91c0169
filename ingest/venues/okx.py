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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, ClassVar

import orjson

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
)
from schemas.market import ContractKind, Funding, Instrument, Quote

BOOK = "bbo-tbt"
FUNDING = "funding-rate"
MARK = "mark-price"
CHANNELS = (BOOK, FUNDING, MARK)
HOUR_MS = 3_600_000
# One subscribe argument is ~50 bytes; 200 of them stay far below the 64 KB cap,
# and 600 topics per connection need only 3 of the 480 subscribe ops allowed per hour.
ARGS_PER_SUBSCRIBE = 200
KINDS = {"linear": ContractKind.LINEAR, "inverse": ContractKind.INVERSE}


@dataclass(frozen=True)
class _FundingState:
    """Latest funding and mark of one instrument, merged from both channels."""

    rate: Decimal | None = None
    predicted_rate: Decimal | None = None
    next_funding_ts_ns: int | None = None
    interval_h: int | None = None
    mark: Decimal | None = None


class Okx(Venue):
    name = "okx"
    ws_base = "wss://ws.okx.com:8443"
    rest_base = "https://www.okx.com"
    instrument_paths = ("/api/v5/public/instruments?instType=SWAP",)
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
        frames = []
        for start in range(0, len(topics), self.topics_per_subscribe):
            request_id = self.next_request_id()
            args = []
            for topic in topics[start : start + self.topics_per_subscribe]:
                channel, _, inst_id = topic.partition(":")
                args.append({"channel": channel, "instId": inst_id})
            request = {"id": str(request_id), "op": "subscribe", "args": args}
            frames.append(orjson.dumps(request).decode())
        return frames

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
        return make_funding(
            inst,
            rate=state.rate,
            predicted_rate=state.predicted_rate,
            next_funding_ts_ns=state.next_funding_ts_ns,
            interval_h=state.interval_h,
            mark=state.mark,
            exchange_ts_ns=None if ts_ms is None else ms_to_ns(ts_ms),
            receipt_ts_ns=receipt_ts_ns,
        )

    # -- instruments ------------------------------------------------------
    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        response = listing[cls.instrument_paths[0]]
        if str(response.get("code")) != "0":
            raise FrameError(f"instrument listing error {response.get('code')}: {response.get('msg')}")
        instruments = []
        for row in response["data"]:
            # Pre-open listings carry "" in most fields until shortly before trading.
            if row.get("instType") != "SWAP" or row.get("state") != "live" or row.get("ctType") not in KINDS:
                continue
            instrument = _instrument(cls.name, row)
            if instrument is not None:
                instruments.append(instrument)
        return instruments


def _instrument(venue: str, row: dict[str, Any]) -> Instrument | None:
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
        funding_interval_h=8,  # OKX's default; each funding push carries the actual interval
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


VENUE = Okx
