"""Settled funding rates: detecting a settlement, and the history the API keeps of them.

Settlement rule (decision 0018): a leg settles at its next-funding time ``T`` at the last rate
quoted *for* ``T`` (a ``Funding`` whose ``next_funding_ts_ns`` is ``T``, received before ``T``).
It is detected either when a later ``Funding`` names a later next-funding time (the venue
rolled over) or when ``T`` is ``grace`` in the past and nothing rolled it over (the venue went
quiet). Both give the same settlement: whoever sees it first writes it, duplicates share a key.

No I/O here: :mod:`api.funding_feed` feeds the tracker from the read model and the history
from the ``funding-settlements`` topic; tests hit both directly.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from decimal import Decimal

from api.funding_math import ALIGN_TOLERANCE_NS, average_apr, next_settlement
from schemas.funding import FundingSettlement
from schemas.market import Funding

DAY_NS = 86_400_000_000_000


@dataclass(frozen=True)
class _Pending:
    funding: Funding
    settles_ts_ns: int
    estimated: bool


class SettlementTracker:
    def __init__(self, grace_ns: int = 30_000_000_000) -> None:
        self.grace_ns = grace_ns
        self._pending: dict[str, _Pending] = {}
        """Per instrument: the latest rate quoted for its coming settlement."""
        self._settled: dict[str, int] = {}
        """Per instrument: the latest settlement time already reported (never report one twice)."""
        self.unscheduled = 0
        """Funding updates without rate or interval: nothing to settle (counted, not silent)."""

    def settled_up_to(self, instrument_id: str, settled_ts_ns: int) -> None:
        """What history already holds (e.g. after a restart): do not report it again."""
        if settled_ts_ns > self._settled.get(instrument_id, -1):
            self._settled[instrument_id] = settled_ts_ns

    def observe(self, funding: Funding) -> list[FundingSettlement]:
        """A funding update; returns the settlement it reveals (the previous schedule rolled over)."""
        schedule = next_settlement(funding, funding.receipt_ts_ns)
        pending = self._pending.get(funding.instrument_id)
        out = []
        if pending is not None and (schedule is None or schedule[0] > pending.settles_ts_ns + ALIGN_TOLERANCE_NS):
            out += self._settle(pending)
            del self._pending[funding.instrument_id]
        if schedule is None or funding.rate is None:
            self.unscheduled += 1
            return out
        if funding.receipt_ts_ns <= schedule[0]:
            self._pending[funding.instrument_id] = _Pending(funding, schedule[0], schedule[1])
        return out

    def due(self, now_ns: int) -> list[FundingSettlement]:
        """Settlements whose time is ``grace`` past with no rollover seen (a quiet venue)."""
        out = []
        for instrument_id, pending in list(self._pending.items()):
            if pending.settles_ts_ns + self.grace_ns <= now_ns:
                out += self._settle(pending)
                del self._pending[instrument_id]
        return out

    def _settle(self, pending: _Pending) -> list[FundingSettlement]:
        funding = pending.funding
        if funding.rate is None or not funding.interval_h:
            return []
        if pending.settles_ts_ns <= self._settled.get(funding.instrument_id, -1):
            return []
        self._settled[funding.instrument_id] = pending.settles_ts_ns
        return [
            FundingSettlement(
                instrument_id=funding.instrument_id,
                venue=funding.venue,
                base=funding.base,
                rate=funding.rate,
                interval_h=funding.interval_h,
                settled_ts_ns=pending.settles_ts_ns,
                observed_ts_ns=funding.receipt_ts_ns,
                time_estimated=pending.estimated,
            )
        ]


class FundingHistory:
    """Settled rates per instrument, ordered by time, at most ``retention_ns`` old."""

    def __init__(self, retention_ns: int = 35 * DAY_NS) -> None:
        self.retention_ns = retention_ns
        self._times: dict[str, list[int]] = {}
        self._rows: dict[str, dict[int, FundingSettlement]] = {}

    def add(self, settlement: FundingSettlement) -> bool:
        """Upsert by (instrument, time); of two reports the later-observed rate wins, so the result
        does not depend on which replica's record came first. True when something changed."""
        rows = self._rows.setdefault(settlement.instrument_id, {})
        current = rows.get(settlement.settled_ts_ns)
        if current is not None and current.observed_ts_ns >= settlement.observed_ts_ns:
            return False
        if current is None:
            bisect.insort(self._times.setdefault(settlement.instrument_id, []), settlement.settled_ts_ns)
        rows[settlement.settled_ts_ns] = settlement
        return True

    def prune(self, now_ns: int) -> int:
        """Drop what is older than the retention; returns how many."""
        cutoff, dropped = now_ns - self.retention_ns, 0
        for instrument_id, times in self._times.items():
            cut = bisect.bisect_left(times, cutoff)
            for t in times[:cut]:
                del self._rows[instrument_id][t]
            del times[:cut]
            dropped += cut
        return dropped

    @property
    def instruments(self) -> list[str]:
        return [i for i, times in self._times.items() if times]

    def __len__(self) -> int:
        return sum(len(times) for times in self._times.values())

    def oldest_ts_ns(self) -> int | None:
        return min((times[0] for times in self._times.values() if times), default=None)

    def last(self, instrument_id: str) -> FundingSettlement | None:
        times = self._times.get(instrument_id)
        return self._rows[instrument_id][times[-1]] if times else None

    def between(self, instrument_id: str, since_ns: int, until_ns: int) -> list[FundingSettlement]:
        """Settlements with ``since_ns < time <= until_ns``, oldest first."""
        times = self._times.get(instrument_id, [])
        lo, hi = bisect.bisect_right(times, since_ns), bisect.bisect_right(times, until_ns)
        rows = self._rows.get(instrument_id, {})
        return [rows[t] for t in times[lo:hi]]

    def average_apr(self, instrument_id: str, since_ns: int, until_ns: int) -> Decimal | None:
        """Realised APR over the settlements in the window (None: none in it)."""
        return average_apr((s.rate, s.interval_h) for s in self.between(instrument_id, since_ns, until_ns))
