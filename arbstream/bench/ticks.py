"""Realistic tick messages for the broker and processor stages.

Quotes come from the simulator's market model for the real BTC/ETH instruments
of every implemented venue, so message sizes and keys are what ingest publishes.
A fraction of quotes is dislocated (bid and ask 1 % up on one venue) and the
instrument's next quote is normal again, so every dislocation opens an
arbitrage episode and the following quote closes it.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from arbstream.bench.common import BASES
from ingest.instruments import load_all, select
from ingest.publisher import tick_records
from ingest.simulator.market import Market
from ingest.venues import implemented_venues
from schemas.market import Funding, Instrument, Quote, encode
from schemas.topics import ticks_topic

DISLOCATION = Decimal("1.01")
WINDOW_NS = 5_000_000
"""The publisher's batch window (ingest's default ``linger_ms``): ticks received within one
window go in one record per symbol, as ingest publishes them."""
MARKET_ORDER = 200_000
"""Length of the market mix's tick order before it repeats."""
FUNDING_EVERY = 10
"""One funding event per ten ticks, the simulator's default book:funding ratio."""
STICKY_S = 0.03
"""Under overload an instrument's dislocation lasts this long (all its quotes meanwhile are
dislocated): a one-tick dislocation followed at once by a normal quote is exactly what
conflation skips, so a run with conflation would have no alerts left to time."""


@dataclass(frozen=True)
class TickSource:
    instruments: list[Instrument]
    normal: list[Quote]
    dislocated: list[Quote]
    funding: list[Funding]
    keys: list[bytes]
    order: list[int] | None = None
    """Instrument index of each tick (repeating); None: round-robin over the instruments."""

    @classmethod
    def build(cls, bases: tuple[str, ...] = BASES) -> TickSource:
        return cls.of(select(load_all(implemented_venues()), bases))

    @classmethod
    def of(cls, instruments: list[Instrument]) -> TickSource:
        market = Market(instruments, auto_dislocation_every_ms=0)
        now_ms = time.time_ns() // 1_000_000
        normal = [_quote(inst, market, now_ms) for inst in instruments]
        dislocated = [msgspec.structs.replace(q, bid=_up(q.bid), ask=_up(q.ask)) for q in normal]
        funding = [_funding(inst, market, now_ms) for inst in instruments]
        keys = [inst.instrument_id.encode() for inst in instruments]
        return cls(instruments, normal, dislocated, funding, keys)

    @classmethod
    def market_mix(cls, seed: int = 7) -> TickSource:
        """The simulator's whole generated market (every base on two or more venues), each instrument
        ticking as often as the simulator makes it (volume^0.5: a few busy symbols, a long tail)."""
        from ingest.simulator.universe import generated_market, update_weights

        market = generated_market(implemented_venues())
        source = cls.of(market.instruments)
        weights = update_weights(market)
        rng = random.Random(seed)
        population = range(len(market.instruments))
        order = rng.choices(population, [weights[i.instrument_id] for i in market.instruments], k=MARKET_ORDER)
        return dataclasses.replace(source, order=order)

    def events(self, count: int, dislocate_every: int = 0, start: int = 0) -> Iterator[tuple[int, Quote | Funding]]:
        """(instrument index, event) for tick numbers ``start .. start+count`` (round-robin or ``order``)."""
        n = len(self.instruments)
        order = self.order
        for i in range(start, start + count):
            k = order[i % len(order)] if order is not None else i % n
            if i % FUNDING_EVERY == FUNDING_EVERY - 1:
                yield k, self.funding[k]
            elif dislocate_every and i % dislocate_every == 0:
                yield k, self.dislocated[k]
            else:
                yield k, self.normal[k]

    def topics(self, namespace: str) -> list[str]:
        return sorted({ticks_topic(i.base, namespace) for i in self.instruments})

    def records(
        self, namespace: str, count: int, start_ns: int, step_ns: int, dislocate_every: int = 0
    ) -> list[tuple[str, bytes, bytes]]:
        """Pre-encoded (topic, key, value), one tick per record (the broker stage's message size), with
        receipt times ``start_ns + i*step_ns`` (event time)."""
        topic_of = {b: ticks_topic(b, namespace) for b in {i.base for i in self.instruments}}
        out = []
        for i, (k, event) in enumerate(self.events(count, dislocate_every)):
            ts = start_ns + i * step_ns
            stamped = msgspec.structs.replace(event, exchange_ts_ns=ts, receipt_ts_ns=ts)
            out.append((topic_of[event.base], self.keys[k], encode(stamped)))
        return out

    def batches(
        self, namespace: str, count: int, start_ns: int, step_ns: int, dislocate_every: int = 0
    ) -> list[tuple[str, bytes, bytes, int]]:
        """Like :meth:`records`, batched as ingest's publisher does: (topic, symbol key, ``TickBatch``,
        ticks) per symbol and ``WINDOW_NS`` of receipt time."""
        windows: dict[int, list[Quote | Funding]] = {}
        for i, (_, event) in enumerate(self.events(count, dislocate_every)):
            ts = start_ns + i * step_ns
            windows.setdefault((ts - start_ns) // WINDOW_NS, []).append(stamped(event, ts))
        return [record for ticks in windows.values() for record in tick_records(ticks, namespace)]


@dataclass
class Planter:
    """Which ticks of a slot are dislocated.

    Plain mode: every ``dislocate_every``-th tick (the instrument's next quote is normal again).
    Sticky mode: ``per_s`` times a second, the instrument of the slot's first tick becomes the
    target and all its quotes for ``STICKY_S`` are dislocated. Targets are taken from the
    ticks, so they are the busy instruments of the heavy-tailed mix, which tick again soon.
    """

    source: TickSource
    per_s: int
    sticky: bool
    target: int = -1
    until: float = 0.0
    next_plant: float = 0.0

    def dislocate_every(self, rate: int) -> int:
        return 0 if self.sticky or self.per_s <= 0 else max(20, rate // self.per_s)

    def slot(self, sent: int, due: int, rate: int, now: float) -> Iterator[Quote | Funding]:
        """The events of ticks ``sent .. sent+due`` at monotonic time ``now`` (not yet stamped)."""
        events = list(self.source.events(due, self.dislocate_every(rate), start=sent))
        if self.sticky and events and now >= self.next_plant and self.per_s > 0:
            self.target, self.until = events[0][0], now + STICKY_S
            self.next_plant = now + 1 / self.per_s
        for k, event in events:
            if k == self.target and now < self.until and isinstance(event, Quote):
                yield self.source.dislocated[k]
            else:
                yield event


def stamped(event: Quote | Funding, ts_ns: int) -> Quote | Funding:
    return msgspec.structs.replace(event, exchange_ts_ns=ts_ns, receipt_ts_ns=ts_ns)


def _up(price: Decimal | None) -> Decimal | None:
    return None if price is None else price * DISLOCATION


def _quote(inst: Instrument, market: Market, now_ms: int) -> Quote:
    sim = market.quote(inst, now_ms)
    ts = now_ms * 1_000_000
    return Quote(
        instrument_id=inst.instrument_id,
        venue=inst.venue,
        native_symbol=inst.native_symbol,
        base=inst.base,
        bid=sim.bid,
        bid_size=sim.bid_size,
        ask=sim.ask,
        ask_size=sim.ask_size,
        mark=(sim.bid + sim.ask) / 2,
        price_multiplier=inst.price_multiplier,
        exchange_ts_ns=ts,
        receipt_ts_ns=ts,
        sequence=1,
        quote=inst.quote,
        kind=inst.kind,
    )


def _funding(inst: Instrument, market: Market, now_ms: int) -> Funding:
    sim = market.funding(inst, now_ms)
    ts = now_ms * 1_000_000
    return Funding(
        instrument_id=inst.instrument_id,
        venue=inst.venue,
        native_symbol=inst.native_symbol,
        base=inst.base,
        rate=sim.rate,
        interval_h=inst.funding_interval_h,
        next_funding_ts_ns=sim.next_funding_ms * 1_000_000,
        mark=sim.mark,
        index=sim.index,
        price_multiplier=inst.price_multiplier,
        exchange_ts_ns=ts,
        receipt_ts_ns=ts,
        quote=inst.quote,
        kind=inst.kind,
    )
