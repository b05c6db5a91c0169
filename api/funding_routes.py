"""REST endpoints of the funding terminal: the seed's paths and parameters (issue 15).

``/api/funding-table/``, ``/api/best-opportunities/``, ``/api/coin-detail/{symbol}/`` and
``/api/stats/`` keep the seed's paths (with their trailing slash), parameters and field names;
``/api/funding-history/{symbol}`` is new. Every APR is annualised from its venue's own interval
and best opportunities are pairs (see :mod:`api.funding_models`). 503 while the read model
loads, 404 for unknown symbols and venues, 422 for bad parameters, like every data endpoint.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import StringConstraints

from api.context import ApiContext, now_ns
from api.funding_coin_views import coin_detail, funding_history, funding_stats
from api.funding_feed import FundingFeed
from api.funding_math import Floors
from api.funding_models import CoinDetailOut, FundingHistoryOut, FundingStatsOut, FundingTableOut, PairsOut
from api.funding_pair_views import best_pairs
from api.funding_stream import FundingAlertsOut, FundingPublisher, alert_out, episode_out
from api.funding_views import FundingInputs, funding_table
from api.routes import LOADING, NOT_FOUND, Ctx, SymbolPath, _symbol
from api.supervise import Backoff, Supervisor
from api.views_venues import known_venues
from api.wire import wire

router = APIRouter(tags=["funding"])

Exchanges = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None,
    Query(description="only these venues (repeatable, or a comma list); unknown names answer 404", max_length=100),
]
Search = Annotated[str | None, Query(max_length=64, description="symbols containing this text")]
MinVolume = Annotated[
    float | None,
    Query(
        ge=0,
        allow_inf_nan=False,
        description="liquidity floor: 24 h traded notional (quote currency) per instrument; "
        "an instrument whose venue publishes no volume is left out when a floor is set",
    ),
]
MinOpenInterest = Annotated[
    float | None,
    Query(
        ge=0,
        allow_inf_nan=False,
        description="open-interest floor: open interest as quote notional per instrument; an instrument "
        "whose venue publishes no open interest (Binance, Deribit, CoinDCX, CoinEx and Phemex inverse) is "
        "left out when a floor is set",
    ),
]
PageNumber = Annotated[int, Query(ge=1, le=100_000)]


def attach_funding(ctx: ApiContext) -> None:
    """Create the funding feed and its supervised task (called by ``api.main.build_context``)."""
    settings = ctx.settings
    ctx.funding = FundingFeed(ctx.model, settings.namespace, settings.topic_partitions, ctx.bootstrap)
    backoff = Backoff(settings.task_backoff_initial_s, settings.task_backoff_max_s)
    ctx.tasks.append(Supervisor("funding-feed", ctx.funding.run, critical=False, backoff=backoff))
    publisher = FundingPublisher(ctx)
    ctx.funding.listeners.append(publisher.on_alerts)
    ctx.tasks.append(Supervisor("funding-push", publisher.run, critical=False, backoff=backoff))


def _inputs(ctx: ApiContext) -> FundingInputs:
    assert ctx.funding is not None, "attach_funding(ctx) not called"
    return FundingInputs(
        model=ctx.model,
        universe=ctx.universe,
        feed=ctx.funding,
        config=ctx.config,
        max_funding_age_ms=ctx.settings.funding_max_age_ms,
        now_ns=now_ns(),
    )


def _venues(ctx: ApiContext, raw: list[str] | None) -> frozenset[str] | None:
    if not raw:
        return None
    names = {n.strip().lower() for item in raw for n in item.split(",") if n.strip()}
    unknown = sorted(names - known_venues(ctx.model, ctx.universe))
    if unknown:
        raise HTTPException(404, detail=f"unknown venue(s) {', '.join(unknown)[:200]}")
    return frozenset(names)


def _floor(value: float | None) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _floors(min_volume: float | None, min_open_interest: float | None) -> Floors:
    return Floors(_floor(min_volume), _floor(min_open_interest))


@router.get("/api/funding-table/", response_model=FundingTableOut, responses=LOADING | NOT_FOUND)
async def funding_table_route(
    ctx: Ctx,
    period: Literal["1h", "4h", "1d", "3d", "7d", "30d"] = "1d",
    q: Search = None,
    sort: Literal["spread", "apr", "market_cap", "volume", "open_interest", "symbol"] = "spread",
    exchanges: Exchanges = None,
    min_volume: MinVolume = None,
    min_open_interest: MinOpenInterest = None,
    page: PageNumber = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 10,
) -> Response:
    """Funding per symbol and venue: live APR from each venue's own interval, realised APR over `period`,
    payouts a day, next funding, volume, open interest. `spread` = max - min realised APR in the row
    (sort `spread`, `apr` = largest |APR|, `volume` and `open_interest` = the row's sum over venues that
    publish it, largest first; `market_cap` sorts by volume: no market caps are kept)."""
    venues, floors = _venues(ctx, exchanges), _floors(min_volume, min_open_interest)
    return wire(funding_table(_inputs(ctx), period, q, sort, venues, floors, page, page_size))


@router.get("/api/best-opportunities/", response_model=PairsOut, responses=LOADING | NOT_FOUND)
async def best_opportunities_route(
    ctx: Ctx,
    period: Literal["now", "1d", "3d", "7d", "14d", "30d"] = "now",
    q: Search = None,
    side: Literal["ALL", "LONG", "SHORT"] = "ALL",
    exchanges: Exchanges = None,
    min_volume: MinVolume = None,
    min_open_interest: MinOpenInterest = None,
    page: PageNumber = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 30,
) -> Response:
    """Ranked funding-carry PAIRS (long the low-funding venue, short the high one; same base and quote
    group; legs on unhealthy venues or with rates older than the worker's funding max age left out):
    APR differential now or averaged over `period`, entry cost at executable prices with both taker
    fees, break-even hours, carry until the first common settlement. `side`: LONG keeps pairs whose
    long leg is itself paid, SHORT those whose short leg is; the seed's `exchange`/`price` name that leg."""
    venues, floors = _venues(ctx, exchanges), _floors(min_volume, min_open_interest)
    return wire(best_pairs(_inputs(ctx), period, q, side, venues, floors, page, page_size))


@router.get("/api/coin-detail/{symbol}/", response_model=CoinDetailOut, responses=LOADING | NOT_FOUND)
async def coin_detail_route(ctx: Ctx, symbol: SymbolPath) -> Response:
    """Per-venue current and 1/3/7/30-day APR, 30 days of settled rates per instrument, the symbol's pairs."""
    return wire(coin_detail(_inputs(ctx), _symbol(ctx, symbol)))


@router.get("/api/stats/", response_model=FundingStatsOut, responses=LOADING)
async def stats_route(ctx: Ctx) -> Response:
    """Coins and venues with funding, the newest funding update, how much history is kept."""
    return wire(funding_stats(_inputs(ctx)))


@router.get("/api/funding-alerts", response_model=FundingAlertsOut, responses=LOADING | NOT_FOUND)
async def funding_alerts_route(
    ctx: Ctx,
    symbol: Annotated[str | None, Query(max_length=64, description="only this symbol")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    """The worker's recent funding-rate alerts and closed funding episodes (`funding-opportunities`):
    a pair's episode opens when its APR differential net of the amortised entry cost reaches
    ARBSTREAM_FUNDING_OPEN_APR and closes under ARBSTREAM_FUNDING_CLOSE_APR or when a leg becomes
    unusable; an opening alerts unless the symbol alerted within ARBSTREAM_FUNDING_COOLDOWN_S.
    APRs in percent, newest first."""
    assert ctx.funding is not None
    wanted = _symbol(ctx, symbol) if symbol is not None else None
    alerts = [a for a in reversed(ctx.funding.alerts.values()) if wanted is None or a.symbol == wanted]
    closed = [c for c in reversed(ctx.funding.closed.values()) if wanted is None or c.symbol == wanted]
    return wire(
        FundingAlertsOut(alerts=[alert_out(a) for a in alerts[:limit]], closed=[episode_out(c) for c in closed[:limit]])
    )


@router.get("/api/funding-history/{symbol}", response_model=FundingHistoryOut, responses=LOADING | NOT_FOUND)
async def funding_history_route(
    ctx: Ctx,
    symbol: SymbolPath,
    days: Annotated[int, Query(ge=1, le=35, description="how far back")] = 30,
    exchanges: Exchanges = None,
) -> Response:
    """Every settled rate of the symbol's instruments (rate per interval, interval, APR), oldest first."""
    return wire(funding_history(_inputs(ctx), _symbol(ctx, symbol), days, _venues(ctx, exchanges)))
