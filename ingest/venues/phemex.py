"""Phemex perpetuals: COIN-M inverse (``BTCUSD``, ``cETHUSD``) and hedged USDT-M (``BTCUSDT``).

Docs: https://phemex-docs.github.io/ , https://github.com/phemex/phemex-api-docs . One socket
(``wss://ws.phemex.com``, "further URI or querystring not allowed") serves both families; the
channel picks one. COIN-M ``orderbook``/``market24h`` carry scaled integers (Ep / 10^priceScale,
Er / 10^ratioScale, per symbol from ``/public/products``), sizes in 1-USD contracts. Hedged
``orderbook_p``/``perp_market24h_pack_p`` carry decimal strings, sizes in base coin. Books are a
snapshot then increments (qty 0 deletes), merged here. ``sequence`` is shared by groups of symbols
and jumps on most increments, so only a sequence going backwards is a detectable gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

import orjson

from arbstream.errors import ConfigError
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
from schemas.market import ContractKind, Funding, Instrument

PRODUCTS_PATH = "/public/products"
COIN_BOOK, COIN_TICKER = "orderbook", "market24h"
HEDGED_BOOK, HEDGED_TICKER = "orderbook_p", "perp_market24h_pack_p"
PACK_UPDATE = "perp_market24h_pack_p.update"
NS_PER_HOUR = 3_600_000_000_000

Levels = dict[Decimal, Decimal]


class Scales(NamedTuple):
    price: int  # Ep fields are price * 10^price
    ratio: int  # Er fields are ratio * 10^ratio


# Filled by parse_instruments, keyed by native symbol: an Instrument has no field
# for the scales and the COIN-M frames do not carry them.
SCALES: dict[str, Scales] = {}


@dataclass
class _Book:
    bids: Levels = field(default_factory=dict)
    asks: Levels = field(default_factory=dict)
    sequence: int = 0


def _unscale(value: Any, power: int) -> Decimal | None:
    """A scaled integer back to its exact value, without exponent or trailing zeros."""
    if (raw := dec(value)) is None:
        return None
    result = raw.scaleb(-power)
    return result.quantize(Decimal(1)) if result == result.to_integral_value() else result.normalize()


class Phemex(Venue):
    name = "phemex"
    ws_base = "wss://ws.phemex.com"
    rest_base = "https://api.phemex.com"
    instrument_paths = (PRODUCTS_PATH,)
    # Documented: 20 subscriptions and 20 requests/s per connection, one symbol per subscribe.
    max_topics_per_connection = 20
    topics_per_subscribe = 1
    subscribe_interval_s = 0.1
    ping_interval_s: ClassVar[float | None] = 5.0  # recommended; the socket is dropped after 30 s
    stale_after_s = 70.0  # a quiet book sends nothing between its 60 s periodic snapshots

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        self._books: dict[str, _Book] = {}
        inverse = [i.native_symbol for i in self.by_native.values() if i.kind is ContractKind.INVERSE]
        if missing := [s for s in inverse if s not in SCALES]:
            raise ConfigError(f"phemex: no price/ratio scale for {missing}; load them with parse_instruments")
        self._scales = {s: SCALES[s] for s in inverse}

    # -- connection plan ---------------------------------------------------
    def topics(self, instrument: Instrument) -> list[str]:
        """Own book, plus the family's all-symbol ticker."""
        if instrument.kind is ContractKind.INVERSE:
            return [f"{COIN_BOOK}:{instrument.native_symbol}", COIN_TICKER]
        return [f"{HEDGED_BOOK}:{instrument.native_symbol}", HEDGED_TICKER]

    def connections(self, ws_base: str) -> list[Connection]:
        """Each ticker once, on the first socket (else funding arrives twice), then the books."""
        pairs = [self.topics(inst) for inst in self.by_native.values()]
        topics = list(dict.fromkeys(ticker for _, ticker in pairs)) + [book for book, _ in pairs]
        cap, url = self.max_topics_per_connection, self.ws_url(ws_base, "default")
        return [
            Connection(f"phemex-{n}", url, tuple(topics[start : start + cap]))
            for n, start in enumerate(range(0, len(topics), cap))
        ]

    def ws_url(self, ws_base: str, kind: str) -> str:
        return f"{ws_base}/"

    def subscribe_messages(self, topics: Sequence[str]) -> list[str]:
        frames = []
        for topic in topics:
            channel, _, symbol = topic.partition(":")
            frames.append(self._request(f"{channel}.subscribe", [symbol] if symbol else []))
        return frames

    def ping_message(self) -> str | None:
        return self._request("server.ping", [])

    def _request(self, method: str, params: list[str]) -> str:
        request_id = self.next_request_id()
        return orjson.dumps({"id": request_id, "method": method, "params": params}).decode()

    # -- parsing -------------------------------------------------------------
    def parse(self, frame: str | bytes, receipt_ts_ns: int) -> Parsed:
        message = load_json(frame)
        if not isinstance(message, dict):
            raise FrameError("expected a JSON object")
        try:
            if HEDGED_BOOK in message:
                return self._book(message, message[HEDGED_BOOK], None, receipt_ts_ns)
            if "book" in message:
                scales = self._scales.get(str(message.get("symbol")))
                return self._book(message, message["book"], scales, receipt_ts_ns) if scales else Parsed()
            if COIN_TICKER in message:
                return self._coin_ticker(message[COIN_TICKER], receipt_ts_ns)
            if message.get("method") == PACK_UPDATE:
                return self._hedged_pack(message, receipt_ts_ns)
        except FrameError:
            raise
        except (KeyError, TypeError, IndexError, ValueError, ArithmeticError, AttributeError) as exc:
            raise FrameError(f"malformed frame: {exc!r}") from exc
        error, result = message.get("error"), message.get("result")
        if error is not None:  # {"code": 6001, "message": "invalid argument"}
            if not isinstance(error, dict):
                raise FrameError(f"bad error field {error!r}")
            return Parsed(error=f"code {error.get('code')}: {error.get('message')}")
        # Acks carry {"status": "success"}, pongs "pong"; trades, klines, ticks are not ours.
        return Parsed(subscribed=isinstance(result, dict) and result.get("status") == "success")

    def _book(self, message: dict[str, Any], sides: Any, scales: Scales | None, receipt_ts_ns: int) -> Parsed:
        inst = self.instrument(str(message.get("symbol")))
        if inst is None or (scales is None) != (inst.kind is ContractKind.LINEAR):
            return Parsed()  # untracked, or a symbol on the other family's channel
        kind, sequence, depth = message["type"], int(message["sequence"]), int(message.get("depth") or 0)
        bids, asks = _levels(sides["bids"], scales), _levels(sides["asks"], scales)
        symbol, out = inst.native_symbol, Parsed()
        if kind not in ("snapshot", "incremental"):
            raise FrameError(f"unknown book type {kind!r}")
        known = self._books.get(symbol)
        if kind == "snapshot":
            book = self._books[symbol] = _Book()
        elif known is None:
            return out  # no snapshot yet: one follows every (re)subscription
        elif sequence <= known.sequence:
            del self._books[symbol]  # useless until the next snapshot
            out.gap = f"{symbol}: sequence {sequence} after {known.sequence}"
            return out
        else:
            book = known
        book.sequence = sequence
        _apply(book.bids, bids, depth, best_high=True)
        _apply(book.asks, asks, depth, best_high=False)
        bid = max(book.bids) if book.bids else None
        ask = min(book.asks) if book.asks else None
        bid_qty = book.bids[bid] if bid is not None else None
        ask_qty = book.asks[ask] if ask is not None else None
        ts_ns = int(message["timestamp"])
        out.events.append(make_quote(inst, bid=bid, bid_qty=bid_qty, ask=ask, ask_qty=ask_qty, sequence=sequence,
                                     exchange_ts_ns=ts_ns, receipt_ts_ns=receipt_ts_ns))  # fmt: skip
        return out

    def _coin_ticker(self, ticker: Any, receipt_ts_ns: int) -> Parsed:
        symbol = str(ticker.get("symbol"))
        inst, scales = self.instrument(symbol), self._scales.get(symbol)
        if inst is None or scales is None:
            return Parsed()
        rates = [_unscale(rate, scales.ratio) for rate in (ticker["fundingRate"], ticker.get("predFundingRate"))]
        prices = [_unscale(ticker.get(name), scales.price) for name in ("markPrice", "indexPrice")]
        return Parsed(events=[_funding(inst, int(ticker["timestamp"]), receipt_ts_ns, *rates, *prices)])

    def _hedged_pack(self, message: dict[str, Any], receipt_ts_ns: int) -> Parsed:
        """Rows of strings in the order ``fields`` names; one frame covers many symbols."""
        column = {str(name): n for n, name in enumerate(message["fields"])}
        names = ("fundingRateRr", "predFundingRateRr", "markRp", "indexRp")
        ts_ns, out = int(message["timestamp"]), Parsed()
        for row in message["data"]:
            if not isinstance(row, list) or len(row) != len(column):
                raise FrameError(f"pack row does not match fields: {row!r}")
            inst = self.instrument(str(row[column["symbol"]]))
            if inst is not None and inst.kind is ContractKind.LINEAR:
                values = [dec(row[column[name]]) for name in names]
                out.events.append(_funding(inst, ts_ns, receipt_ts_ns, *values))
        return out

    # -- instruments -----------------------------------------------------------
    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        response = listing[PRODUCTS_PATH]
        if response.get("code") != 0:
            raise FrameError(f"{PRODUCTS_PATH}: code {response.get('code')}: {response.get('msg')}")
        data, instruments = response["data"], []
        for row in data.get("products") or []:
            # COIN-M only: spot rows and the old USD-settled model (settle == quote, all delisted) are skipped.
            listed = row.get("type") == "Perpetual" and row.get("status") == "Listed"
            if listed and row["settleCurrency"] != row["quoteCurrency"]:
                ratio = row.get("ratioScale", data.get("ratioScale"))
                SCALES[row["symbol"]] = Scales(int(row["priceScale"]), int(ratio))
                instruments.append(cls._instrument(row, ContractKind.INVERSE))
        for row in data.get("perpProductsV2") or []:
            if row.get("type") == "PerpetualV2" and row.get("status") == "Listed":
                instruments.append(cls._instrument(row, ContractKind.LINEAR))
        return instruments

    @classmethod
    def _instrument(cls, row: dict[str, Any], kind: ContractKind) -> Instrument:
        if kind is ContractKind.INVERSE:
            # Settled in the base coin; contractSize reads 1.0 here, "1 USD" on the legacy endpoint.
            asset, size = row.get("baseCurrency") or row["settleCurrency"], dec(str(row["contractSize"]).split()[0])
        else:
            # baseCurrency spells the 1000x contracts "1000 PEPE"; the "u" of u1000PEPEUSDT is not part of
            # the asset. Sizes count units of that asset.
            asset = str(row.get("baseCurrency") or row["contractUnderlyingAssets"]).replace(" ", "")
            asset = asset[1:] if asset[:1] == "u" and asset[1:2].isdigit() else asset
            size = canonical_base(asset)[1]
        seconds = int(row.get("fundingInterval") or 0)  # seconds: 28800, 14400
        interval_h = seconds // 3600 if seconds >= 3600 and seconds % 3600 == 0 else None
        return make_instrument(cls.name, row["symbol"], asset, row["quoteCurrency"], row["settleCurrency"], kind,
                               contract_size=size or Decimal(1), tick_size=dec(row.get("tickSize")),
                               funding_interval_h=interval_h)  # fmt: skip


def _levels(raw: Any, scales: Scales | None) -> list[tuple[Decimal, Decimal]]:
    if not isinstance(raw, list):
        raise FrameError("book side is not a list")
    levels = []
    for price_raw, qty_raw in raw:
        price, qty = _unscale(price_raw, scales.price) if scales else dec(price_raw), dec(qty_raw)
        if price is None or qty is None:
            raise FrameError(f"empty book level {[price_raw, qty_raw]!r}")
        levels.append((price, qty))
    return levels


def _apply(levels: Levels, updates: list[tuple[Decimal, Decimal]], depth: int, *, best_high: bool) -> None:
    """Apply levels by price (qty 0 deletes), then keep the best ``depth`` (0: the full book)."""
    for price, qty in updates:
        if qty == 0:
            levels.pop(price, None)
        else:
            levels[price] = qty
    if depth and len(levels) > depth:
        for price in sorted(levels, reverse=not best_high)[: len(levels) - depth]:
            del levels[price]


def _funding(inst: Instrument, ts_ns: int, receipt_ts_ns: int, *values: Decimal | None) -> Funding:
    """From (rate, predicted, mark, index). Settlements are epoch-aligned (00/08/16 UTC for 8 h) and not
    pushed on the socket, so the next one is derived from the instrument's interval."""
    rate, predicted, mark, index = values
    step = (inst.funding_interval_h or 0) * NS_PER_HOUR
    next_ns = (ts_ns // step + 1) * step if step else None
    return make_funding(inst, rate=rate, predicted_rate=predicted, mark=mark, index=index, exchange_ts_ns=ts_ns,
                        receipt_ts_ns=receipt_ts_ns, next_funding_ts_ns=next_ns)  # fmt: skip


VENUE = Phemex
