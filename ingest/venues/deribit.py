"""Deribit perpetuals: inverse (BTC-PERPETUAL, amounts in USD) and linear USDC (SOL_USDC-PERPETUAL, base coin).

Docs: https://docs.deribit.com/articles/notifications (JSON-RPC 2.0 over ``/ws/api/v2``).
Top of book comes from ``quote.{instrument}``; mark, index and funding from
``ticker.{instrument}.100ms`` (``raw`` needs authentication). Prices and amounts
are JSON numbers, decoded exactly by ``load_json``. Funding accrues continuously:
``funding_8h`` is the rate over the trailing 8 h and there is no next-funding time.
Heartbeats: after ``public/set_heartbeat`` the server sends ``test_request``
notifications that must be answered with ``public/test``, or it closes the socket.

Limits at whole-market scale (https://docs.deribit.com/articles/rate-limits ,
https://support.deribit.com/hc/en-us/articles/25944617523357-Rate-Limits): at most
32 simultaneous connections per IP (HTTP and WebSocket together); a subscribe
costs 3,000 of a 30,000-credit pool refilled at ~3.3 requests/s, and running dry
ends the session (error 10028), so many channels per request and at most two
requests a second. No per-connection channel cap is documented; Deribit lists a
few dozen perpetuals (BTC/ETH inverse, ``*_USDC-PERPETUAL`` linear), so one
connection carries them all. The quote channel has no sequence numbers: nothing
to resync. Funding accrues continuously; ``funding_8h`` is reported as an 8 h
rate for every instrument. 24 h volume is not in the instrument listing and
``get_book_summary_by_currency`` needs one request per currency: not fetched. The same
holds for open interest (that summary's ``open_interest``: USD for inverse perpetuals, base coin
for linear ones, https://docs.deribit.com/api-reference/market-data/public-get_book_summary_by_currency),
so ``open_interest_quote`` is None (decision 0028).
"""

from __future__ import annotations

from collections.abc import Sequence
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
from ingest.venues.history import HOUR_NS, HistoryRequest, HistorySpec, Paging, rows_of, settlement
from schemas.funding import FundingSettlement
from schemas.market import ContractKind, Funding, Instrument, Quote

QUOTE = "quote"
TICKER = "ticker"
TICKER_INTERVAL = "100ms"
HEARTBEAT_S = 10  # the venue's minimum; a dead socket is noticed within ~10 s
# public/subscribe costs 3000 of 30000 credits, refilled at ~3.3 requests/s:
# many channels per request, and at most two requests a second.
CHANNELS_PER_SUBSCRIBE = 100
KINDS = {"reversed": ContractKind.INVERSE, "linear": ContractKind.LINEAR}


class Deribit(Venue):
    name = "deribit"
    ws_base = "wss://www.deribit.com"
    rest_base = "https://www.deribit.com"
    instrument_paths = ("/api/v2/public/get_instruments?currency=any&kind=future&expired=false",)
    max_topics_per_connection = 500
    topics_per_subscribe = CHANNELS_PER_SUBSCRIBE
    subscribe_interval_s = 0.5
    # The server probes us (test_request); no client ping is needed.
    ping_interval_s: ClassVar[float | None] = None
    stale_after_s = 30.0

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        self._pending: dict[int, set[str]] = {}
        """Channels asked for per subscribe request id, to spot ones the ack leaves out."""

    def topics(self, instrument: Instrument) -> list[str]:
        symbol = instrument.native_symbol
        return [f"{QUOTE}.{symbol}", f"{TICKER}.{symbol}.{TICKER_INTERVAL}"]

    def ws_url(self, ws_base: str, kind: str) -> str:
        return f"{ws_base}/ws/api/v2"

    def _request(self, method: str, params: dict[str, Any]) -> tuple[int, str]:
        request_id = self.next_request_id()
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        return request_id, orjson.dumps(body).decode()

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        frames = []
        for start in range(0, len(topics), self.topics_per_subscribe):
            channels = list(topics[start : start + self.topics_per_subscribe])
            request_id, frame = self._request("public/subscribe", {"channels": channels})
            self._pending[request_id] = set(channels)
            frames.append(frame)
        return frames

    def on_connect(self) -> list[str]:
        return [self._request("public/set_heartbeat", {"interval": HEARTBEAT_S})[1]]

    def reset(self) -> None:
        self._pending.clear()

    # -- parsing ----------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        message = load_json(frame)
        if not isinstance(message, dict):
            raise FrameError("expected a JSON-RPC object")
        method = message.get("method")
        if method == "subscription":
            return self._notification(message.get("params"), receipt_ts_ns)
        if method == "heartbeat":
            return self._heartbeat(message.get("params"))
        if "error" in message:
            return self._error(message)
        if "result" in message:
            return self._result(message)
        return Parsed()  # some other server notice: nothing to publish

    def _heartbeat(self, params: Any) -> Parsed:
        if not isinstance(params, dict):
            raise FrameError("heartbeat without params")
        if params.get("type") == "test_request":
            return Parsed(replies=[self._request("public/test", {})[1]])
        return Parsed()

    def _error(self, message: dict[str, Any]) -> Parsed:
        error = message["error"]
        if not isinstance(error, dict):
            raise FrameError("error is not an object")
        self._forget(message)
        text = f"code {error.get('code')}: {error.get('message')}"
        data = error.get("data")
        reason = data.get("reason") if isinstance(data, dict) else None
        return Parsed(error=f"{text} ({reason})" if reason else text)

    def _forget(self, message: dict[str, Any]) -> set[str]:
        """Channels the answered request asked for (none if it was not a subscribe)."""
        request_id = message.get("id")
        return self._pending.pop(request_id, set()) if isinstance(request_id, int) else set()

    def _result(self, message: dict[str, Any]) -> Parsed:
        result = message["result"]
        if not isinstance(result, list):
            return Parsed()  # set_heartbeat "ok", public/test {"version": ...}
        missing = sorted(self._forget(message) - {c for c in result if isinstance(c, str)})
        # Channels absent from the ack were not subscribed and will stay silent.
        return Parsed(subscribed=True, error=f"not subscribed: {', '.join(missing)}" if missing else None)

    def _notification(self, params: Any, receipt_ts_ns: int) -> Parsed:
        if not isinstance(params, dict) or not isinstance(params.get("data"), dict):
            raise FrameError("subscription notification without params.data")
        channel = params.get("channel")
        if not isinstance(channel, str):
            raise FrameError("subscription notification without a channel")
        kind, _, rest = channel.partition(".")
        if kind not in (QUOTE, TICKER):
            return Parsed()  # a channel we never asked for
        data = params["data"]
        name = data.get("instrument_name")
        instrument = self.instrument(name if isinstance(name, str) else rest.split(".")[0])
        if instrument is None:
            return Parsed()  # an instrument we do not track
        try:
            parse = self._quote if kind == QUOTE else self._funding
            event: Quote | Funding = parse(instrument, data, receipt_ts_ns)
        except KeyError as exc:
            raise FrameError(f"{channel} without field {exc}") from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise FrameError(f"{channel}: bad value: {exc}") from exc
        return Parsed(events=[event])

    @staticmethod
    def _side(price: Any, amount: Any) -> tuple[Decimal | None, Decimal | None]:
        """An empty book side (null price or zero amount) is absent, not a level at 0."""
        price_dec, amount_dec = dec(price), dec(amount)
        if price_dec is None or not amount_dec:
            return None, None
        return price_dec, amount_dec

    def _quote(self, instrument: Instrument, data: dict[str, Any], receipt_ts_ns: int) -> Quote:
        bid, bid_qty = self._side(data["best_bid_price"], data["best_bid_amount"])
        ask, ask_qty = self._side(data["best_ask_price"], data["best_ask_amount"])
        return make_quote(
            instrument,
            bid=bid,
            bid_qty=bid_qty,
            ask=ask,
            ask_qty=ask_qty,
            exchange_ts_ns=ms_to_ns(data["timestamp"]),
            receipt_ts_ns=receipt_ts_ns,
        )

    def _funding(self, instrument: Instrument, data: dict[str, Any], receipt_ts_ns: int) -> Funding:
        return make_funding(
            instrument,
            rate=dec(data["funding_8h"]),
            mark=dec(data.get("mark_price")),
            index=dec(data.get("index_price")),
            interval_h=8,
            exchange_ts_ns=ms_to_ns(data["timestamp"]),
            receipt_ts_ns=receipt_ts_ns,
        )

    # -- instruments ------------------------------------------------------
    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        instruments = []
        for row in listing[cls.instrument_paths[0]]["result"]:
            kind = KINDS.get(row.get("instrument_type"))
            if row.get("settlement_period") != "perpetual" or row.get("kind") != "future" or kind is None:
                continue
            if row.get("is_active") is False:
                continue
            # Quote amounts are already USD (inverse) or base coin (linear), so one
            # amount unit is worth 1 quote/base unit whatever the REST contract_size.
            instruments.append(
                make_instrument(
                    cls.name,
                    row["instrument_name"],
                    row["base_currency"],
                    row["quote_currency"],
                    row["settlement_currency"],
                    kind,
                    contract_size=Decimal(1),
                    tick_size=dec(row.get("tick_size")),
                    funding_interval_h=8,
                )
            )
        return instruments


# -- funding history ---------------------------------------------------------------------------
# GET /api/v2/public/get_funding_rate_history (https://docs.deribit.com/#public-get_funding_rate_
# history): instrument_name, start_timestamp, end_timestamp (ms, required); ``result`` rows
# ``{timestamp, index_price, prev_index_price, interest_1h, interest_8h}`` one an hour, oldest
# first (at most 744 per answer). Funding accrues continuously; the live feed reports
# ``funding_8h`` and the API settles it on the 8 h UTC grid, so the backfill keeps the rows on
# that grid with their trailing ``interest_8h``: the same points, the same keys. Windows of 24
# days stay under the cap; one request every 0.5 s keeps well inside the credit pool.
FUNDING_HISTORY_PATH = "/api/v2/public/get_funding_rate_history"
FUNDING_HISTORY = HistorySpec(page_size=744, paging=Paging.FORWARD, min_interval_s=0.5, max_window_ms=24 * 86_400_000)
GRID_NS = 8 * HOUR_NS


def funding_history_request(instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
    window = {"start_timestamp": str(start_ms), "end_timestamp": str(end_ms)}
    return HistoryRequest(FUNDING_HISTORY_PATH, {"instrument_name": instrument.native_symbol, **window})


def parse_funding_history(payload: Any, instrument: Instrument) -> list[FundingSettlement]:
    if isinstance(payload, dict) and "error" in payload:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: {payload['error']}")
    try:
        rows = [(ms_to_ns(r["timestamp"]), r) for r in rows_of(payload, "result")]
        return [settlement(instrument, dec(r["interest_8h"]), t, 8) for t, r in rows if t % GRID_NS == 0]
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"{FUNDING_HISTORY_PATH}: bad row ({exc!r})") from exc


VENUE = Deribit
