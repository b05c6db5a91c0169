"""Cross-venue spread per symbol (``GET /api/spreads``): best bid anywhere against best ask anywhere.

Within one quote group (comparable contracts only), over usable quotes only —
the worker's own rule, ``processors.arbitrage.leg_problem``: both sides
present, uncrossed, fresh (``ARBSTREAM_MAX_QUOTE_AGE_MS``, per venue), venue
healthy. Prices per one base unit; the numbers come from the worker's
``evaluate`` (buy at the best ask, sell at the best bid), so fees and rounding
are the worker's. The two sides must be on different venues: when one venue
holds both the best bid and the best ask, the pair is the better of (its bid,
the best ask elsewhere) and (its ask, the best bid elsewhere) — no other
cross-venue pair has a higher gross spread. With per-venue fees a pair that is
not top-of-market can net slightly more; ``/api/arbitrage`` lists every pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from api.models import ArbitrageRow, SymbolSpreadRow
from api.readmodel import ReadModel
from api.views_arbitrage import ArbFilter, pair_row
from api.views_arbitrage import _sort_key as arbitrage_order
from api.views_prices import group_rank
from processors.arbitrage import ArbConfig, evaluate, leg_problem, per_base
from schemas.arbitrage import Opportunity, SymbolState
from schemas.market import Quote, quote_group


def usable_by_group(
    model: ReadModel, quotes: Iterable[Quote], now_ns: int, config: ArbConfig
) -> dict[str, list[Quote]]:
    """Usable quotes (the worker's leg rule) by quote group."""
    groups: dict[str, list[Quote]] = {}
    for quote in quotes:
        if leg_problem(quote, model.venue_health(quote.venue), now_ns, config) is None:
            groups.setdefault(quote_group(quote, config.quote_bridges), []).append(quote)
    return groups


def _bid_rank(q: Quote) -> tuple[Decimal, str]:
    """Highest bid first; ties to the smaller instrument id."""
    assert q.bid is not None  # usable quotes have both sides
    return -per_base(q.bid, q.price_multiplier), q.instrument_id


def _ask_rank(q: Quote) -> tuple[Decimal, str]:
    assert q.ask is not None
    return per_base(q.ask, q.price_multiplier), q.instrument_id


def top_pairs(quotes: list[Quote]) -> list[tuple[Quote, Quote]]:
    """(buy, sell) candidates: the best ask and the best bid, on different venues (see the module docstring)."""
    if len({q.venue for q in quotes}) < 2:
        return []
    best_bid, best_ask = min(quotes, key=_bid_rank), min(quotes, key=_ask_rank)
    if best_bid.venue != best_ask.venue:
        return [(best_ask, best_bid)]
    other_ask = min((q for q in quotes if q.venue != best_bid.venue), key=_ask_rank)
    other_bid = min((q for q in quotes if q.venue != best_ask.venue), key=_bid_rank)
    return [(other_ask, best_bid), (best_ask, other_bid)]


def chosen_group(groups: dict[str, list[Quote]]) -> str | None:
    """The group with most usable venues (ties: USDT, USDC, USD, USD-inverse, then by name)."""
    if not groups:
        return None
    return min(groups, key=lambda g: (-len({q.venue for q in groups[g]}), group_rank(g)))


def _row(symbol: str, group: str | None, venues: int, best: Opportunity | None) -> SymbolSpreadRow:
    if best is None:
        empty = dict.fromkeys(SymbolSpreadRow.model_fields.keys() - {"symbol", "quote_group", "usable_venues"})
        return SymbolSpreadRow(symbol=symbol, quote_group=group, usable_venues=venues, **empty)
    buy, sell = best.buy, best.sell
    return SymbolSpreadRow(
        symbol=symbol,
        quote_group=group,
        usable_venues=venues,
        buy_exchange=buy.venue,
        sell_exchange=sell.venue,
        buy_price=buy.price,
        sell_price=sell.price,
        spread=sell.price - buy.price,
        spread_percentage=best.gross_spread * 100,
        net_spread_percentage=best.net_spread * 100,
        size=best.size,
        notional=best.notional,
        buy_fee=buy.fee,
        sell_fee=sell.fee,
        buy_instrument_id=buy.instrument_id,
        sell_instrument_id=sell.instrument_id,
    )


def symbol_spread(
    model: ReadModel, symbol: str, now_ns: int, config: ArbConfig, wanted_group: str | None = None
) -> SymbolSpreadRow:
    """The cross-venue spread of one symbol (nulls when fewer than two venues have usable quotes)."""
    state = model.symbols[symbol]
    groups = usable_by_group(model, state.quotes.values(), now_ns, config)
    group = wanted_group if wanted_group is not None else chosen_group(groups)
    quotes = groups.get(group, []) if group is not None else []
    candidates = [evaluate(symbol, buy, sell, now_ns, config, now_ns) for buy, sell in top_pairs(quotes)]
    best = max(candidates, key=lambda o: o.net_spread, default=None)
    return _row(symbol, group, len({q.venue for q in quotes}), best)


def _order(row: SymbolSpreadRow) -> tuple[bool, Decimal, str]:
    net = row.net_spread_percentage
    return (net is None, -net if net is not None else Decimal(0), row.symbol)


def spread_rows(
    model: ReadModel, symbols: Iterable[str], now_ns: int, config: ArbConfig, wanted_group: str | None = None
) -> list[SymbolSpreadRow]:
    """Rows of the quoted ``symbols``, best net spread first, symbols without a usable pair last."""
    rows = [symbol_spread(model, s, now_ns, config, wanted_group) for s in symbols if model.symbols[s].quotes]
    return sorted(rows, key=_order)


def positive_rows(model: ReadModel, now_ns: int, config: ArbConfig, where: ArbFilter) -> list[ArbitrageRow]:
    """``[r for r in arbitrage_rows(model, now_ns, config, where) if r.spread_percentage > 0]``, at market size.

    ``arbitrage_rows`` evaluates every ordered pair of the market (~82,000 at 450 x 14, seconds of
    event-loop time); a positive gross spread needs the sell bid above the buy ask, so per quote
    group the bids are sorted once and each ask meets only the bids above it — usually none. Rows
    are built by the same ``pair_row`` and filtered and ordered the same way (a test compares them).
    """
    rows: list[ArbitrageRow] = []
    for symbol, state in model.symbols.items():
        if where.symbol is None or where.symbol == symbol:
            for quotes in _by_group(state.quotes.values(), config).values():
                rows += _crossing_rows(model, symbol, state, quotes, now_ns, config)
    if where.venue is not None:
        rows = [r for r in rows if where.venue in (r.buy_exchange, r.sell_exchange)]
    if where.min_spread_pct is not None:
        minimum = where.min_spread_pct
        rows = [r for r in rows if r.spread_percentage >= minimum]
    return sorted((r for r in rows if r.spread_percentage > 0), key=arbitrage_order)


def _by_group(quotes: Iterable[Quote], config: ArbConfig) -> dict[str, list[Quote]]:
    groups: dict[str, list[Quote]] = {}
    for quote in quotes:
        groups.setdefault(quote_group(quote, config.quote_bridges), []).append(quote)
    return groups


def _crossing_rows(
    model: ReadModel, symbol: str, state: SymbolState, quotes: list[Quote], now_ns: int, config: ArbConfig
) -> list[ArbitrageRow]:
    """Rows of the (buy, sell) pairs of one quote group whose sell bid is above the buy ask."""
    bids = sorted(
        ((per_base(q.bid, q.price_multiplier), q) for q in quotes if q.bid is not None and q.bid > 0),
        key=lambda pq: pq[0],
        reverse=True,
    )
    rows = []
    for buy in quotes:
        if buy.ask is None or buy.ask <= 0:
            continue
        ask = per_base(buy.ask, buy.price_multiplier)
        for bid, sell in bids:
            if bid <= ask:
                break
            row = pair_row(model, symbol, state, buy, sell, now_ns, config) if sell.venue != buy.venue else None
            if row is not None:
                rows.append(row)
    return rows
