"""Venue views: /api/venues and the per-venue part of /health.

Connection figures come from ingest's periodic health snapshots: counters since
the ingest process started, so rates are deltas between the last two snapshots
of a connection (``None`` until there are two, or when the counters went
backwards because ingest restarted).
"""

from __future__ import annotations

import msgspec

from api.models_health import ConnectionOut, FundingBackfillOut, ListingOut, VenueOut
from api.readmodel import ReadModel
from api.universe import Universe
from api.views_prices import age_ms, iso, ms
from ingest.symbol_files import VENUE_ALIASES
from processors.arbitrage import UNHEALTHY, ArbConfig
from schemas.market import BackfillStatus, Health, ListingStatus, Quote


def seed_venue(raw: str) -> str:
    """arbstream's venue id for a name a seed client may send (``gateio`` is ``gate``): REST
    parameters and the WebSocket's subscribe op both go through it."""
    name = raw.strip().lower()
    return VENUE_ALIASES.get(name, name)


def _rate(now: int, before: int, now_ts: int, before_ts: int) -> float | None:
    seconds = (now_ts - before_ts) / 1e9
    if seconds <= 0 or now < before:
        return None
    return round((now - before) / seconds, 3)


def connection_out(latest: Health, previous: Health | None, now_ns: int) -> ConnectionOut:
    frames = events = None
    if previous is not None:
        frames = _rate(latest.frames_total, previous.frames_total, latest.exchange_ts_ns, previous.exchange_ts_ns)
        events = _rate(latest.events_total, previous.events_total, latest.exchange_ts_ns, previous.exchange_ts_ns)
    last_data = latest.last_data_ts_ns
    return ConnectionOut(
        connection=latest.connection,
        state=latest.state.value,
        reason=latest.reason,
        reconnects=latest.reconnects,
        frames_total=latest.frames_total,
        events_total=latest.events_total,
        malformed_total=latest.malformed_total,
        resyncs_total=latest.resyncs_total,
        last_message_age_ms=age_ms(now_ns, last_data) if last_data is not None else None,
        messages_per_s=frames,
        events_per_s=events,
        reported_age_ms=age_ms(now_ns, latest.exchange_ts_ns),
    )


def known_venues(model: ReadModel, universe: Universe) -> set[str]:
    quoted = {q.venue for state in model.symbols.values() for q in state.quotes.values()}
    reported = {h.venue for h in model.health.by_connection.values()}
    return quoted | reported | universe.venues


def venue_out(venue: str, model: ReadModel, universe: Universe, now_ns: int, config: ArbConfig) -> VenueOut:
    quotes: list[tuple[str, Quote]] = [
        (symbol, q) for symbol, state in model.symbols.items() for q in state.quotes.values() if q.venue == venue
    ]
    configured = universe.by_venue(venue)
    worst = model.venue_health(venue)
    latest = max((q.receipt_ts_ns for _, q in quotes), default=None)
    return VenueOut(
        venue=venue,
        state=worst.state.value if worst is not None else "unknown",
        connections=[connection_out(h, prev, now_ns) for h, prev in model.connections(venue)],
        symbols=sorted({s for s, _ in quotes} | {i.base for i in configured}),
        instruments=sorted({q.instrument_id for _, q in quotes} | {i.instrument_id for i in configured}),
        quote_count=len(quotes),
        last_quote_timestamp=ms(latest) if latest is not None else None,
        last_quote_age_ms=age_ms(now_ns, latest) if latest is not None else None,
        taker_fee=config.fee(venue),
        listing=listing_out(universe.listings.get(venue), now_ns),
    )


def listing_out(status: ListingStatus | None, now_ns: int) -> ListingOut | None:
    if status is None:
        return None
    return ListingOut(
        source=status.source.value,
        listed_at=iso(status.listed_ts_ns),
        listed_timestamp_ms=ms(status.listed_ts_ns),
        age_s=round((now_ns - status.listed_ts_ns) / 1e9, 3),
        instruments=status.instruments,
        tracked=status.tracked,
        error=status.error,
        reported_age_s=round((now_ns - status.exchange_ts_ns) / 1e9, 3),
        funding_backfill=backfill_out(status.funding_backfill),
    )


def backfill_out(status: BackfillStatus | None) -> FundingBackfillOut | None:
    return None if status is None else FundingBackfillOut.model_validate(msgspec.structs.asdict(status))


def venues_out(model: ReadModel, universe: Universe, now_ns: int, config: ArbConfig) -> list[VenueOut]:
    return [venue_out(v, model, universe, now_ns, config) for v in sorted(known_venues(model, universe))]


def unhealthy_venues(model: ReadModel) -> list[str]:
    return sorted(venue for venue, health in model.health.by_venue.items() if health.state in UNHEALTHY)
