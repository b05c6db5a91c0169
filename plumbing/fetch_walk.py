"""A faster walk for aiokafka's fetcher: which partitions to fetch from which broker.

Before every fetch (and after every hand-over of fetched records) aiokafka 0.14's
``Fetcher._get_actions_per_node`` walks every assigned partition: a method call for its state,
another for its leader, three property reads, and a ``log.debug`` call with arguments each. A
worker holding the whole market's 480 ``ticks.<BASE>`` partitions took ~1.7 ms per walk (wall
time in its consumer thread), two walks per fetch, ~190 walks/s at 500 ticks/s, on the critical
path of every tick (decision 0043).

:func:`actions_per_node` makes the same decisions in the same order with the same result, reading
the same state through plain attribute and dict access. ``tests/test_fetch_walk.py`` compares it
with aiokafka's own method on randomised fetcher states, so an aiokafka upgrade that changes the
rules fails there, not silently. :func:`install` puts it on one fetcher (instance attribute only).
"""

from __future__ import annotations

import collections
import logging
import random
from typing import Any

from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.fetcher import log as fetcher_log
from aiokafka.protocol.fetch import FetchRequest

Actions = tuple[list[tuple[int, FetchRequest]], dict[int, list[Any]], float, bool, list[Any]]
"""(fetch requests per node, partitions awaiting an offset reset per leader, seconds until a node
leaves its backoff, whether metadata is missing a leader, futures of paused partitions)."""


def actions_per_node(fetcher: Fetcher, assignment: Any) -> Actions:
    """What ``fetcher._get_actions_per_node(assignment)`` returns, for the same state."""
    if fetcher_log.isEnabledFor(logging.DEBUG):
        # aiokafka logs every partition it adds or finds leaderless; keep that when asked for.
        result: Actions = Fetcher._get_actions_per_node(fetcher, assignment)
        return result
    fetchable: dict[int, list[tuple[Any, int]]] = collections.defaultdict(list)
    awaiting_reset: dict[int, list[Any]] = collections.defaultdict(list)
    backoff_by_nodes: dict[int, list[float]] = collections.defaultdict(list)
    resume_futures: list[Any] = []
    invalid_metadata = False
    records, in_flight = fetcher._records, fetcher._in_flight
    cluster = fetcher._client.cluster
    partitions_of = cluster._partitions
    preferred = fetcher._preferred_read_replica
    for tp, tp_state in assignment._tp_state.items():
        if preferred:
            node_id = fetcher._select_read_replica(tp)
        else:
            # ClusterMetadata.leader_for_partition, inlined: None when the partition is unknown.
            known = partitions_of.get(tp.topic)
            metadata = known.get(tp.partition) if known is not None else None
            node_id = metadata.leader if metadata is not None else None
        if tp in records:
            backoff = records[tp].calculate_backoff()
            if backoff:
                backoff_by_nodes[node_id].append(backoff)
        elif node_id in in_flight:
            continue
        elif node_id is None or node_id == -1:
            invalid_metadata = True
        elif tp_state._position is None:
            leader_id = cluster.leader_for_partition(tp)
            if leader_id is None or leader_id == -1:
                invalid_metadata = True
            else:
                awaiting_reset[leader_id].append(tp)
        elif tp_state._paused:
            resume_futures.append(tp_state._resume_fut)
        else:
            fetchable[node_id].append((tp, tp_state._position))
    fetch_requests = [
        (node_id, _fetch_request(fetcher, partition_data))
        for node_id, partition_data in fetchable.items()
        if node_id not in backoff_by_nodes and node_id not in awaiting_reset
    ]
    backoff = min(map(max, backoff_by_nodes.values())) if backoff_by_nodes else fetcher._fetcher_timeout
    return fetch_requests, awaiting_reset, backoff, invalid_metadata, resume_futures


def _fetch_request(fetcher: Fetcher, partition_data: list[tuple[Any, int]]) -> FetchRequest:
    # Shuffled as aiokafka does, so partitions share a response's byte budget fairly.
    random.shuffle(partition_data)
    max_bytes = fetcher._max_partition_fetch_bytes
    by_topics: dict[str, list[tuple[int, int, int]]] = collections.defaultdict(list)
    for tp, position in partition_data:
        by_topics[tp.topic].append((tp.partition, position, max_bytes))
    return FetchRequest(
        fetcher._fetch_max_wait_ms,
        fetcher._fetch_min_bytes,
        fetcher._fetch_max_bytes,
        fetcher._isolation_level,
        list(by_topics.items()),
        rack_id=fetcher._client_rack or "",
    )


def install(fetcher: Fetcher) -> None:
    """Make ``fetcher`` walk its partitions with :func:`actions_per_node`. Idempotent. Install it
    before :func:`plumbing.fetch_sessions.enable`, which wraps the walk the fetcher has then."""
    fetcher._get_actions_per_node = lambda assignment: actions_per_node(fetcher, assignment)
