"""Phemex perpetuals: COIN-M inverse (``BTCUSD``, ``cETHUSD``) and hedged USDT-M (``BTCUSDT``).

Docs: https://phemex-docs.github.io/ , https://github.com/phemex/phemex-api-docs . One socket
(``wss://ws.phemex.com``, "further URI or querystring not allowed") serves both families; the
channel picks one. COIN-M ``orderbook``/``market24h`` carry scaled integers (Ep / 10^priceScale,
Er / 10^ratioScale, per symbol from ``/public/products``), sizes in 1-USD contracts. Hedged
``orderbook_p``/``perp_market24h_pack_p`` carry decimal strings, sizes in base coin. Books are a
snapshot then increments (qty 0 deletes), merged here. ``sequence`` is shared by groups of symbols
and jumps on most increments, so only a sequence going backwards is a detectable gap.

At whole-market scale (~300 hedged perpetuals): "Each Client has concurrent connection limit to
*5* in maximum. Each connection has subscription limit to *20* in maximum. Each connection has
throttle limit to *20* request/s." (https://phemex-docs.github.io/ "Websocket API Standards",
source ``phemex-docs/phemex-docs.github.io`` ``source/includes/_contract.md``; the same in
``phemex/phemex-api-docs`` ``Public-Hedged-Perpetual-API.md``). 100 subscriptions in all, and a
book takes one per symbol, so:

- the all-market channels carry the whole family: ``perp_market24h_pack_p`` (every hedged symbol,
  "every 1 second"; ~3 s on the wire per [AO] ``phemex/websocket.md`` §2) now has ``bidRp`` and
  ``askRp`` next to mark, index and funding (current docs, "Subscribe 24 Hours Ticker"), and
  ``market24h`` every COIN-M symbol's funding. Each is one subscription.
- the remaining budget (at most ``MAX_CONNECTIONS`` x ``max_topics_per_connection`` minus those
  channels) buys 30-level books: every COIN-M symbol first (the pack has no COIN-M prices, and
  there are few), then the hedged symbols with the largest 24 h quote volume.
- a hedged symbol without a book is quoted from the pack: prices without sizes (the pack has
  none), so the dashboard shows it but the detector does not take it as a leg. The pack's prices
  are not used for a symbol whose book streams (a book frame in the last ``BOOK_FRESH_NS``,
  process-wide: books and the pack ride on different sockets), so the sized quote wins.
- 24 h volume: ``GET /md/v3/ticker/24hr/all`` (every hedged symbol in one GET, ``turnoverRv`` in
  the settle currency) fetched with the listing; optional, older files give None.
- Open interest: the same rows' ``openInterestRv`` is a quantity of the named asset despite its
  "value" suffix (ccxt's documented sample: ``openInterestRv`` 1323.596 beside ``volumeRq`` 7406.95
  BTC and ``turnoverRv`` 124.8M USDT on BTCUSDT), so ``open_interest_quote`` = openInterestRv x
  ``markRp``. COIN-M (inverse) tickers are not fetched: None there.
- Funding interval: ``fundingInterval`` (seconds) per product in the listing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

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
)
from plumbing.errors import ConfigError
from schemas.market import ContractKind, Funding, Instrument

PRODUCTS_PATH = "/public/products"
TICKERS_PATH = "/md/v3/ticker/24hr/all"
MAX_CONNECTIONS = 5
BOOK_FRESH_NS = 75_000_000_000  # a quiet book still sends its periodic snapshot every 60 s
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
_LEGACY_USD = re.compile(r"[A-Z0-9]+USD")
SCALES: dict[str, Scales] = {}
# Receipt time of the last book frame per symbol, for every connection of this process: the pack's
# size-less prices are withheld for a symbol whose book streams on another socket.
BOOK_SEEN: dict[str, int] = {}


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
    instrument_paths = (PRODUCTS_PATH, TICKERS_PATH)
    optional_instrument_paths = frozenset({TICKERS_PATH})  # volumes only
    # Documented: 5 connections, 20 subscriptions and 20 requests/s per connection, one symbol a subscribe.
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
        self._booked = self._choose_books()

    # -- connection plan ---------------------------------------------------
    def _choose_books(self) -> set[str]:
        """Symbols worth one of the budget's book subscriptions: COIN-M first, then by 24 h volume."""
        instruments = list(self.by_native.values())
        channels = len({COIN_TICKER if i.kind is ContractKind.INVERSE else HEDGED_TICKER for i in instruments})
        budget = MAX_CONNECTIONS * self.max_topics_per_connection - channels

        def rank(inst: Instrument) -> tuple[bool, bool, Decimal, str]:
            volume = inst.volume_24h_quote
            return (inst.kind is ContractKind.LINEAR, volume is None, -(volume or Decimal(0)), inst.native_symbol)

        return {i.native_symbol for i in sorted(instruments, key=rank)[:budget]}

    def topics(self, instrument: Instrument) -> list[str]:
        """The family's all-symbol ticker, plus the symbol's own book if the budget buys one."""
        inverse = instrument.kind is ContractKind.INVERSE
        ticker, book = (COIN_TICKER, COIN_BOOK) if inverse else (HEDGED_TICKER, HEDGED_BOOK)
        booked = instrument.native_symbol in self._booked
        return [f"{book}:{instrument.native_symbol}", ticker] if booked else [ticker]

    def connections(self, ws_base: str) -> list[Connection]:
        """Each ticker once, on the first socket (else funding arrives twice), then the books:
        at most ``MAX_CONNECTIONS`` sockets of 20 subscriptions."""
        per_instrument = [self.topics(inst) for inst in self.by_native.values()]
        tickers = [t for topics in per_instrument for t in topics if ":" not in t]
        books = [t for topics in per_instrument for t in topics if ":" in t]
        topics = list(dict.fromkeys(tickers)) + books
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
        BOOK_SEEN[symbol] = receipt_ts_ns
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
        """Rows of strings in the order ``fields`` names; one frame covers many symbols. Funding for
        every row; prices (no sizes) for a symbol whose book does not stream."""
        column = {str(name): n for n, name in enumerate(message["fields"])}
        names = ("fundingRateRr", "predFundingRateRr", "markRp", "indexRp")
        quoted = "bidRp" in column and "askRp" in column  # the older format has no prices
        ts_ns, out = int(message["timestamp"]), Parsed()
        for row in message["data"]:
            if not isinstance(row, list) or len(row) != len(column):
                raise FrameError(f"pack row does not match fields: {row!r}")
            inst = self.instrument(str(row[column["symbol"]]))
            if inst is None or inst.kind is not ContractKind.LINEAR:
                continue
            out.events.append(_funding(inst, ts_ns, receipt_ts_ns, *(dec(row[column[n]]) for n in names)))
            # A book seen "later" than this frame is from an earlier replay of the same recording
            # in this process: ignored, so a replay parses the same as live.
            since_book = receipt_ts_ns - BOOK_SEEN.get(inst.native_symbol, receipt_ts_ns + 1)
            if quoted and not 0 <= since_book <= BOOK_FRESH_NS:
                bid, ask = dec(row[column["bidRp"]]), dec(row[column["askRp"]])
                if bid is not None or ask is not None:
                    out.events.append(make_quote(inst, bid=bid, bid_qty=None, ask=ask, ask_qty=None,
                                                 exchange_ts_ns=ts_ns, receipt_ts_ns=receipt_ts_ns))  # fmt: skip
        return out

    # -- instruments -----------------------------------------------------------
    @classmethod
    def untracked_reason(cls, native_symbol: str) -> str | None:
        # XRPUSD, LINKUSD, ...: the retired USD-settled model (skipped in the listing too); BTCUSD is COIN-M.
        if _LEGACY_USD.fullmatch(native_symbol) and native_symbol != "BTCUSD":
            return "Phemex legacy USD-settled contract (retired; arbstream tracks COIN-M and USDT-M)"
        return None

    @classmethod
    def parse_instruments(cls, listing: dict[str, Any]) -> list[Instrument]:
        instruments = cls._products(listing[PRODUCTS_PATH])
        volumes, depths = _volumes(listing.get(TICKERS_PATH)), _open_interest(listing.get(TICKERS_PATH))
        return [
            msgspec.structs.replace(
                i, volume_24h_quote=volumes.get(i.native_symbol), open_interest_quote=depths.get(i.native_symbol)
            )
            for i in instruments
        ]

    @classmethod
    def _products(cls, response: dict[str, Any]) -> list[Instrument]:
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


def _volumes(response: Any) -> dict[str, Decimal | None]:
    """24 h turnover per hedged symbol from ``/md/v3/ticker/24hr/all`` (absent in older files)."""
    if response is None:
        return {}
    try:
        return {row["symbol"]: dec(row.get("turnoverRv")) for row in response["result"]}
    except (KeyError, TypeError, AttributeError) as exc:
        raise FrameError(f"{TICKERS_PATH}: unexpected response {exc!r}") from exc


def _open_interest(response: Any) -> dict[str, Decimal]:
    """Open interest per hedged symbol: ``openInterestRv`` (units of the named asset) x ``markRp``."""
    if response is None:
        return {}
    depths = {}
    for row in response["result"]:  # shape checked by _volumes
        held, mark = dec(row.get("openInterestRv")), dec(row.get("markRp"))
        if held is not None and mark is not None:
            depths[row["symbol"]] = held * mark
    return depths


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


# -- funding history ---------------------------------------------------------------------------
# Not backfilled (decision 0023): Phemex serves history per funding-rate *index* symbol
# (GET /api-data/public/data/funding-rate-history?symbol=.BTCFR8H, https://phemex-docs.github.io/
# #query-funding-rate-history), and the mapping from a contract to its index symbol (per
# settlement currency and interval) is not verified here.
FUNDING_HISTORY = None


VENUE = Phemex
