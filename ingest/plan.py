"""Connection plans that follow a changing listing with little churn (decision 0011).

A venue module plans its connections from scratch (``Venue.connections``): topics in listing
order, cut every ``max_topics_per_connection``. Re-planning from scratch after one new listing
would shift every later topic to another socket and reconnect them all. :func:`sticky_plan`
instead keeps every existing connection's surviving topics where they are and never touches a
connection that lost nothing: new topics go to connections of the same URL that reconnect anyway
(they lost a delisted topic, or an instrument on them changed) while they have room, then to new
connections. A connection keeps its label (so its health history continues). Pure functions.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection, Sequence

from ingest.venues.base import Connection, Venue
from schemas.market import Instrument

_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _label_prefix(label: str) -> str:
    match = _NUMBERED.match(label)
    return match.group(1) if match else f"{label}-"


def _capacities(fresh: Sequence[Connection], cap: int) -> dict[str, int]:
    """Topics a connection of each URL may carry: the venue's cap, or more where its own plan
    puts more (CoinDCX adds its all-pairs channel on top of a full socket)."""
    out: dict[str, int] = {}
    for conn in fresh:
        out[conn.url] = max(out.get(conn.url, cap), len(conn.topics))
    return out


def sticky_plan(
    current: Sequence[Connection],
    fresh: Sequence[Connection],
    cap: int,
    dirty: Collection[str] = (),
    max_connections: int | None = None,
) -> list[Connection]:
    """Connections carrying exactly ``fresh``'s topics, reconnecting as few as possible of ``current``.

    Each topic must ride on a connection with the URL ``fresh`` gives it (venues route channel
    kinds by path). ``dirty``: labels that reconnect anyway (their instruments changed). Falls back
    to ``fresh`` itself when the sticky plan would use clearly more connections than a fresh one,
    or more than the venue allows (``max_connections``).
    """
    url_of = {topic: conn.url for conn in fresh for topic in conn.topics}
    capacity = _capacities(fresh, cap)
    placed: set[str] = set()
    kept: list[tuple[str, str, list[str]]] = []  # (label, url, topics)
    open_for_new: set[str] = set(dirty)
    for conn in current:
        topics = [t for t in conn.topics if url_of.get(t) == conn.url and t not in placed]
        placed.update(topics)
        kept.append((conn.label, conn.url, topics))
        if len(topics) < len(conn.topics):
            open_for_new.add(conn.label)
    labels = {label for label, _, _ in kept}
    for conn in fresh:
        for topic in conn.topics:
            if topic in placed:
                continue
            placed.add(topic)
            # Same URL and same kind of connection (label prefix): a venue that keeps channel kinds
            # on separate sockets of one URL (CoinEx books vs the all-markets state) keeps them apart.
            kind = _label_prefix(conn.label)
            room = next(
                (
                    k
                    for k in kept
                    if k[0] in open_for_new
                    and k[1] == conn.url
                    and _label_prefix(k[0]) == kind
                    and len(k[2]) < capacity[conn.url]
                ),
                None,
            )
            if room is None:
                room = (_next_label(_label_prefix(conn.label), labels), conn.url, [])
                labels.add(room[0])
                open_for_new.add(room[0])
                kept.append(room)
            room[2].append(topic)
    plan = [Connection(label, url, tuple(topics)) for label, url, topics in kept if topics]
    limit = len(fresh) + max(1, len(fresh) // 4)
    if len(plan) > (limit if max_connections is None else min(limit, max_connections)):
        return list(fresh)
    return plan


def max_connections(venue_cls: type[Venue]) -> int | None:
    """A venue's documented cap on connections per client: the class's ``max_connections`` or its
    module's ``MAX_CONNECTIONS`` (Phemex: 5); None when it documents none."""
    declared = getattr(venue_cls, "max_connections", None)
    if declared is None:
        declared = getattr(sys.modules.get(venue_cls.__module__), "MAX_CONNECTIONS", None)
    return declared if isinstance(declared, int) else None


def _next_label(prefix: str, taken: set[str]) -> str:
    n = 0
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


def connection_instruments(venue: Venue, conn: Connection, instruments: Sequence[Instrument]) -> tuple[Instrument, ...]:
    """The instruments a connection's parser needs: those with a topic on it; every instrument
    when it carries a channel no single instrument owns (an all-market ticker)."""
    topics = set(conn.topics)
    mine = [i for i in instruments if topics.intersection(venue.topics(i))]
    owned = {t for i in instruments for t in venue.topics(i)}
    if not topics <= owned:
        return tuple(instruments)
    return tuple(mine)


def listing_fields(instrument: Instrument) -> tuple[object, ...]:
    """What a connection's parser depends on: a whitelist, leaving out the liquidity figures (24 h
    volume, open interest) and the funding caps, which change on refreshes and must not reconnect
    anything."""
    return (
        instrument.instrument_id,
        instrument.native_symbol,
        instrument.kind,
        instrument.price_multiplier,
        instrument.contract_size,
        instrument.tick_size,
        instrument.funding_interval_h,
        instrument.quote,
        instrument.settle,
    )


def same_inputs(a: Sequence[Instrument], b: Sequence[Instrument]) -> bool:
    return sorted(map(listing_fields, a), key=str) == sorted(map(listing_fields, b), key=str)
