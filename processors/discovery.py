"""New ``ticks.<BASE>`` topics, found while the worker runs and added to its Faust subscription.

faust-streaming 0.15.3 accepts ``app.topic(pattern=...)`` but never subscribes a pattern (its
aiokafka driver passes topic names only: ``# XXX pattern does not work``), so the worker reads
an explicit list of tick topics: the ones that exist at start, plus every topic matching the
pattern that a poll of the cluster's topic list finds later. Adding names to the agent's topic
and telling Faust's conductor that the subscription changed makes Faust resubscribe, which
rebalances the group; the new topic's partitions are then assigned co-partitioned with the
others (one partition number -> one worker, changelog included).

Delay until a new topic is read: up to one ``worker_discover_interval_ms`` poll, plus the
conductor's coalescing sleep (``worker_resubscribe_delay_s``, Faust's default 45 s), plus
one rebalance.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import faust
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


def matching(names: Iterable[str], pattern: str) -> list[str]:
    compiled = re.compile(pattern)
    return sorted(name for name in names if compiled.match(name))


def split_by_partitions(counts: dict[str, int], partitions: int) -> tuple[list[str], dict[str, int]]:
    """(topics with ``partitions`` partitions, the others with their count): only the first can be
    co-partitioned with the worker's table, the others would put a symbol's state elsewhere."""
    good = sorted(name for name, count in counts.items() if count == partitions)
    return good, {name: count for name, count in counts.items() if count != partitions}


class TopicDiscovery:
    """Keeps ``names`` (the list the agent's topic reads) equal to the cluster's tick topics."""

    def __init__(self, app: faust.App, names: list[str], pattern: str, bootstrap: str, partitions: int) -> None:
        self.app = app
        self.names = names
        self.pattern = pattern
        self.partitions = partitions
        self.refused: dict[str, int] = {}
        """Tick topics left out because their partition count cannot be co-partitioned."""
        self.bootstrap = bootstrap
        self._admin: AIOKafkaAdminClient | None = None

    async def poll(self) -> list[str]:
        """Look for new tick topics once; returns the names added to the subscription."""
        try:
            return await self._poll()
        except (KafkaError, TimeoutError) as exc:  # the next poll tries again
            log.warning("tick topic discovery failed this time: %r", exc)
            return []

    async def _poll(self) -> list[str]:
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)  # needs the running loop
            await self._admin.start()
        listed = matching(await self._admin.list_topics(), self.pattern)
        new = [name for name in listed if name not in self.names and name not in self.refused]
        if new:
            described = await self._admin.describe_topics(new)
            counts = {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}
            good, wrong = split_by_partitions(counts, self.partitions)
            for name, count in wrong.items():
                log.error(
                    "tick topic %s has %d partitions, not ARBSTREAM_TOPIC_PARTITIONS=%d: not read "
                    "(its symbol's state could not be co-partitioned); recreate it",
                    name,
                    count,
                    self.partitions,
                )
            self.refused.update(wrong)
            self.names.extend(good)
            new = good
        if new:
            log.info("new tick topics %s: resubscribing", ",".join(new))
            self.resubscribe()
        elif self._unread():
            # A change flagged while the group was rebalancing is dropped by Faust's conductor: flag again.
            self.resubscribe()
        return new

    def _unread(self) -> bool:
        if self.app.rebalancing:
            return False
        assigned = {tp.topic for tp in self.app.consumer.assignment()}
        return bool(assigned) and any(name not in assigned for name in self.names)

    def resubscribe(self) -> None:
        """Tell the conductor the agent's topic changed (its public discard/add flag a resubscription)."""
        for channel in list(self.app.topics):
            if getattr(channel, "topics", None) is self.names:
                self.app.topics.discard(channel)
                self.app.topics.add(channel)

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
