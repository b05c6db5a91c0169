"""What the WebSocket sends: read-model changes turned into messages, periodic pushes, snapshots.

Message envelope: ``{"type": ..., "seq": n, "data": ...}`` (the seed's
``type``/``data`` plus a per-connection sequence number). Decimals are JSON
numbers (``api/wire.py``): every ``data`` is encoded with ``to_text``. Types:

- ``market_summary`` (data as GET /api/summary), ``initial_prices`` (data as the
  ``prices`` map of GET /api/prices): sent on connect, as the seed did.
- ``price_update``: one instrument's quote, fields as a /api/prices entry plus
  ``symbol``, ``exchange`` and ``primary``; coalesced per instrument.
- ``arbitrage_opportunities`` (channel ``opportunities``): sent when an alert fires,
  as the seed did; ``data`` is a list holding the alerted pair as a row of GET
  /api/arbitrage (prices at detection) plus the seed's ``profit`` (percent, net)
  and the alert's ``event_id`` and ``cooldown_broken``.
- ``arbitrage_top`` (channel ``arbitrage``): the current top list (rows as GET
  /api/arbitrage, positive gross spread, filtered by the subscription), every
  ``ws_refresh_s``. (Before issue 14 this list was called ``arbitrage_opportunities``.)
- ``opportunity`` (an alert, as on the ``opportunities`` topic),
  ``episode_closed``, ``venue_health`` (a venue as in GET /api/venues).
- ``episodes`` (channel ``episodes``): one symbol's open episodes (items as in
  GET /api/opportunities, filtered by the subscription; an empty list = none
  open), sent when a changelog record changes the set of open episodes or
  their latest values — also while the cooldown suppresses alerts; coalesced
  per symbol (latest wins). The snapshot carries them all as ``open_episodes``.
- ``snapshot``: the answer to ``subscribe`` and ``resync``: the subscribed
  channels' current state at once (see :class:`Snapshot`; unsubscribed sections are null).
- ``error`` (``{"code", "message"}``), ``pong``.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from api.context import ApiContext, now_ns
from api.funding_models import PairOut
from api.funding_stream import funding_snapshot
from api.hub import Filter, Hub
from api.models import ArbitrageRow, EpisodeClosedOut, OpenEpisodeOut, OpportunityOut, PriceEntry, SummaryOut
from api.models_health import VenueOut
from api.price_cache import prices_map_json
from api.readmodel import Changes
from api.views_arbitrage import ArbFilter, closed_out, open_episode_rows, opportunity_out, to_row
from api.views_prices import price_entry, primary_quotes, summary
from api.views_spreads import positive_rows
from api.views_venues import venue_out, venues_out
from api.wire import Num, Pct, to_text
from schemas.arbitrage import EpisodeClosed, Opportunity, SymbolState
from schemas.market import Quote, quote_group

SNAPSHOT_HISTORY = 50
"""Recent alerts and closed episodes in a snapshot (the REST endpoints page through more)."""


class AlertRow(ArbitrageRow):
    """One row of the seed's ``arbitrage_opportunities`` message: the pair that just alerted."""

    profit: Pct = Field(description="the seed's WebSocket name for potential_profit: percent, net of fees")
    event_id: str = Field(description="the alert's event id (as the `opportunity` message)")
    cooldown_broken: bool


class PriceUpdate(PriceEntry):
    symbol: str
    exchange: str = Field(description="the seed's name for venue")
    primary: bool = Field(description="this is the contract /api/prices shows for the venue")


class OpenEpisodesUpdate(BaseModel):
    symbol: str
    episodes: list[OpenEpisodeOut] = Field(
        description="the symbol's open episodes matching the subscription, best last net spread first; "
        "replaces what the client held for the symbol (empty = none open)"
    )


class SubscriptionEcho(BaseModel):
    channels: list[str]
    symbols: list[str] | None
    venues: list[str] | None
    min_net_spread: Num | None
    all_instruments: bool


class Snapshot(BaseModel):
    subscription: SubscriptionEcho
    prices: dict[str, list[PriceEntry]] | None = Field(default=None, description="symbol -> instruments")
    market_summary: SummaryOut | None = None
    arbitrage_opportunities: list[ArbitrageRow] | None = None
    opportunities: list[OpenEpisodeOut] | None = Field(default=None, description="open episodes")
    recent_alerts: list[OpportunityOut] | None = None
    episodes: list[EpisodeClosedOut] | None = Field(default=None, description="latest closed episodes")
    open_episodes: list[OpenEpisodeOut] | None = Field(
        default=None, description="channel episodes: every open episode (what `episodes` messages update per symbol)"
    )
    venues: list[VenueOut] | None = None
    funding_pairs: list[PairOut] | None = Field(default=None, description="channel funding: the best carry pairs now")


def _echo(f: Filter) -> SubscriptionEcho:
    return SubscriptionEcho(
        channels=sorted(f.channels),
        symbols=sorted(f.symbols) if f.symbols is not None else None,
        venues=sorted(f.venues) if f.venues is not None else None,
        min_net_spread=f.min_net_spread,
        all_instruments=f.all_instruments,
    )


def alert_row(alert: Opportunity, bridges: dict[str, str]) -> AlertRow:
    """The seed's alert row, from the alert event itself (prices and ages at detection)."""
    row = to_row(alert, None, quote_group(alert.buy, bridges), alert.event_id)
    return AlertRow(
        **dict(row), profit=row.potential_profit, event_id=alert.event_id, cooldown_broken=alert.cooldown_broken
    )


def _is_primary(state: SymbolState, quote: Quote) -> bool:
    chosen = primary_quotes(state.quotes.values()).get(quote.venue)
    return chosen is not None and chosen.instrument_id == quote.instrument_id


class Publisher:
    """Turns read-model changes into hub messages; owns the periodic pushes."""

    def __init__(self, ctx: ApiContext, hub: Hub) -> None:
        self.ctx = ctx
        self.hub = hub

    def on_changes(self, changes: Changes) -> None:
        if not self.hub.clients:
            return
        with self.hub.timed(), self.hub.batched():
            now = now_ns()
            for symbol, quote in changes.quotes:
                self._price(symbol, quote, now)
            for alert in changes.alerts:
                self._alert(alert)
            for closed in changes.closed:
                self._closed(closed)
            for symbol in dict.fromkeys(changes.episodes):
                self._open_episodes(symbol, now)
            for venue in sorted({h.venue for h in changes.health}):
                self._venue(venue, now)

    def _price(self, symbol: str, quote: Quote, now: int) -> None:
        state = self.ctx.model.symbols.get(symbol)
        if state is None or state.quotes.get(quote.instrument_id) is not quote:
            return  # superseded within the same batch
        primary = _is_primary(state, quote)
        entry = price_entry(quote, state, now)
        # model_construct: the entry's fields are already validated, skip doing it again per tick.
        update = PriceUpdate.model_construct(**dict(entry), symbol=symbol, exchange=quote.venue, primary=primary)
        data = to_text(update)

        def wants(f: Filter) -> bool:
            return f.symbol_ok(symbol) and f.venue_ok(quote.venue) and (primary or f.all_instruments)

        self.hub.publish_latest(f"price:{quote.instrument_id}", "price_update", "prices", data, wants)

    def _alert(self, alert: Opportunity) -> None:
        def wants(f: Filter) -> bool:
            return (
                f.symbol_ok(alert.symbol)
                and f.legs_ok(alert.buy.venue, alert.sell.venue)
                and f.net_ok(alert.net_spread)
            )

        self.hub.publish_event("opportunity", "opportunities", to_text(opportunity_out(alert)), wants)
        seed_rows = to_text([alert_row(alert, self.ctx.config.quote_bridges)])
        self.hub.publish_event("arbitrage_opportunities", "opportunities", seed_rows, wants)

    def _closed(self, closed: EpisodeClosed) -> None:
        def wants(f: Filter) -> bool:
            return (
                f.symbol_ok(closed.symbol)
                and f.legs_ok(closed.buy_venue, closed.sell_venue)
                and f.net_ok(closed.peak_net_spread)
            )

        self.hub.publish_event("episode_closed", "episodes", to_text(closed_out(closed)), wants)

    def _open_episodes(self, symbol: str, now: int) -> None:
        rows = open_episode_rows(self.ctx.model, now, ArbFilter(symbol=symbol), None)

        def render(f: Filter) -> str:
            return to_text(OpenEpisodesUpdate(symbol=symbol, episodes=self._open_wanted(f, rows)))

        self.hub.publish_per_filter(f"episodes:{symbol}", "episodes", "episodes", render, lambda f: f.symbol_ok(symbol))

    @staticmethod
    def _open_wanted(f: Filter, rows: list[OpenEpisodeOut]) -> list[OpenEpisodeOut]:
        return [
            r
            for r in rows
            if f.symbol_ok(r.symbol) and f.legs_ok(r.buy_venue, r.sell_venue) and f.net_ok(r.last_net_spread)
        ]

    def _venue(self, venue: str, now: int) -> None:
        ctx = self.ctx
        data = to_text(venue_out(venue, ctx.model, ctx.universe, now, ctx.config))
        self.hub.publish_latest(f"venue:{venue}", "venue_health", "health", data, lambda f: f.venue_ok(venue))

    def push_periodic(self) -> None:
        """market_summary and the arbitrage top list: their ages and staleness move with the clock."""
        if not self.hub.clients:
            return
        ctx, now = self.ctx, now_ns()
        data = to_text(summary(ctx.model, now))
        self.hub.publish_latest("summary", "market_summary", "summary", data, lambda f: True)
        rows = positive_rows(ctx.model, now, ctx.config, ArbFilter())
        self.hub.publish_per_filter("arbitrage", "arbitrage_top", "arbitrage", lambda f: to_text(self._top(rows, f)))

    def _top(self, rows: list[ArbitrageRow], f: Filter) -> list[ArbitrageRow]:
        chosen = [
            r
            for r in rows
            if f.symbol_ok(r.symbol)
            and f.legs_ok(r.buy_exchange, r.sell_exchange)
            and f.net_ok(r.net_spread_percentage / 100)
        ]
        return chosen[: self.ctx.settings.ws_top_n]

    async def run_periodic(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.settings.ws_refresh_s)
            self.push_periodic()

    def initial_messages(self) -> list[tuple[str, str]]:
        """What the seed sent on connect."""
        now = now_ns()
        prices = prices_map_json(self.ctx.model, now).decode()
        return [("market_summary", to_text(summary(self.ctx.model, now))), ("initial_prices", prices)]

    def snapshot(self, f: Filter) -> str:
        ctx, now = self.ctx, now_ns()
        snap = Snapshot(subscription=_echo(f))
        where = ArbFilter()
        if "prices" in f.channels:
            snap.prices = self._prices(f, now)
        if "summary" in f.channels:
            snap.market_summary = summary(ctx.model, now)
        if "arbitrage" in f.channels:
            rows = positive_rows(ctx.model, now, ctx.config, where)
            snap.arbitrage_opportunities = self._top(rows, f)
        opened = open_episode_rows(ctx.model, now, where, None) if {"opportunities", "episodes"} & f.channels else []
        if "opportunities" in f.channels:
            snap.opportunities = self._open_wanted(f, opened)
            alerts = [a for a in reversed(ctx.model.alerts.values()) if self._wanted(f, a.symbol, a)]
            snap.recent_alerts = [opportunity_out(a) for a in alerts[:SNAPSHOT_HISTORY]]
        if "episodes" in f.channels:
            # Filter the raw events before building response models: there may be thousands.
            closed = [e for e in ctx.model.closed.values() if self._wanted_closed(f, e)]
            closed.sort(key=lambda e: (-e.end_ts_ns, e.event_id))
            snap.episodes = [closed_out(e) for e in closed[:SNAPSHOT_HISTORY]]
            snap.open_episodes = self._open_wanted(f, opened)
        if "health" in f.channels:
            snap.venues = [v for v in venues_out(ctx.model, ctx.universe, now, ctx.config) if f.venue_ok(v.venue)]
        if "funding" in f.channels:
            snap.funding_pairs = funding_snapshot(ctx, f)
        return to_text(snap)

    @staticmethod
    def _wanted(f: Filter, symbol: str, o: Opportunity) -> bool:
        return f.symbol_ok(symbol) and f.legs_ok(o.buy.venue, o.sell.venue) and f.net_ok(o.net_spread)

    @staticmethod
    def _wanted_closed(f: Filter, e: EpisodeClosed) -> bool:
        return f.symbol_ok(e.symbol) and f.legs_ok(e.buy_venue, e.sell_venue) and f.net_ok(e.peak_net_spread)

    def _prices(self, f: Filter, now: int) -> dict[str, list[PriceEntry]]:
        out: dict[str, list[PriceEntry]] = {}
        for symbol, state in sorted(self.ctx.model.symbols.items()):
            if not f.symbol_ok(symbol):
                continue
            quotes = state.quotes.values() if f.all_instruments else primary_quotes(state.quotes.values()).values()
            chosen = sorted((q for q in quotes if f.venue_ok(q.venue)), key=lambda q: q.instrument_id)
            out[symbol] = [price_entry(q, state, now) for q in chosen]
        return out
