"""REST endpoints: the seed's paths and field names, corrected semantics, plus the new ones.

Every data endpoint answers 503 (JSON body, ``Retry-After``) until the read
model has loaded the topics up to where they ended at startup: a half-loaded
model is never served as if complete (decision 0005). Unknown symbols and
venues are 404, bad parameters 422 — never the seed's 200-with-an-error; the
body keeps the seed's ``error`` field next to FastAPI's ``detail``
(:mod:`api.errors`). Bodies are encoded by ``api.wire`` (Decimals as JSON
numbers), so each route names its ``response_model`` for /docs and returns
``wire(...)``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from api.context import ApiContext, now_ns
from api.models import (
    AlertStatusOut,
    ArbitrageOut,
    ArbitrageRow,
    ArbitrageSymbolOut,
    BestPricesOut,
    EpisodesOut,
    ErrorOut,
    OpportunitiesOut,
    PricesOut,
    SpreadHistoryOut,
    SpreadOut,
    SpreadPointOut,
    SpreadsOut,
    SummaryOut,
    SymbolPricesOut,
)
from api.models_health import VenuesOut
from api.price_cache import PricesQuery, prices_json
from api.views_arbitrage import (
    ArbFilter,
    alert_status,
    arbitrage_rows,
    closed_episodes,
    common_pair,
    open_episodes,
    spread,
)
from api.views_prices import best_prices, iso, resolve_symbol, summary, symbol_prices
from api.views_spreads import positive_rows, spread_rows
from api.views_venues import known_venues, seed_venue, venues_out
from api.wire import wire
from schemas.market import Quote

router = APIRouter()

ARBITRAGE_FLOOR = 0.05
"""Default ``min_spread`` of /api/arbitrage, percent of gross spread: the seed's fixed floor."""
SYMBOL_ARBITRAGE_FLOOR = 0.1
"""Default ``min_spread`` of /api/arbitrage/{symbol}: the seed's default there."""


LOADING: dict[int | str, dict[str, Any]] = {503: {"model": ErrorOut, "description": "read model still loading"}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "unknown symbol or venue"}}


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def loaded(ctx: Annotated[ApiContext, Depends(context)]) -> ApiContext:
    """503 while the model is loading or not live (follower failed/restarting): never a frozen model as 200."""
    problem = ctx.not_live()
    if problem is not None:
        raise HTTPException(503, detail=problem, headers={"Retry-After": "1"})
    return ctx


Ctx = Annotated[ApiContext, Depends(loaded)]
SymbolPath = Annotated[
    str, Path(description="canonical base (BTC); seed spellings like BTCUSDT are accepted", max_length=64)
]
Limit = Annotated[int, Query(ge=1, le=1000, description="maximum rows")]
MinSpread = Annotated[
    float | None,
    Query(
        ge=-100,
        le=100,
        allow_inf_nan=False,
        description="minimum gross spread_percentage, in percent; default: the seed's floor (see `all`)",
    ),
]
AllRows = Annotated[
    bool,
    Query(
        alias="all",
        description="every ordered pair, negative spreads included (the full signed matrix); "
        "min_spread still applies when given",
    ),
]
VenueQuery = Annotated[str | None, Query(max_length=64, description="only rows with a leg on this venue")]
SymbolQuery = Annotated[str | None, Query(max_length=64, description="only this symbol")]


def _symbol(ctx: ApiContext, raw: str) -> str:
    symbol = resolve_symbol(ctx.model, ctx.universe, raw)
    if symbol is None:
        raise HTTPException(404, detail=f"unknown symbol {raw[:64]!r}")
    return symbol


def _venue(ctx: ApiContext, raw: str | None) -> str | None:
    if raw is None:
        return None
    venue = seed_venue(raw)
    if venue not in known_venues(ctx.model, ctx.universe):
        raise HTTPException(404, detail=f"unknown venue {raw[:64]!r}")
    return venue


def _decimal(value: float | None) -> Decimal | None:
    return Decimal(str(value)) if value is not None else None


NameList = Annotated[
    str | None,
    Query(
        max_length=20_000,
        pattern=r"[^,\s]",  # at least one name: an empty list is a client bug, not "everything"
        description="comma list; unknown names answer 404",
        examples=["BTC,ETH"],
    ),
]
PageLimit = Annotated[int | None, Query(ge=1, le=10_000, description="page size, symbols; default: all")]
PageOffset = Annotated[int, Query(ge=0, le=1_000_000, description="symbols to skip (sorted by name)")]


def _names(raw: str) -> list[str]:
    return list(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))


def _symbol_set(ctx: ApiContext, raw: str | None) -> frozenset[str] | None:
    """Canonical symbols of a ``symbols=`` list (seed spellings accepted), or 404 naming the unknown ones."""
    if raw is None:
        return None
    known = ctx.model.symbols
    pairs = [(n, n if n in known else resolve_symbol(ctx.model, ctx.universe, n)) for n in _names(raw)]
    unknown = [n for n, symbol in pairs if symbol is None]
    if unknown:
        raise HTTPException(404, detail=f"unknown symbol(s) {', '.join(unknown)[:200]}")
    return frozenset(symbol for _, symbol in pairs if symbol is not None)


def _venue_set(ctx: ApiContext, raw: str | None) -> frozenset[str] | None:
    if raw is None:
        return None
    names = [seed_venue(n) for n in _names(raw)]
    # Configured and reporting venues first: scanning every quote only when a name is not among them.
    maybe = set(names) - ctx.universe.venues - {h.venue for h in ctx.model.health.by_connection.values()}
    unknown = sorted(maybe - known_venues(ctx.model, ctx.universe)) if maybe else []
    if unknown:
        raise HTTPException(404, detail=f"unknown venue(s) {', '.join(unknown)[:200]}")
    return frozenset(names)


@router.get("/api/prices", response_model=PricesOut, responses=LOADING | NOT_FOUND)
async def prices(
    ctx: Ctx,
    symbols: NameList = None,
    venues: NameList = None,
    limit: PageLimit = None,
    offset: PageOffset = 0,
) -> Response:
    """Latest quote per symbol and venue, per base unit; `price` is the mid (see `price_source`).

    Without parameters: every symbol (the seed's answer). `symbols` and `venues` filter (a venue filter
    leaves out symbols not quoted there); `limit`/`offset` page through the symbols sorted by name."""
    query = PricesQuery(_symbol_set(ctx, symbols), _venue_set(ctx, venues), limit, offset)
    return Response(prices_json(ctx.model, query, now_ns()), media_type="application/json")


@router.get("/api/prices/{symbol}", response_model=SymbolPricesOut, responses=LOADING | NOT_FOUND)
async def prices_of(ctx: Ctx, symbol: SymbolPath) -> Response:
    """One symbol: the per-venue map of /api/prices plus every instrument (all quote groups)."""
    return wire(symbol_prices(ctx.model, _symbol(ctx, symbol), now_ns()))


@router.get("/api/best-prices/{symbol}", response_model=BestPricesOut, responses=LOADING | NOT_FOUND)
async def best_prices_of(
    ctx: Ctx,
    symbol: SymbolPath,
    quote_group: Annotated[
        str | None, Query(max_length=32, description="USDT, USDC, USD, USD-inverse; default: the largest group")
    ] = None,
) -> Response:
    """Best bid and best ask across venues, among comparable contracts only (one quote group)."""
    out = best_prices(ctx.model, _symbol(ctx, symbol), quote_group, now_ns(), ctx.config)
    if out is None:
        raise HTTPException(404, detail=f"no usable quotes of {symbol[:64]!r} in quote group {quote_group!r}")
    return wire(out)


@router.get("/api/summary", response_model=SummaryOut, responses=LOADING)
async def market_summary(ctx: Ctx) -> Response:
    """Counters; `last_update` is the time of the last tick (epoch seconds), not of the request."""
    return wire(summary(ctx.model, now_ns()))


@router.get("/api/spreads", response_model=SpreadsOut, responses=LOADING | NOT_FOUND)
async def spreads(
    ctx: Ctx,
    symbols: NameList = None,
    quote_group: Annotated[
        str | None,
        Query(
            max_length=32,
            description="USDT, USDC, USD, USD-inverse; default: per symbol, the group with most usable venues",
        ),
    ] = None,
    limit: PageLimit = None,
    offset: PageOffset = 0,
) -> Response:
    """Cross-venue spread per symbol: best usable bid anywhere against best usable ask anywhere (other
    venue, same quote group), gross and net of both taker fees; best net first."""
    wanted = _symbol_set(ctx, symbols)
    names = ctx.model.symbols.keys() if wanted is None else wanted & ctx.model.symbols.keys()
    now = now_ns()
    rows = spread_rows(ctx.model, names, now, ctx.config, quote_group)
    page = rows[offset:] if limit is None else rows[offset : offset + limit]
    return wire(SpreadsOut(spreads=page, total=len(rows), offset=offset, limit=limit, timestamp=iso(now)))


def _floor(min_spread: float | None, every_pair: bool, default: float) -> Decimal | None:
    """The seed listed opportunities above a floor; ``all=true`` drops the default one."""
    if min_spread is not None:
        return _decimal(min_spread)
    return None if every_pair else _decimal(default)


def _rows(ctx: ApiContext, where: ArbFilter) -> list[ArbitrageRow]:
    """With a positive floor only crossing pairs can qualify: found without evaluating every pair."""
    floor = where.min_spread_pct
    every = arbitrage_rows if floor is None or floor <= 0 else positive_rows
    return every(ctx.model, now_ns(), ctx.config, where)


@router.get("/api/arbitrage", response_model=ArbitrageOut, responses=LOADING | NOT_FOUND)
async def arbitrage(
    ctx: Ctx,
    min_spread: MinSpread = None,
    limit: Limit = 20,
    venue: VenueQuery = None,
    symbol: SymbolQuery = None,
    every_pair: AllRows = False,
) -> Response:
    """Opportunities with a gross spread of at least `min_spread` % (default 0.05, the seed's floor), on
    executable prices (ask to buy, bid to sell), best net first; `all=true` lists every ordered pair."""
    floor = _floor(min_spread, every_pair, ARBITRAGE_FLOOR)
    where = ArbFilter(floor, _venue(ctx, venue), _symbol(ctx, symbol) if symbol is not None else None)
    rows = _rows(ctx, where)
    return wire(ArbitrageOut(opportunities=rows[:limit], min_spread=floor, timestamp=iso(now_ns())))


@router.get("/api/arbitrage/{symbol}", response_model=ArbitrageSymbolOut, responses=LOADING | NOT_FOUND)
async def arbitrage_of(
    ctx: Ctx,
    symbol: SymbolPath,
    min_spread: MinSpread = None,
    limit: Limit = 50,
    venue: VenueQuery = None,
    every_pair: AllRows = False,
) -> Response:
    """The rows of /api/arbitrage for one symbol; default floor 0.1 % (the seed's default here)."""
    name = _symbol(ctx, symbol)
    floor = _floor(min_spread, every_pair, SYMBOL_ARBITRAGE_FLOOR)
    rows = _rows(ctx, ArbFilter(floor, _venue(ctx, venue), name))
    out = ArbitrageSymbolOut(symbol=name, opportunities=rows[:limit], min_spread=floor, timestamp=iso(now_ns()))
    return wire(out)


Venue1 = Annotated[str, Path(max_length=64)]
Venue2 = Annotated[str, Path(max_length=64)]


def _spread_pair(ctx: ApiContext, symbol: str, ex1: str, ex2: str) -> tuple[str, Quote, Quote]:
    """The symbol and the two venues' compared contracts, or 404/422 (both spread endpoints)."""
    name = _symbol(ctx, symbol)
    v1, v2 = _venue(ctx, ex1), _venue(ctx, ex2)
    assert v1 is not None and v2 is not None
    if v1 == v2:
        error = {"type": "value_error", "loc": ("path", "ex2"), "msg": "ex2 must differ from ex1", "input": ex2}
        raise RequestValidationError([error])
    state = ctx.model.symbols.get(name)
    pair = common_pair(state, v1, v2, ctx.config.quote_bridges) if state is not None else None
    if pair is None:
        raise HTTPException(404, detail=f"{v1} and {v2} have no comparable {name} contracts with quotes")
    return name, pair[0], pair[1]


@router.get("/api/spread/{symbol}/{ex1}/{ex2}", response_model=SpreadOut, responses=LOADING | NOT_FOUND)
async def spread_between(ctx: Ctx, symbol: SymbolPath, ex1: Venue1, ex2: Venue2) -> Response:
    """Reference-price spread between two venues, and the executable rows in both directions."""
    name, q1, q2 = _spread_pair(ctx, symbol, ex1, ex2)
    return wire(spread(ctx.model, name, q1, q2, now_ns(), ctx.config))


@router.get("/api/spread/{symbol}/{ex1}/{ex2}/history", response_model=SpreadHistoryOut, responses=LOADING | NOT_FOUND)
async def spread_history(
    ctx: Ctx,
    symbol: SymbolPath,
    ex1: Venue1,
    ex2: Venue2,
    seconds: Annotated[int, Query(ge=1, le=3600, description="window: samples of the last N seconds")] = 600,
) -> Response:
    """`spread` and `spread_percentage` of /api/spread over time, oldest first: one sample per state change
    of the symbol (at most one per `interval_ms`), kept in memory by this API process since it loaded."""
    name, q1, q2 = _spread_pair(ctx, symbol, ex1, ex2)
    now = now_ns()
    history = ctx.model.history
    samples = history.since(name, q1.venue, q2.venue, now - seconds * 1_000_000_000) if history is not None else []
    out = SpreadHistoryOut(
        symbol=name,
        exchange1=q1.venue,
        exchange2=q2.venue,
        seconds=seconds,
        interval_ms=history.interval_ms if history is not None else 0,
        points=[SpreadPointOut(ts_ns=s.ts_ns, spread=s.spread, spread_percentage=s.spread_percentage) for s in samples],
        timestamp=iso(now),
    )
    return wire(out)


@router.get("/api/arbitrage/{symbol}/alert-status", response_model=AlertStatusOut, responses=LOADING | NOT_FOUND)
async def alert_status_of(ctx: Ctx, symbol: SymbolPath) -> Response:
    """The symbol's alert cooldown, from the worker's table (ARBSTREAM_COOLDOWN_S)."""
    return wire(alert_status(ctx.model, _symbol(ctx, symbol), now_ns(), ctx.config))


@router.get("/api/opportunities", response_model=OpportunitiesOut, responses=LOADING | NOT_FOUND)
async def opportunities(
    ctx: Ctx,
    symbol: SymbolQuery = None,
    venue: VenueQuery = None,
    min_net_spread: Annotated[
        float | None, Query(ge=-1, le=1, allow_inf_nan=False, description="fraction, like net_spread")
    ] = None,
    limit: Limit = 100,
) -> Response:
    """Open arbitrage episodes (live, from the worker's table) and the latest alerts."""
    where = ArbFilter(None, _venue(ctx, venue), _symbol(ctx, symbol) if symbol is not None else None)
    return wire(open_episodes(ctx.model, now_ns(), where, _decimal(min_net_spread), limit))


@router.get("/api/episodes", response_model=EpisodesOut, responses=LOADING | NOT_FOUND)
async def episodes(
    ctx: Ctx,
    symbol: SymbolQuery = None,
    venue: VenueQuery = None,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Response:
    """Closed episodes (from `opportunity-episodes`), latest first, paged."""
    where = ArbFilter(None, _venue(ctx, venue), _symbol(ctx, symbol) if symbol is not None else None)
    return wire(closed_episodes(ctx.model, now_ns(), where, limit, offset))


@router.get("/api/venues", response_model=VenuesOut, responses=LOADING)
async def venues(ctx: Ctx) -> Response:
    """Every venue configured, quoting or reporting health: connection state, rates, quotes, fee."""
    now = now_ns()
    return wire(VenuesOut(venues=venues_out(ctx.model, ctx.universe, now, ctx.config), timestamp=iso(now)))
