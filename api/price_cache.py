"""``GET /api/prices`` at whole-market size: each entry serialised once, re-serialised only when it changes.

Building 6,000+ ``PriceEntry`` models per request costs ~300 ms; the answer is
mostly the same bytes every time. So each venue's entry of a symbol is kept as
JSON bytes up to its last field, ``age_ms`` (the only one that moves with the
clock), and a request only appends the age and joins. An entry is rebuilt when
its quote or funding record differs from the one it was built from, or when the
symbol's set of instruments changes (that can change which contract represents
a venue). The follower decodes a symbol's whole state per changelog record, so
unchanged quotes arrive as new but *equal* objects: they are compared by value
once, then by identity.

A request filtered to a few symbols touches only those symbols; the bytes are
the same as the models' own serialisation (a test compares them).
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import msgspec

from api.readmodel import ReadModel
from api.views_prices import iso, price_entry, primary_quotes
from api.wire import to_json
from schemas.arbitrage import SymbolState
from schemas.market import Funding, Quote

AGE_FIELD = b',"age_ms":'
"""``age_ms`` is the last field of PriceEntry: everything before it is cached."""


@dataclass(slots=True)
class _Entry:
    """One venue's entry of a symbol: the records it was built from and its bytes up to ``age_ms``."""

    quote: Quote
    funding: Funding | None
    head: bytes
    """``"venue":{...,"age_ms":`` (the key, and the value without its age)."""


@dataclass(slots=True)
class _Symbol:
    instrument_ids: frozenset[str]
    entries: list[_Entry]
    """One per venue, in venue order (the order of the uncached answer)."""
    key: bytes
    """``"BTC":`` (the JSON key)."""


def _head(venue: str, quote: Quote, state: SymbolState) -> bytes:
    body = to_json(price_entry(quote, state, quote.receipt_ts_ns))  # Decimals as JSON numbers (api/wire.py)
    cut = body.rfind(AGE_FIELD)
    # Guards the field order this cache relies on (a new field after age_ms would be cut off).
    assert cut > 0 and body[cut + len(AGE_FIELD) :] == b"0}", "age_ms must stay the last field of PriceEntry"
    return msgspec.json.encode(venue) + b":" + body[: cut + len(AGE_FIELD)]


def _same(held: object, current: object) -> bool:
    return held is current or held == current


class PriceCache:
    """Per-symbol serialised entries of one read model (see the module docstring)."""

    def __init__(self) -> None:
        self._symbols: dict[str, _Symbol] = {}
        self.rebuilt = 0
        """Entries serialised since start (a figure for tests and the benchmark)."""

    def _current(self, symbol: str, state: SymbolState) -> _Symbol:
        cached = self._symbols.get(symbol)
        quotes = state.quotes
        if cached is None or cached.instrument_ids != quotes.keys():
            cached = self._build(symbol, state)
        for i, entry in enumerate(cached.entries):
            quote, funding = quotes[entry.quote.instrument_id], state.funding.get(entry.quote.instrument_id)
            if quote is entry.quote and funding is entry.funding:
                continue
            if _same(entry.quote, quote) and _same(entry.funding, funding):
                entry.quote, entry.funding = quote, funding  # equal copy: identity from now on
                continue
            cached.entries[i] = _Entry(quote, funding, _head(quote.venue, quote, state))
            self.rebuilt += 1
        return cached

    def _build(self, symbol: str, state: SymbolState) -> _Symbol:
        entries = [
            _Entry(quote, state.funding.get(quote.instrument_id), _head(venue, quote, state))
            for venue, quote in primary_quotes(state.quotes.values()).items()
        ]
        self.rebuilt += len(entries)
        built = _Symbol(frozenset(state.quotes), entries, msgspec.json.encode(symbol) + b":")
        self._symbols[symbol] = built
        return built

    def prune(self, present: Collection[str]) -> None:
        """Drop symbols the model no longer has (tombstones), once they outnumber the model's."""
        if len(self._symbols) > len(present):
            for symbol in [s for s in self._symbols if s not in present]:
                del self._symbols[symbol]

    def symbol_pieces(
        self, symbol: str, state: SymbolState, now_ns: int, venues: Collection[str] | None
    ) -> list[bytes] | None:
        """``"BTC":{"binance":{...},...}`` in pieces, or None when ``venues`` leaves no entry.

        Pieces, not bytes: the caller joins the whole answer once (2.5 MB at market size: every
        intermediate concatenation would copy it again)."""
        cached = self._current(symbol, state)
        chosen = cached.entries if venues is None else [e for e in cached.entries if e.quote.venue in venues]
        if venues is not None and not chosen:
            return None
        pieces = [cached.key, b"{"]
        for entry in chosen:
            pieces += (entry.head, b"%d}," % (max(0, now_ns - entry.quote.receipt_ts_ns) // 1_000_000))
        if chosen:
            pieces[-1] = pieces[-1][:-1]  # no comma after the last entry
        pieces.append(b"}")
        return pieces


_caches: weakref.WeakKeyDictionary[ReadModel, PriceCache] = weakref.WeakKeyDictionary()


def cache_of(model: ReadModel) -> PriceCache:
    """The cache of ``model`` (one per read model, created on first use, gone with the model)."""
    cache = _caches.get(model)
    if cache is None:
        cache = _caches[model] = PriceCache()
    return cache


def has_venue(state: SymbolState, venues: Collection[str]) -> bool:
    return any(q.venue in venues for q in state.quotes.values())


@dataclass(frozen=True)
class PricesQuery:
    """Filters and page of ``GET /api/prices``: None = everything (the seed's unpaged answer)."""

    symbols: frozenset[str] | None = None
    venues: frozenset[str] | None = None
    limit: int | None = None
    offset: int = 0


def selected_symbols(model: ReadModel, query: PricesQuery) -> list[str]:
    """Symbols the filters keep, sorted; with ``venues``, only symbols quoted on one of them."""
    names: Iterable[str] = model.symbols if query.symbols is None else query.symbols & model.symbols.keys()
    venues = query.venues
    return sorted(s for s in names if venues is None or has_venue(model.symbols[s], venues))


def _map_pieces(model: ReadModel, names: list[str], venues: Collection[str] | None, now_ns: int) -> list[bytes]:
    """``{"BTC":{...},...}`` of ``names`` in pieces (joined once by the caller)."""
    cache = cache_of(model)
    cache.prune(model.symbols.keys())
    out = [b"{"]
    for symbol in names:
        pieces = cache.symbol_pieces(symbol, model.symbols[symbol], now_ns, venues)
        if pieces is not None:
            if len(out) > 1:
                out.append(b",")
            out += pieces
    out.append(b"}")
    return out


def prices_map_json(model: ReadModel, now_ns: int) -> bytes:
    """Every symbol's per-venue entries, ``{"BTC":{"binance":{...}},...}`` (``PricesOut.prices``): the
    WebSocket's ``initial_prices``. Each connecting client gets it, so it comes from the cache too —
    1,000 dashboards reconnecting must not build 1,000 × 6,000 models."""
    return b"".join(_map_pieces(model, sorted(model.symbols), None, now_ns))


def prices_json(model: ReadModel, query: PricesQuery, now_ns: int) -> bytes:
    """The body of ``GET /api/prices`` (shape of ``PricesOut``) as JSON bytes."""
    names = selected_symbols(model, query)
    page = names[query.offset :] if query.limit is None else names[query.offset : query.offset + query.limit]
    limit = b"null" if query.limit is None else str(query.limit).encode()
    tail = b',"total":%d,"offset":%d,"limit":%s' % (len(names), query.offset, limit)
    head = b'{"prices":'
    end = b',"timestamp":"' + iso(now_ns).encode() + b'"' + tail + b"}"
    return b"".join([head, *_map_pieces(model, page, query.venues, now_ns), end])
