"""Incremental fetch sessions (Kafka KIP-227) for an aiokafka consumer.

aiokafka 0.14 sends every fetch as a full one: the request names every partition it wants and
the broker answers with an entry for each, data or not. A worker holding the whole market's 480
``ticks.<BASE>`` partitions therefore encodes and decodes 480 entries per fetch in pure Python
(~9 ms of CPU each, tens of fetches a second) and the broker walks them all, while a few dozen
carry records (decision 0031). In a fetch session the broker remembers the partitions and their
fetch offsets: a request names only the partitions whose offset changed (they got records) plus
the ones to drop, and the response only those with news.

:func:`enable` patches one started consumer's fetcher (instance attributes only, nothing global):
the fetcher still decides what to fetch; each full request it builds is turned into the
session's next request, and each response (or failure) moves the session on. Anything
unexpected — an error, a cancelled fetch, a session the broker lost, a broker that does not do
sessions — falls back to a full request, which is what aiokafka did anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka.consumer.fetcher import Fetcher
from aiokafka.protocol.fetch import FetchRequest

log = logging.getLogger(__name__)

FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
INITIAL_EPOCH = 0
"""Epoch of a full request that asks the broker to create a session (session id 0)."""
MAX_EPOCH = 2**31 - 1
SESSION_MIN_VERSION = 7

PartitionFetch = tuple[int, int]
"""What a session remembers of a partition: (fetch offset, max bytes)."""
PartitionKey = tuple[str, int]
"""(topic, partition): a plain tuple, equal to and hashed as aiokafka's ``TopicPartition``, built
~10x cheaper (a namedtuple's constructor is a Python call: building one per partition of every
fetch was 11 % of an idle whole-market worker's consumer thread, py-spy)."""


@dataclass
class FetchSession:
    """One broker's fetch session as this client sees it."""

    node_id: int
    session_id: int = 0
    epoch: int = INITIAL_EPOCH
    partitions: dict[PartitionKey, PartitionFetch] = field(default_factory=dict)
    """What the broker holds for this session, as of the last answered request."""
    full_requests: int = 0
    incremental_requests: int = 0
    resets: int = 0

    def reset(self, why: str) -> None:
        if self.session_id:
            log.debug("fetch session %d on node %d reset: %s", self.session_id, self.node_id, why)
            self.resets += 1
        self.session_id, self.epoch, self.partitions = 0, INITIAL_EPOCH, {}

    def answered(self, sent: dict[PartitionKey, PartitionFetch], error_code: int, session_id: int) -> None:
        """The broker answered the request that asked for ``sent`` (every wanted partition)."""
        if error_code in (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH):
            self.reset(f"broker error {error_code}")
            return
        if error_code or not session_id:
            # Another top-level error, or a broker that keeps no session for us: stay with full fetches.
            self.reset(f"top-level error {error_code}" if error_code else "no session offered")
            return
        self.epoch = 1 if self.session_id != session_id else (1 if self.epoch >= MAX_EPOCH else self.epoch + 1)
        self.session_id, self.partitions = session_id, sent


class SessionFetchRequest(FetchRequest):  # type: ignore[misc]  # aiokafka.protocol is untyped
    """aiokafka's full request, sent as the next request of a :class:`FetchSession`.

    ``topics`` stays the full list (the fetcher matches response entries against it); only the
    request built for the wire is incremental."""

    def __init__(self, full: FetchRequest, session: FetchSession) -> None:
        super().__init__(
            full._max_wait_ms,
            full._min_bytes,
            full._max_bytes,
            full._isolation_level,
            full.topics,
            rack_id=full._rack_id,
        )
        self.session = session
        self.wanted: dict[PartitionKey, PartitionFetch] = {
            (topic, partition): (offset, max_bytes)
            for topic, partitions in full.topics
            for partition, offset, max_bytes in partitions
        }

    def build(self, request_struct_class: Any) -> Any:
        version = request_struct_class.API_VERSION
        session = self.session
        if version < SESSION_MIN_VERSION:
            session.reset(f"broker speaks fetch v{version}")
            return super().build(request_struct_class)
        held = session.partitions if session.session_id else {}
        changed: dict[str, list[tuple[int, ...]]] = {}
        for tp, fetch in self.wanted.items():
            if held.get(tp) != fetch:
                topic, partition = tp
                offset, max_bytes = fetch
                # v9+ carries the leader epoch (-1: unknown); log start offset -1: we are a consumer.
                entry = (partition, -1, offset, -1, max_bytes) if version >= 9 else (partition, offset, -1, max_bytes)
                changed.setdefault(topic, []).append(entry)
        forgotten: dict[str, list[int]] = {}
        for topic, partition in held.keys() - self.wanted.keys():
            forgotten.setdefault(topic, []).append(partition)
        if session.session_id:
            session.incremental_requests += 1
        else:
            session.full_requests += 1
        args: list[object] = [-1, self._max_wait_ms, self._min_bytes, self._max_bytes, self._isolation_level]
        args += [session.session_id, session.epoch, list(changed.items()), list(forgotten.items())]
        if version >= 11:
            args.append(self._rack_id)
        return request_struct_class(*args)


class _SessionClient:
    """The fetcher's view of the consumer's client: fetches go through their session."""

    def __init__(self, client: Any) -> None:
        self._client = client
        # Read for every partition of every fetch; set once by the client, never replaced.
        self.cluster = client.cluster

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def send(self, node_id: int, request: Any, **kwargs: Any) -> Any:
        if not isinstance(request, SessionFetchRequest):
            return await self._client.send(node_id, request, **kwargs)
        try:
            response = await self._client.send(node_id, request, **kwargs)
        except BaseException as exc:
            # Sent or not, answered or not: the broker's epoch is unknown now; start over.
            request.session.reset(f"request failed: {exc!r}")
            raise
        if getattr(response, "API_VERSION", 0) >= SESSION_MIN_VERSION:
            request.session.answered(request.wanted, response.error_code, response.session_id)
        return response


@dataclass
class FetchSessions:
    """A fetcher's sessions, one per broker."""

    by_node: dict[int, FetchSession] = field(default_factory=dict)

    def of(self, node_id: int) -> FetchSession:
        session = self.by_node.get(node_id)
        if session is None:
            session = self.by_node[node_id] = FetchSession(node_id)
        return session


def enable(fetcher: Fetcher) -> FetchSessions:
    """Send ``fetcher``'s fetches through incremental sessions, one per broker; the sessions (for
    counters and tests). Idempotent."""
    existing: FetchSessions | None = getattr(fetcher, "_arbstream_sessions", None)
    if existing is not None:
        return existing
    sessions = FetchSessions()
    actions = fetcher._get_actions_per_node

    def get_actions_per_node(assignment: Any) -> Any:
        fetch_requests, *rest = actions(assignment)
        wrapped = [(node_id, SessionFetchRequest(request, sessions.of(node_id))) for node_id, request in fetch_requests]
        return (wrapped, *rest)

    fetcher._get_actions_per_node = get_actions_per_node
    fetcher._client = _SessionClient(fetcher._client)
    fetcher._arbstream_sessions = sessions
    return sessions
