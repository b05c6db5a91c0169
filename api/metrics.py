"""Prometheus metrics of the API (GET /metrics).

Each app gets its own registry, so several apps in one process (tests, two
replicas in-process) never collide on metric names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.records = Counter("arbstream_api_records", "Records read into the read model", ["topic"], registry=r)
        self.undecodable = Counter(
            "arbstream_api_undecodable_records", "Records skipped as undecodable", ["topic"], registry=r
        )
        self.lag = Gauge("arbstream_api_consumer_lag", "Records not yet read, per topic", ["topic"], registry=r)
        self.symbols = Gauge("arbstream_api_symbols", "Symbols in the read model", registry=r)
        self.worker_ticks = Gauge(
            "arbstream_worker_ticks",
            "Ticks each worker has handled since it started, by outcome (processed, conflated, ...)",
            ["worker", "outcome"],
            registry=r,
        )
        self.history_samples = Gauge(
            "arbstream_api_spread_history_samples", "Samples held by the spread history (all venue pairs)", registry=r
        )
        self.history_pairs = Gauge(
            "arbstream_api_spread_history_pairs", "Venue pairs with a spread history series", registry=r
        )
        self.alerts_held = Gauge("arbstream_api_alerts_held", "Recent alerts kept in memory (capped)", registry=r)
        self.closed_held = Gauge(
            "arbstream_api_closed_episodes_held", "Closed episodes kept in memory (capped)", registry=r
        )
        self.ws_clients = Gauge("arbstream_api_ws_clients", "Connected WebSocket clients", registry=r)
        self.ws_sent = Counter("arbstream_api_ws_messages_sent", "WebSocket messages sent", ["type"], registry=r)
        self._sent_by_type: dict[str, Counter] = {}
        self.ws_dropped = Counter(
            "arbstream_api_ws_messages_dropped", "Events dropped from full client queues", registry=r
        )
        self.ws_clients_dropped = Counter(
            "arbstream_api_ws_clients_dropped", "Clients disconnected for being too slow", registry=r
        )
        self.ws_fanout_seconds = Histogram(
            "arbstream_api_ws_fanout_seconds",
            "Time to hand one batch of changes to every client's queue",
            buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5),
            registry=r,
        )

        self.ws_delivery_seconds = Histogram(
            "arbstream_api_ws_delivery_seconds",
            "From publishing an event to the last wanting client's socket taking it (dropped or "
            "disconnected clients count as done)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )

    def sent(self, kind: str, count: int = 1) -> None:
        # labels() takes a lock and a dict lookup; cache the child per message type.
        child = self._sent_by_type.get(kind)
        if child is None:
            child = self._sent_by_type[kind] = self.ws_sent.labels(kind)
        child.inc(count)
