"""WebSocket channel ``funding``: the best carry pairs as they change, and the worker's funding alerts.

- ``funding_pairs`` (state, coalesced): ``{"pairs": [...]}``, the live ranking of
  /api/best-opportunities/ (top ``ws_top_n``, filtered by the subscription's symbols and
  venues: both legs must be allowed), pushed every :data:`PUSH_INTERVAL_S` when it changed.
- ``funding_alert`` (event): one alert of the ``funding-opportunities`` topic (APR in percent).
- The ``snapshot`` answer carries the current pairs as ``funding_pairs``.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from pydantic import BaseModel, Field

from api.context import ApiContext, now_ns
from api.funding_models import PairOut
from api.funding_views import FundingInputs, best_pairs
from api.hub import Filter
from api.wire import Pct, to_text
from schemas.arbitrage import FundingOpportunity

PUSH_INTERVAL_S = 2.0
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


def current_pairs(ctx: ApiContext) -> list[PairOut]:
    """Every live pair, ranked (filtered per subscriber afterwards)."""
    assert ctx.funding is not None
    inputs = FundingInputs(ctx.model, ctx.universe, ctx.funding, ctx.config, ctx.settings.funding_max_age_ms, now_ns())
    return best_pairs(inputs, "now", None, "ALL", None, Decimal(0), 1, 100_000).results


def wanted_pairs(pairs: list[PairOut], f: Filter, limit: int) -> list[PairOut]:
    chosen = [p for p in pairs if f.symbol_ok(p.symbol) and f.legs_ok(p.long.exchange, p.short.exchange)]
    return chosen[:limit]


class FundingPublisher:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self._last: tuple[object, ...] | None = None

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
        if hub is None or not hub.clients or self.ctx.not_live() is not None:
            return
        pairs = current_pairs(self.ctx)
        # Ages and times move with the clock; the ranking and its numbers are what subscribers want
        # (and a client that connected since gets the current list).
        ranking = tuple((p.long.instrument_id, p.short.instrument_id, p.apr, p.entry_cost) for p in pairs)
        signature = (ranking, frozenset(id(client) for client in hub.clients))
        if signature == self._last:
            return
        self._last = signature
        limit = self.ctx.settings.ws_top_n

        def render(f: Filter) -> str:
            return to_text(FundingPairsUpdate(pairs=wanted_pairs(pairs, f, limit)))

        hub.publish_per_filter("funding_pairs", "funding_pairs", "funding", render)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(PUSH_INTERVAL_S)
            self.push()


def funding_snapshot(ctx: ApiContext, f: Filter) -> list[PairOut]:
    return wanted_pairs(current_pairs(ctx), f, ctx.settings.ws_top_n) if ctx.funding is not None else []
