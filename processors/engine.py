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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import msgspec

from processors.arbitrage import ArbConfig, FastBook, expire_episodes, process_quote
from processors.funding import FundingConfig, expire_funding_episodes, process_funding
from processors.health_view import HealthView
from schemas.arbitrage import EpisodeClosed, FundingEpisodeClosed, FundingOpportunity, Opportunity, SymbolState
from schemas.market import Funding, Health, Quote, decode_ticks, encode

log = logging.getLogger(__name__)

MAX_EXPONENT = 30
"""No price, size or rate is anywhere near 1e30 or 1e-30 (other than 0): such a number is a data
error. It is checked by its exponent, not compared: arithmetic on 1E+999999999 overflows, and
1E-999999999 becomes the float 0.0 that the pre-filter would divide by."""


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
    out_of_order: int = 0
    """Quotes older than the one held for their instrument (a retry or a reordering upstream): ignored."""
    skipped_records: int = 0
    """Records of a stale backlog the worker jumped over or left out of a stale fetch
    (``worker_skip_behind_ms``), never processed."""


@dataclass
class Slot:
    """One symbol's live state: the table row plus what only lives in memory."""

    state: SymbolState
    fast: FastBook = field(default_factory=FastBook)
    urgent: bool = False
    """An episode or the cooldown changed: write the row before the batch's offsets are committed."""
    dirty: bool = False
    """Funding or episode counters changed: write the row within the flush interval."""
    quotes_changed: bool = False
    """A quote was applied or rebuilt since the symbol's last ``prices`` record (decision 0041)."""


@dataclass
class Emitted:
    alerts: list[Opportunity] = field(default_factory=list)
    closed: list[EpisodeClosed] = field(default_factory=list)
    funding: list[FundingOpportunity] = field(default_factory=list)
    funding_closed: list[FundingEpisodeClosed] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    """For the dead-letter topic: what was rejected, with the reason."""


@dataclass(frozen=True)
class Rejected:
    offset: int
    reason: str
    payload: bytes
    """The rejected tick as JSON, or the whole record when it could not be decoded."""


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


def older(quote: Quote, held: Quote) -> bool:
    """``quote`` is not newer than ``held`` (same instrument): an earlier exchange time, or the same
    time with a sequence not above the held one's, or the very same quote again (a re-sent record)."""
    if quote.exchange_ts_ns != held.exchange_ts_ns:
        return quote.exchange_ts_ns < held.exchange_ts_ns
    if quote.sequence is not None and held.sequence is not None:
        return quote.sequence <= held.sequence
    return quote == held


def insane(event: Quote | Funding) -> str | None:
    """Why an event's numbers cannot be used (NaN, infinity, absurd magnitude), or None."""
    numbers: tuple[Decimal | None, ...]
    if isinstance(event, Quote):
        numbers = (event.bid, event.ask, event.bid_size, event.ask_size, event.price_multiplier)
    else:
        numbers = (event.rate, event.mark, event.index, event.price_multiplier)
    for number in numbers:
        if number is None or (number.is_finite() and -MAX_EXPONENT <= number.adjusted() <= MAX_EXPONENT):
            continue
        if number or not number.is_finite():  # zero is fine whatever its exponent (0E-40)
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
        self.newest_event_ns = 0
        """The newest receipt time of a processed tick: what the worker's event-time clock follows."""

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

    def apply_batch(
        self, base: str, records: Sequence[TickRecord], health: HealthView | dict[str, Health], now_ms: int
    ) -> Emitted:
        """Apply one partition's records (in offset order, each a batch of ticks) to ``base``'s slot.

        ``health``: a :class:`HealthView` (each tick sees the venues' health at its receipt time) or
        one fixed map."""
        slot = self.slots.get(base)
        if slot is None:
            slot = self.slots[base] = Slot(SymbolState())
        out = Emitted()
        decoded = [(record, decode_record(record)) for record in records]
        for record, ticks in decoded:
            if isinstance(ticks, str):  # an undecodable record counts as one tick
                self._reject(base, record.offset, ticks, record.value or b"", out)
        readable = [(record, ticks) for record, ticks in decoded if not isinstance(ticks, str)]
        skip = superseded([(record.timestamp, ticks) for record, ticks in readable], now_ms, self.conflate_after_ms)
        self.counters.conflated += len(skip)
        for r, (record, ticks) in enumerate(readable):
            for t, tick in enumerate(ticks):
                if (r, t) not in skip:
                    self._apply_tick(base, slot, record.offset, tick, health, out)
            # A record is applied whole: re-reading it (at least once) only rebuilds quotes.
            slot.state.applied_offset = max(slot.state.applied_offset, record.offset)
        out.rejected.sort(key=lambda r: r.offset)  # dead letters in offset order (undecodable ones are found first)
        return out

    def rebuild(self, base: str, ticks: list[Quote | Funding]) -> None:
        """Ticks the previous owner already processed (the last seconds before the committed offset):
        they only refill the in-memory quotes and funding of ``base``'s loaded slot."""
        slot = self.slots[base]
        for tick in ticks:
            if tick.base == base and insane(tick) is None:
                self._rebuild(slot, tick)

    def sweep(self, base: str, horizon_ns: int, health: Mapping[str, Health] | None = None) -> Emitted:
        """Close ``base``'s episodes whose legs expired before event time ``horizon_ns``, though no
        tick of the symbol came to find them (the worker's clock minus its grace, decision 0024)."""
        out = Emitted()
        slot = self.slots.get(base)
        if slot is None:
            return out
        if slot.state.episodes:
            outcome = expire_episodes(slot.state, horizon_ns, self.config)
            out.closed += outcome.closed
            slot.urgent = slot.urgent or outcome.transitions > 0
        if slot.state.funding_episodes:
            funded = expire_funding_episodes(base, slot.state, horizon_ns, self.funding_config, health)
            out.funding_closed += funded.closed
            slot.urgent = slot.urgent or funded.transitions > 0
        return out

    def _apply_tick(
        self,
        base: str,
        slot: Slot,
        offset: int,
        event: Quote | Funding,
        health: HealthView | dict[str, Health],
        out: Emitted,
    ) -> None:
        problem = insane(event) or (None if event.base == base else f"base {event.base!r} on {base!r}'s topic")
        if problem is not None:
            self._reject(base, offset, problem, encode(event), out)
            return
        state = slot.state
        if offset <= state.applied_offset:
            self._rebuild(slot, event)
            return
        held: Quote | None = None
        held_funding: Funding | None = None
        if isinstance(event, Quote):
            held = state.quotes.get(event.instrument_id)
            # The common case (a later exchange time) is decided without a call.
            if held is not None and event.exchange_ts_ns <= held.exchange_ts_ns and older(event, held):
                self.counters.out_of_order += 1
                return
        else:
            held_funding = state.funding.get(event.instrument_id)
        venues = health if isinstance(health, dict) else health.at(event.receipt_ts_ns)
        try:
            self._step(base, slot, event, venues, out)
        except (ArithmeticError, ValueError) as exc:  # one tick's failure must not stop its symbol
            self._undo(slot, event.instrument_id, held, held_funding)
            self._reject(base, offset, f"{type(exc).__name__}: {exc}", encode(event), out)
            return
        self.counters.processed += 1
        if event.receipt_ts_ns > self.newest_event_ns:
            self.newest_event_ns = event.receipt_ts_ns

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
        slot.quotes_changed = True
        # An alert also moves the cooldown, and only ever comes with an episode opening.
        slot.urgent = slot.urgent or outcome.transitions > 0
        slot.dirty = slot.dirty or bool(state.episodes)

    @staticmethod
    def _undo(slot: Slot, instrument_id: str, quote: Quote | None, funding: Funding | None) -> None:
        """After a failed step: the instrument's quote and funding as before the tick, so a bad tick
        cannot stay in the state and fail every later tick of its symbol."""
        state = slot.state
        if quote is None:
            state.quotes.pop(instrument_id, None)
        else:
            state.quotes[instrument_id] = quote
        if funding is None:
            state.funding.pop(instrument_id, None)
        else:
            state.funding[instrument_id] = funding
        slot.fast.drop(instrument_id)  # re-cached from the held quote when next needed

    def _rebuild(self, slot: Slot, event: Quote | Funding) -> None:
        """A tick the restored row already holds: only the in-memory quotes (or funding) need it."""
        if isinstance(event, Quote):
            slot.state.quotes[event.instrument_id] = event
            slot.fast.drop(event.instrument_id)  # re-cached from the quote when next needed
            slot.quotes_changed = True
        else:
            slot.state.funding[event.instrument_id] = event
        self.counters.rebuilt += 1

    def _reject(self, base: str, offset: int, reason: str, payload: bytes, out: Emitted) -> None:
        self.counters.rejected += 1
        out.rejected.append(Rejected(offset, reason, payload))
        if self.counters.rejected <= 10 or self.counters.rejected % 10_000 == 0:
            log.error("rejected tick %s@%d: %s (%d rejected so far)", base, offset, reason, self.counters.rejected)


def persisted(state: SymbolState) -> SymbolState:
    """The changelog row: everything but the quotes (rebuilt from the tick topic after a failover)."""
    return msgspec.structs.replace(state, quotes={})
