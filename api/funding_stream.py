"""WebSocket channel ``funding``: the best carry pairs as they change, and the worker's funding alerts.

- ``funding_pairs`` (state, coalesced): ``{"pairs": [...]}``, the live ranking of
  /api/best-opportunities/ (top ``ws_top_n``, filtered by the subscription's symbols and
  venues: both legs must be allowed), pushed every :data:`PUSH_INTERVAL_S` while some client
  is subscribed to the channel (ranking the whole market costs ~0.3 s of CPU: never for nobody).
- ``funding_alert`` (event): one alert of the ``funding-opportunities`` topic (APR in percent).
- The ``snapshot`` answer carries the current pairs as ``funding_pairs``.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from pydantic import BaseModel, Field

from api.context import ApiContext, now_ns
from api.funding_math import Candidate, ranked_page
from api.funding_models import PairOut
from api.funding_pair_views import candidates_of, pair_out
from api.funding_views import FundingInputs
from api.hub import Filter
from api.wire import Pct, to_text
from schemas.arbitrage import FundingOpportunity

PUSH_INTERVAL_S = 5.0
"""Funding moves slowly (venues update it every few seconds, the worker flushes it every 5 s)."""
HUNDRED = Decimal(100)


class FundingPairsUpdate(BaseModel):
    pairs: list[PairOut] = Field(description="best pairs now, as /api/best-opportunities/ (replaces the last list)")


class FundingAlertOut(BaseModel):
    event_id: str
    symbol: str
    long_exchange: str
    short_exchange: str
    long_instrument_id: str
    short_instrument_id: str
    long_apr: Pct = Field(description="percent a year")
    short_apr: Pct
    spread_apr: Pct = Field(description="short APR - long APR, percent a year (gross: no fees)")
    detected_time: int = Field(description="Unix ms")


class FundingAlertsOut(BaseModel):
    alerts: list[FundingAlertOut] = Field(description="newest first")


def alert_out(alert: FundingOpportunity) -> FundingAlertOut:
    return FundingAlertOut(
        event_id=alert.event_id,
        symbol=alert.symbol,
        long_exchange=alert.long.venue,
        short_exchange=alert.short.venue,
        long_instrument_id=alert.long.instrument_id,
        short_instrument_id=alert.short.instrument_id,
        long_apr=alert.long.apr * HUNDRED,
        short_apr=alert.short.apr * HUNDRED,
        spread_apr=alert.spread_apr * HUNDRED,
        detected_time=alert.detected_ts_ns // 1_000_000,
    )


def _inputs(ctx: ApiContext) -> FundingInputs:
    assert ctx.funding is not None
    return FundingInputs(ctx.model, ctx.universe, ctx.funding, ctx.config, ctx.settings.funding_max_age_ms, now_ns())


def market_candidates(inputs: FundingInputs) -> list[Candidate]:
    """Every live pair of every symbol, not yet costed (cheap: ranked and costed per subscriber)."""
    return [c for symbol in sorted(inputs.model.symbols) for c in candidates_of(inputs, symbol, "now", Decimal(0))]


def wanted_pairs(inputs: FundingInputs, found: list[Candidate], f: Filter, limit: int) -> list[PairOut]:
    kept = [c for c in found if f.symbol_ok(c.symbol) and f.legs_ok(c.long.funding.venue, c.short.funding.venue)]
    return [pair_out(p, "now", "LONG") for p in ranked_page(kept, 0, limit, inputs.now_ns, inputs.config)]


class FundingPublisher:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def on_alerts(self, alerts: list[FundingOpportunity]) -> None:
        hub = self.ctx.hub
        if hub is None or not hub.clients:
            return
        for alert in alerts:

            def wants(f: Filter, a: FundingOpportunity = alert) -> bool:
                return f.symbol_ok(a.symbol) and f.legs_ok(a.long.venue, a.short.venue)

            hub.publish_event("funding_alert", "funding", to_text(alert_out(alert)), wants)

    def push(self) -> None:
        hub = self.ctx.hub
        if hub is None or self.ctx.funding is None or self.ctx.not_live() is not None:
            return
        if not any("funding" in client.filter.channels for client in hub.clients):
            return
        inputs = _inputs(self.ctx)
        found = market_candidates(inputs)
        limit = self.ctx.settings.ws_top_n

        def render(f: Filter) -> str:
            return to_text(FundingPairsUpdate(pairs=wanted_pairs(inputs, found, f, limit)))

        hub.publish_per_filter("funding_pairs", "funding_pairs", "funding", render)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(PUSH_INTERVAL_S)
            self.push()


def funding_snapshot(ctx: ApiContext, f: Filter) -> list[PairOut]:
    if ctx.funding is None:
        return []
    inputs = _inputs(ctx)
    return wanted_pairs(inputs, market_candidates(inputs), f, ctx.settings.ws_top_n)
