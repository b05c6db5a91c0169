"""Every worker's view of venue health, read from the ``health`` topic, in event time.

Health is small and global (any symbol's legs need any venue's state), so each
worker follows the whole topic with its own group-less consumer instead of a
Faust GlobalTable. A venue counts as unhealthy while ANY of its connections
last reported disconnected, stale, error or gap: conservative on purpose, a
leg is only usable while its venue is known to be fine.

Health is kept as a timeline keyed by each report's receipt time (ingest's clock, the clock of
the ticks' receipt times), so a tick is judged by the health its venue had *when the tick was
received* (:meth:`HealthView.at`), not by whatever report the worker read last: a replay or a
worker catching up on a backlog sees the recorded health, not today's (decision 0024). Only
state changes make a new point of the timeline (the periodic same-state reports do not), and
points older than ``keep_ns`` behind the newest report are folded into the first kept one.
"""

from __future__ import annotations

import bisect
import contextlib
import logging

import msgspec
from aiokafka import AIOKafkaConsumer

from processors.arbitrage import UNHEALTHY
from schemas.market import Health, decode_health

log = logging.getLogger(__name__)

KEEP_NS = 2 * 3_600 * 1_000_000_000
"""Two hours of changes: the health topic keeps one, and a worker further behind than that has
lost the ticks' context anyway."""
_NOTHING: dict[str, Health] = {}


def _receipt(health: Health) -> int:
    return health.receipt_ts_ns


def worst(reports: list[Health], otherwise: Health) -> Health:
    """A venue's health from its connections' latest reports: the first unhealthy one, else ``otherwise``."""
    return next((h for h in reports if h.state in UNHEALTHY), otherwise)


class HealthView:
    def __init__(self, keep_ns: int = KEEP_NS) -> None:
        self.keep_ns = keep_ns
        self.by_connection: dict[str, Health] = {}
        """Each connection's newest report (by receipt time)."""
        self.by_venue: dict[str, Health] = {}
        """Every venue's health as of its newest reports (what a tick newer than every change sees)."""
        self._changes: dict[str, list[Health]] = {}
        """Per connection, its state changes in receipt-time order."""
        self._times: list[int] = []
        self._maps: list[dict[str, Health]] = []
        """``_maps[i]``: every venue's health from ``_times[i]`` until the next point."""
        self._folded = False
        self.late = 0
        """Reports older than their connection's newest one (read out of order: counted, placed in time)."""

    def at(self, ts_ns: int) -> dict[str, Health]:
        """Every venue's health at event time ``ts_ns`` (a venue without a report before it: absent)."""
        times = self._times
        if not times or ts_ns >= times[-1]:
            return self.by_venue  # the live case: the tick is newer than every change
        i = bisect.bisect_right(times, ts_ns) - 1
        if i < 0:
            return self._maps[0] if self._folded else _NOTHING
        return self._maps[i]

    def apply(self, health: Health) -> None:
        key = f"{health.venue}|{health.connection}"
        newest = self.by_connection.get(key)
        in_order = newest is None or health.receipt_ts_ns >= newest.receipt_ts_ns
        if in_order:
            self.by_connection[key] = health
        mine = [h for k, h in self.by_connection.items() if k.startswith(f"{health.venue}|")]
        self.by_venue[health.venue] = worst(mine, self.by_connection[key])
        changes = self._changes.setdefault(key, [])
        if in_order:
            if not changes or health.state != changes[-1].state:
                changes.append(health)
                self._rebuild(health.receipt_ts_ns)
            return
        self.late += 1
        bisect.insort(changes, health, key=_receipt)
        latest = self.by_connection[key]
        if latest is not health and latest not in changes:
            # Same-state reports are not kept: the newest one marks when the late report's state
            # ended at the latest (exactly, when the connection reports changes only).
            bisect.insort(changes, latest, key=_receipt)
        self._rebuild(health.receipt_ts_ns)

    def _rebuild(self, since_ns: int) -> None:
        """Recompute the timeline's points from ``since_ns`` on (usually just the newest one)."""
        keep = bisect.bisect_left(self._times, since_ns)
        del self._times[keep:], self._maps[keep:]
        current = dict(self._maps[-1]) if self._maps else {}
        events = sorted(
            (h for changes in self._changes.values() for h in changes if h.receipt_ts_ns >= since_ns), key=_receipt
        )
        for health in events:
            prefix = f"{health.venue}|"
            reports = [self._latest(key, health.receipt_ts_ns) for key in self._changes if key.startswith(prefix)]
            current[health.venue] = worst([r for r in reports if r is not None], health)
            if self._times and self._times[-1] == health.receipt_ts_ns:
                self._maps[-1] = dict(current)
            else:
                self._times.append(health.receipt_ts_ns)
                self._maps.append(dict(current))
        self._fold()

    def _latest(self, key: str, ts_ns: int) -> Health | None:
        changes = self._changes[key]
        i = bisect.bisect_right(changes, ts_ns, key=_receipt) - 1
        return changes[i] if i >= 0 else None

    def _fold(self) -> None:
        """Drop points older than ``keep_ns`` behind the newest, keeping the state they lead to."""
        cut = self._times[-1] - self.keep_ns if self._times else 0
        first = bisect.bisect_right(self._times, cut) - 1
        if first <= 0:
            return
        del self._times[:first], self._maps[:first]
        self._folded = True
        for changes in self._changes.values():
            older = bisect.bisect_right(changes, cut, key=_receipt) - 1
            if older > 0:
                del changes[:older]

    async def follow(self, bootstrap: str, topic: str) -> None:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            async for record in consumer:
                try:
                    self.apply(decode_health(record.value))
                except msgspec.DecodeError as exc:
                    log.error("undecodable health record at %s/%s: %s", record.partition, record.offset, exc)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
