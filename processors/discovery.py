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

import asyncio
import logging
import re
import time
from collections.abc import Iterable

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from processors.faust_host import EngineHost

log = logging.getLogger(__name__)

WATCH_S = 10.0
WATCH_ATTEMPTS = 3


def matching(names: Iterable[str], pattern: str) -> list[str]:
    compiled = re.compile(pattern)
    return sorted(name for name in names if compiled.match(name))


def split_by_partitions(counts: dict[str, int], partitions: int) -> tuple[list[str], dict[str, int]]:
    """(topics with ``partitions`` partitions, the others with their count): only the first can be
    co-partitioned with the worker's table, the others would put a symbol's state elsewhere."""
    good = sorted(name for name, count in counts.items() if count == partitions)
    return good, {name: count for name, count in counts.items() if count != partitions}


class TopicDiscovery:
    """Keeps ``names`` (the list the agent's topic reads) equal to the cluster's tick topics.

    A topic it adds is watched for a while: in about one resubscription in four (tests, a busy
    machine) Faust assigned a new topic's partition but never fetched it (it logged "No active
    partitions" during that rebalance; cf. faust-streaming #629). If the partition holds records
    past the group's committed offset and delivered nothing ``WATCH_S`` after being added, the
    worker resubscribes again (at most ``WATCH_ATTEMPTS`` times, logged). Only topics found while
    running are watched: a start-up with hundreds of backlogged partitions is not second-guessed.
    """

    def __init__(
        self, app: faust.App, host: EngineHost, names: list[str], pattern: str, bootstrap: str, partitions: int
    ) -> None:
        self.app = app
        self.host = host
        self._watch: dict[str, tuple[float, int]] = {}
        """Topic found while running -> (when to check its delivery, resubscriptions so far)."""
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
            self._watch.update({name: (time.monotonic() + WATCH_S, 0) for name in new})
            self.resubscribe()
        elif self._unread():
            # A change flagged while the group was rebalancing is dropped by Faust's conductor: flag again.
            self.resubscribe()
        elif self._watch and not self.app.rebalancing:
            await self._check_watched()
        return new

    async def _check_watched(self) -> None:
        now = time.monotonic()
        due = {name for name, (when, _) in self._watch.items() if when <= now}
        if not due:
            return
        stuck = self.host.undelivered(due)
        waiting = await self._with_records([TopicPartition(tp.topic, tp.partition) for tp in stuck])
        for name in due:
            attempts = self._watch[name][1]
            if name not in waiting or attempts >= WATCH_ATTEMPTS:
                del self._watch[name]  # delivered, not ours, empty, or given up (logged below)
                if name in waiting:
                    log.error("%s: records waiting but never delivered after %d resubscriptions", name, attempts)
            else:
                self._watch[name] = (now + WATCH_S, attempts + 1)
        if waiting & due:
            log.warning(
                "new tick topics %s delivered nothing yet: resubscribing again", ",".join(sorted(waiting & due))
            )
            self.resubscribe()

    async def _with_records(self, tps: list[TopicPartition]) -> set[str]:
        """Topics among ``tps`` holding records past the group's committed offset."""
        if not tps:
            return set()
        committed = await committed_offsets(self.bootstrap, self.app.conf.id, tps)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(tps)  # the client fetches metadata for assigned topics only
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
        return {tp.topic for tp in tps if ends.get(tp, 0) > committed.get(tp, 0)}

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


COMMITTED_TIMEOUT_S = 30.0


async def committed_offsets(bootstrap: str, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The group's committed offset per partition (absent: never committed), in one request."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await asyncio.wait_for(admin.list_consumer_group_offsets(group, partitions=tps), COMMITTED_TIMEOUT_S)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}
