"""WebSocket channel ``funding``: the best carry pairs as they change, and the worker's funding alerts.

- ``funding_pairs`` (state, coalesced): ``{"pairs": [...]}``, the live ranking of
  /api/best-opportunities/ (top ``ws_top_n``, filtered by the subscription's symbols and
  venues: both legs must be allowed), pushed every :data:`PUSH_INTERVAL_S` while some client
  is subscribed to the channel (ranking the whole market costs ~0.3 s of CPU: never for nobody).
- ``funding_alert`` (event): one alert of the ``funding-opportunities`` topic (APR in percent): a
  funding episode opened (net APR past ``ARBSTREAM_FUNDING_OPEN_APR``) outside the symbol's cooldown.
- ``funding_episode_closed`` (event): a funding episode ended (net APR under the close threshold,
  or a leg unusable), whether or not it alerted.
- The ``snapshot`` answer carries the current pairs as ``funding_pairs``.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from pydantic import BaseModel, Field

from api.context import ApiContext, now_ns
from api.funding_math import Candidate, Floors, ranked_page
from api.funding_models import PairOut
from api.funding_pair_views import candidates_of, pair_out
from api.funding_views import FundingInputs
from api.hub import Filter
from api.wire import Num, Pct, to_text
from schemas.arbitrage import FundingEpisodeClosed, FundingOpportunity

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
    net_apr: Pct | None = Field(
        default=None,
        description="spread minus the entry cost amortised over ARBSTREAM_FUNDING_HOLD_H, percent a year: "
        "what the episode opened on (null: an alert written before episodes)",
    )
    entry_cost: Pct | None = Field(default=None, description="price spread + both taker fees, percent of notional")
    priced: bool = Field(default=False, description="both legs had usable quotes (else the entry cost is the fees)")
    long_price: Num | None = Field(default=None, description="long leg's ask per base unit used for the entry cost")
    short_price: Num | None = Field(default=None, description="short leg's bid per base unit")
    episode_start_time: int | None = Field(default=None, description="Unix ms")
    cooldown_broken: bool = Field(default=False, description="alerted inside the symbol's cooldown by beating it")


class FundingEpisodeOut(BaseModel):
    event_id: str = Field(description="the episode's id: its alert's event_id when it alerted")
    symbol: str
    long_exchange: str
    short_exchange: str
    long_instrument_id: str
    short_instrument_id: str
    start_time: int = Field(description="Unix ms")
    end_time: int = Field(description="Unix ms")
    duration_ms: int
    peak_net_apr: Pct = Field(description="percent a year")
    last_net_apr: Pct
    evaluations: int = Field(description="funding updates that evaluated the pair while it was open")
    close_reason: str
    alerted: bool = Field(description="false: its opening fell inside the symbol's cooldown")


class FundingAlertsOut(BaseModel):
    alerts: list[FundingAlertOut] = Field(description="newest first")
    closed: list[FundingEpisodeOut] = Field(default=[], description="closed funding episodes, newest first")


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
        net_apr=alert.net_apr * HUNDRED if alert.net_apr is not None else None,
        entry_cost=alert.entry_cost * HUNDRED if alert.entry_cost is not None else None,
        priced=alert.priced,
        long_price=alert.long.price,
        short_price=alert.short.price,
        episode_start_time=alert.episode_start_ts_ns // 1_000_000 if alert.episode_start_ts_ns is not None else None,
        cooldown_broken=alert.cooldown_broken,
    )


def episode_out(closed: FundingEpisodeClosed) -> FundingEpisodeOut:
    return FundingEpisodeOut(
        event_id=closed.event_id,
        symbol=closed.symbol,
        long_exchange=closed.long_venue,
        short_exchange=closed.short_venue,
        long_instrument_id=closed.long_instrument_id,
        short_instrument_id=closed.short_instrument_id,
        start_time=closed.start_ts_ns // 1_000_000,
        end_time=closed.end_ts_ns // 1_000_000,
        duration_ms=closed.duration_ms,
        peak_net_apr=closed.peak_net_apr * HUNDRED,
        last_net_apr=closed.last_net_apr * HUNDRED,
        evaluations=closed.evaluations,
        close_reason=closed.close_reason,
        alerted=closed.alerted,
    )


def _inputs(ctx: ApiContext) -> FundingInputs:
    assert ctx.funding is not None
    return FundingInputs(ctx.model, ctx.universe, ctx.funding, ctx.config, ctx.settings.funding_max_age_ms, now_ns())


def market_candidates(inputs: FundingInputs) -> list[Candidate]:
    """Every live pair of every symbol, not yet costed (cheap: ranked and costed per subscriber)."""
    return [c for symbol in sorted(inputs.model.symbols) for c in candidates_of(inputs, symbol, "now", Floors())]


def wanted_pairs(inputs: FundingInputs, found: list[Candidate], f: Filter, limit: int) -> list[PairOut]:
    kept = [c for c in found if f.symbol_ok(c.symbol) and f.legs_ok(c.long.funding.venue, c.short.funding.venue)]
    return [pair_out(p, "now", "LONG") for p in ranked_page(kept, 0, limit, inputs.now_ns, inputs.config)]


class FundingPublisher:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def on_alerts(self, events: list[FundingOpportunity | FundingEpisodeClosed]) -> None:
        hub = self.ctx.hub
        if hub is None or not hub.clients:
            return
        for event in events:
            if isinstance(event, FundingOpportunity):
                legs = (event.long.venue, event.short.venue)
                kind, text = "funding_alert", to_text(alert_out(event))
            else:
                legs = (event.long_venue, event.short_venue)
                kind, text = "funding_episode_closed", to_text(episode_out(event))

            def wants(f: Filter, symbol: str = event.symbol, venues: tuple[str, str] = legs) -> bool:
                return f.symbol_ok(symbol) and f.legs_ok(*venues)

            hub.publish_event(kind, "funding", text, wants)

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
