"""Price views over the read model: /api/prices, /api/best-prices, /api/summary.

Every price leaves here per ONE base unit (``processors.arbitrage.per_base``),
so a ``1000PEPE`` quote compares directly with a plain ``PEPE`` one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from api.models import BestGroup, BestPricesOut, BestQuote, PriceEntry, PricesOut, SummaryOut, SymbolPricesOut
from api.readmodel import ReadModel
from api.universe import Universe
from processors.arbitrage import UNHEALTHY, ArbConfig, per_base
from schemas.arbitrage import SymbolState
from schemas.market import Quote, quote_group

GROUP_ORDER = ("USDT", "USDC", "USD", "USD-inverse")
"""Which contract represents a venue when only one can (seed-shaped maps keyed by venue)."""

SEED_SUFFIXES = ("USDT", "USDC", "USD", "PERP")
"""Seed clients say BTCUSDT / BTC-USDT where arbstream says BTC."""


def iso(ts_ns: int) -> str:
    moment = datetime.fromtimestamp(ts_ns / 1e9, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms(ts_ns: int) -> int:
    return ts_ns // 1_000_000


def epoch_seconds(ts_ns: int) -> Decimal:
    """The seed's time unit (``time.time()``): seconds, exact to the millisecond."""
    return Decimal(ts_ns // 1_000_000).scaleb(-3)


def age_ms(now_ns: int, ts_ns: int) -> int:
    return max(0, now_ns - ts_ns) // 1_000_000


def group_rank(group: str) -> tuple[int, str]:
    return (GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER), group)


def resolve_symbol(model: ReadModel, universe: Universe, raw: str) -> str | None:
    """The canonical symbol for a path parameter, or None when nobody knows it."""
    known = model.symbols.keys() | universe.symbols
    candidate = raw.strip().upper().replace("-", "").replace("_", "").replace("/", "")
    if candidate in known:
        return candidate
    for suffix in SEED_SUFFIXES:
        if candidate.endswith(suffix) and candidate[: -len(suffix)] in known:
            return candidate[: -len(suffix)]
    return None


def reference_price(quote: Quote) -> tuple[Decimal | None, str]:
    if quote.bid is not None and quote.ask is not None:
        return (quote.bid + quote.ask) / 2, "mid"
    if quote.last is not None:
        return quote.last, "last"
    if quote.mark is not None:
        return quote.mark, "mark"
    return None, "none"


def _scaled(value: Decimal | None, multiplier: Decimal) -> Decimal | None:
    return None if value is None else per_base(value, multiplier)


def price_entry(quote: Quote, state: SymbolState, now_ns: int) -> PriceEntry:
    m = quote.price_multiplier
    price, source = reference_price(quote)
    funding = state.funding.get(quote.instrument_id)
    crossed = quote.bid is not None and quote.ask is not None and quote.bid >= quote.ask
    return PriceEntry(
        venue=quote.venue,
        instrument_id=quote.instrument_id,
        native_symbol=quote.native_symbol,
        quote_group=quote_group(quote),
        price=_scaled(price, m),
        price_source=source,  # type: ignore[arg-type]  # one of the literal values above
        bid=_scaled(quote.bid, m),
        ask=_scaled(quote.ask, m),
        bid_size=quote.bid_size,
        ask_size=quote.ask_size,
        last=_scaled(quote.last, m),
        mark=_scaled(quote.mark, m),
        price_multiplier=m,
        funding_rate=funding.rate if funding is not None else None,
        crossed=crossed,
        timestamp=ms(quote.exchange_ts_ns),
        exchange_ts_missing=quote.exchange_ts_missing,
        receipt_timestamp=ms(quote.receipt_ts_ns),
        age_ms=age_ms(now_ns, quote.receipt_ts_ns),
    )


def primary_quotes(quotes: Iterable[Quote]) -> dict[str, Quote]:
    """One quote per venue: the contract of the most common quote group (see GROUP_ORDER)."""
    chosen: dict[str, Quote] = {}
    for quote in sorted(quotes, key=lambda q: (group_rank(quote_group(q)), q.instrument_id)):
        chosen.setdefault(quote.venue, quote)
    return dict(sorted(chosen.items()))


def venue_prices(state: SymbolState, now_ns: int) -> dict[str, PriceEntry]:
    return {venue: price_entry(q, state, now_ns) for venue, q in primary_quotes(state.quotes.values()).items()}


def all_prices(model: ReadModel, now_ns: int) -> PricesOut:
    prices = {symbol: venue_prices(state, now_ns) for symbol, state in sorted(model.symbols.items())}
    return PricesOut(prices=prices, timestamp=iso(now_ns), total=len(prices))


def symbol_prices(model: ReadModel, symbol: str, now_ns: int) -> SymbolPricesOut:
    state = model.symbols.get(symbol, SymbolState())
    instruments = [price_entry(q, state, now_ns) for _, q in sorted(state.quotes.items())]
    return SymbolPricesOut(
        symbol=symbol, prices=venue_prices(state, now_ns), instruments=instruments, timestamp=iso(now_ns)
    )


def _side_usable(quote: Quote, model: ReadModel, now_ns: int, config: ArbConfig) -> bool:
    """A best bid/ask must be worth hitting: fresh, from a healthy venue, from a sane book."""
    if quote.bid is not None and quote.ask is not None and quote.bid >= quote.ask:
        return False
    if now_ns - quote.receipt_ts_ns > config.max_age_ns(quote.venue):
        return False
    health = model.venue_health(quote.venue)
    return health is None or health.state not in UNHEALTHY


def _best(quotes: list[Quote], side: str, now_ns: int) -> BestQuote | None:
    priced = [(per_base(getattr(q, side), q.price_multiplier), q) for q in quotes if getattr(q, side) is not None]
    priced = [(p, q) for p, q in priced if p > 0]
    if not priced:
        return None
    ordered = sorted(priced, key=lambda pq: (pq[0], pq[1].instrument_id))
    price, quote = ordered[-1] if side == "bid" else ordered[0]
    return BestQuote(
        price=price,
        size=quote.bid_size if side == "bid" else quote.ask_size,
        exchange=quote.venue,
        venue=quote.venue,
        instrument_id=quote.instrument_id,
        timestamp=ms(quote.exchange_ts_ns),
        age_ms=age_ms(now_ns, quote.receipt_ts_ns),
    )


def best_group(group: str, quotes: list[Quote], now_ns: int) -> BestGroup:
    bid, ask = _best(quotes, "bid", now_ns), _best(quotes, "ask", now_ns)
    spread = ask.price - bid.price if bid is not None and ask is not None else None
    pct = spread / ask.price * 100 if spread is not None and ask is not None else None
    return BestGroup(quote_group=group, best_bid=bid, best_ask=ask, spread=spread, spread_percentage=pct)


def best_prices(
    model: ReadModel, symbol: str, wanted_group: str | None, now_ns: int, config: ArbConfig
) -> BestPricesOut | None:
    """Best bid/ask within one quote group (``wanted_group``, else the largest); None if that group is unknown."""
    state = model.symbols.get(symbol, SymbolState())
    usable = [q for q in state.quotes.values() if _side_usable(q, model, now_ns, config)]
    groups: dict[str, list[Quote]] = {}
    for quote in usable:
        groups.setdefault(quote_group(quote, config.quote_bridges), []).append(quote)
    by_group = {g: best_group(g, qs, now_ns) for g, qs in sorted(groups.items())}
    if wanted_group is None:
        ranked = sorted(groups, key=lambda g: (-len(groups[g]), group_rank(g)))
        wanted_group = ranked[0] if ranked else GROUP_ORDER[0]
    elif wanted_group not in by_group:
        return None
    top = by_group.get(wanted_group, best_group(wanted_group, [], now_ns))
    return BestPricesOut(**dict(top), symbol=symbol, by_quote_group=by_group, timestamp=iso(now_ns))


def summary(model: ReadModel, now_ns: int) -> SummaryOut:
    symbols = sorted(s for s, state in model.symbols.items() if state.quotes)
    venues = sorted({q.venue for state in model.symbols.values() for q in state.quotes.values()})
    opened = sum(1 for state in model.symbols.values() for e in state.episodes.values() if e.opened)
    last = model.last_tick_ts_ns
    return SummaryOut(
        total_symbols=len(symbols),
        total_exchanges=len(venues),
        symbols=symbols,
        exchanges=venues,
        price_count=sum(len(state.quotes) for state in model.symbols.values()),
        open_opportunities=opened,
        last_update=epoch_seconds(last) if last is not None else None,
        last_update_ms=ms(last) if last is not None else None,
        last_update_iso=iso(last) if last is not None else None,
        timestamp=iso(now_ns),
    )
