"""The worker's per-tick path without Kafka: symbol slots, conflation, rebuild, what to persist.

:mod:`processors.faust_host` (the Faust agent) feeds it each partition's records — each a
``TickBatch`` of one symbol's ticks — and sends what it returns; tests, the backtest and the
benchmark drive it directly. A symbol's ticks all arrive on one partition of its
``ticks.<BASE>`` topic, so a slot is owned by exactly one worker at a time.

Every tick in the records handed to :meth:`Engine.apply_batch` ends in exactly one counter (see
``schemas.arbitrage.WorkerStats``; an undecodable record counts as one): nothing is dropped
without being counted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import msgspec

from processors.arbitrage import ArbConfig, FastBook, process_quote
from processors.funding import FundingConfig, process_funding
from schemas.arbitrage import EpisodeClosed, FundingEpisodeClosed, FundingOpportunity, Opportunity, SymbolState
from schemas.market import Funding, Health, Quote, decode_ticks

log = logging.getLogger(__name__)

MAX_EXPONENT = 30
"""No price, size or rate is anywhere near 1e30: a larger number is a data error (and arithmetic
on one like 1E+999999999 would overflow, so it is checked by its exponent, not compared)."""


class TickRecord(Protocol):
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int: ...


@dataclass
class Counters:
    processed: int = 0
    conflated: int = 0
    rebuilt: int = 0
    forwarded: int = 0
    rejected: int = 0


@dataclass
class Slot:
    """One symbol's live state: the table row plus what only lives in memory."""

    state: SymbolState
    fast: FastBook = field(default_factory=FastBook)
    urgent: bool = False
    """An episode or the cooldown changed: write the row before the batch's offsets are committed."""
    dirty: bool = False
    """Funding or episode counters changed: write the row within the flush interval."""
    changed_quotes: dict[str, Quote] = field(default_factory=dict)
    """Latest quote per instrument since the last ``prices`` flush."""


@dataclass
class Emitted:
    alerts: list[Opportunity] = field(default_factory=list)
    closed: list[EpisodeClosed] = field(default_factory=list)
    funding: list[FundingOpportunity] = field(default_factory=list)
    funding_closed: list[FundingEpisodeClosed] = field(default_factory=list)


def decode_record(record: TickRecord) -> list[Quote | Funding] | str:
    """The ticks of one record (a ``TickBatch``, or one tick as written before batching), or why not."""
    try:
        return decode_ticks(record.value or b"")
    except msgspec.DecodeError as exc:
        return f"undecodable: {exc}"


def superseded(
    batch: Sequence[tuple[int, Sequence[Quote | Funding]]], now_ms: int, conflate_after_ms: int
) -> set[tuple[int, int]]:
    """(record, tick) indices of quotes that a newer quote of the same instrument in ``batch``
    replaces, among those whose record is already older than ``conflate_after_ms``. ``batch``:
    (Kafka timestamp ms, ticks) per record in offset order. Only a worker that is behind conflates:
    one that keeps up processes every tick, so event-time results do not depend on load."""
    if conflate_after_ms <= 0 or not batch or now_ms - batch[0][0] <= conflate_after_ms:
        return set()
    latest: dict[str, tuple[int, int]] = {}
    for r, (_, ticks) in enumerate(batch):
        for t, tick in enumerate(ticks):
            if isinstance(tick, Quote):
                latest[tick.instrument_id] = (r, t)
    cutoff = now_ms - conflate_after_ms
    return {
        (r, t)
        for r, (timestamp, ticks) in enumerate(batch)
        if timestamp < cutoff
        for t, tick in enumerate(ticks)
        if isinstance(tick, Quote) and latest[tick.instrument_id] != (r, t)
    }


def insane(event: Quote | Funding) -> str | None:
    """Why an event's numbers cannot be used (NaN, infinity, absurd magnitude), or None."""
    numbers: tuple[Decimal | None, ...]
    if isinstance(event, Quote):
        numbers = (event.bid, event.ask, event.bid_size, event.ask_size, event.price_multiplier)
    else:
        numbers = (event.rate, event.mark, event.index, event.price_multiplier)
    for number in numbers:
        if number is not None and (not number.is_finite() or number.adjusted() > MAX_EXPONENT):
            return f"unusable number {number}"
    if event.price_multiplier <= 0:
        return "non-positive price multiplier"
    return None


class Engine:
    def __init__(self, config: ArbConfig, funding_config: FundingConfig, conflate_after_ms: int) -> None:
        self.config = config
        self.funding_config = funding_config
        self.conflate_after_ms = conflate_after_ms
        self.slots: dict[str, Slot] = {}
        self.counters = Counters()
        self._reported_rejects = 0

    def load(self, base: str, state: SymbolState | None, applied_floor: int = -1) -> None:
        """Take ownership of ``base`` with its restored row (None: a new symbol).

        ``applied_floor``: the committed offset - 1 of the symbol's partition; ticks up to it
        were fully processed by the previous owner, whatever the row says.
        """
        restored = state if state is not None else SymbolState()
        restored.applied_offset = max(restored.applied_offset, applied_floor)
        self.slots[base] = Slot(restored)

    def drop(self, base: str) -> Slot | None:
        return self.slots.pop(base, None)

    def apply_batch(self, base: str, records: Sequence[TickRecord], health: dict[str, Health], now_ms: int) -> Emitted:
        """Apply one partition's records (in offset order, each a batch of ticks) to ``base``'s slot."""
        slot = self.slots.get(base)
        if slot is None:
            slot = self.slots[base] = Slot(SymbolState())
        out = Emitted()
        decoded = [(record, decode_record(record)) for record in records]
        for record, ticks in decoded:
            if isinstance(ticks, str):
                self._reject(base, record.offset, ticks)  # an undecodable record counts as one tick
        readable = [(record, ticks) for record, ticks in decoded if not isinstance(ticks, str)]
        skip = superseded([(record.timestamp, ticks) for record, ticks in readable], now_ms, self.conflate_after_ms)
        self.counters.conflated += len(skip)
        for r, (record, ticks) in enumerate(readable):
            for t, tick in enumerate(ticks):
                if (r, t) not in skip:
                    self._apply_tick(base, slot, record.offset, tick, health, out)
            # A record is applied whole: re-reading it (at least once) only rebuilds quotes.
            slot.state.applied_offset = max(slot.state.applied_offset, record.offset)
        return out

    def rebuild(self, base: str, ticks: list[Quote | Funding]) -> None:
        """Ticks the previous owner already processed (the last seconds before the committed offset):
        they only refill the in-memory quotes and funding of ``base``'s loaded slot."""
        slot = self.slots[base]
        for tick in ticks:
            if tick.base == base and insane(tick) is None:
                self._rebuild(slot, tick)

    def _apply_tick(
        self, base: str, slot: Slot, offset: int, event: Quote | Funding, health: dict[str, Health], out: Emitted
    ) -> None:
        problem = insane(event) or (None if event.base == base else f"base {event.base!r} on {base!r}'s topic")
        if problem is not None:
            self._reject(base, offset, problem)
            return
        state = slot.state
        if offset <= state.applied_offset:
            self._rebuild(slot, event)
            return
        try:
            self._step(base, slot, event, health, out)
        except (ArithmeticError, ValueError) as exc:  # one tick's failure must not stop its symbol
            self._reject(base, offset, f"{type(exc).__name__}: {exc}")
            return
        self.counters.processed += 1

    def _step(self, base: str, slot: Slot, event: Quote | Funding, health: dict[str, Health], out: Emitted) -> None:
        state = slot.state
        if isinstance(event, Funding):
            funded = process_funding(base, state, event, self.funding_config, health)
            out.funding += funded.alerts
            out.funding_closed += funded.closed
            slot.urgent = slot.urgent or funded.transitions > 0  # a funding episode or cooldown moved
            slot.dirty = True
            return
        outcome = process_quote(base, state, event, health, event.receipt_ts_ns, self.config, slot.fast)
        out.alerts += outcome.alerts
        out.closed += outcome.closed
        slot.changed_quotes[event.instrument_id] = event
        # An alert also moves the cooldown, and only ever comes with an episode opening.
        slot.urgent = slot.urgent or outcome.transitions > 0
        slot.dirty = slot.dirty or bool(state.episodes)

    def _rebuild(self, slot: Slot, event: Quote | Funding) -> None:
        """A tick the restored row already holds: only the in-memory quotes (or funding) need it."""
        if isinstance(event, Quote):
            slot.state.quotes[event.instrument_id] = event
            slot.fast.drop(event.instrument_id)  # re-cached from the quote when next needed
            slot.changed_quotes[event.instrument_id] = event
        else:
            slot.state.funding[event.instrument_id] = event
        self.counters.rebuilt += 1

    def _reject(self, base: str, offset: int, reason: str) -> None:
        self.counters.rejected += 1
        if self.counters.rejected <= 10 or self.counters.rejected % 10_000 == 0:
            log.error("rejected tick %s@%d: %s (%d rejected so far)", base, offset, reason, self.counters.rejected)


def persisted(state: SymbolState) -> SymbolState:
    """The changelog row: everything but the quotes (rebuilt from the tick topic after a failover)."""
    return msgspec.structs.replace(state, quotes={})
