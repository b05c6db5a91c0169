"""Binance USDⓈ-M perpetual futures.

Docs: https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
Since 2026-04-23 book streams live under ``/public`` and mark price under
``/market``; a stream on the wrong path fails silently, so the two kinds get
separate connections. Quantities are base-asset units (``1000PEPEUSDT``
quantities count 1000-PEPE units). The server sends protocol pings every 3 min,
answered by the WebSocket library; there is no application-level ping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

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
from schemas.market import ContractKind, Instrument

BOOK = "bookTicker"
MARK = "markPrice@1s"
# The venue allows 10 incoming messages/s per connection; stay well below.
STREAMS_PER_SUBSCRIBE = 100


class Binance(Venue):
    name = "binance"
    ws_base = "wss://fstream.binance.com"
    rest_base = "https://fapi.binance.com"
    instrument_paths = ("/fapi/v1/exchangeInfo",)
    max_topics_per_connection = 1024
    topics_per_subscribe = STREAMS_PER_SUBSCRIBE
    subscribe_interval_s = 0.25
    ping_interval_s: ClassVar[float | None] = None
    stale_after_s = 30.0

    def topics(self, instrument: Instrument) -> list[str]:
        symbol = instrument.native_symbol.lower()
        return [f"{symbol}@{BOOK}", f"{symbol}@{MARK}"]

    def connections(self, ws_base: str) -> list[Connection]:
        """Book streams and mark-price streams must use different paths."""
        plans: list[Connection] = []
        for kind, suffix in (("public", BOOK), ("market", MARK)):
            topics = [t for inst in self.by_native.values() for t in self.topics(inst) if t.endswith(suffix)]
            cap = self.max_topics_per_connection
            for n, start in enumerate(range(0, len(topics), cap)):
                plans.append(
                    Connection(f"binance-{kind}-{n}", self.ws_url(ws_base, kind), tuple(topics[start : start + cap]))
                )
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
        instruments = []
        for row in listing[cls.instrument_paths[0]]["symbols"]:
            if row.get("contractType") != "PERPETUAL" or row.get("status") != "TRADING":
                continue
            tick = next((dec(f["tickSize"]) for f in row.get("filters", []) if f["filterType"] == "PRICE_FILTER"), None)
            # Quantities count units of the prefixed asset (1000PEPE), so one unit
            # is price_multiplier base units.
            _, multiplier = canonical_base(row["baseAsset"])
            instruments.append(
                make_instrument(
                    cls.name,
                    row["symbol"],
                    row["baseAsset"],
                    row["quoteAsset"],
                    row["marginAsset"],
                    ContractKind.LINEAR,
                    contract_size=multiplier,
                    tick_size=tick,
                    funding_interval_h=8,
                )
            )
        return instruments


VENUE = Binance
