"""Prometheus metrics of ``arbstream ingest``, read from the runners' own counters at scrape time.

A custom collector (instead of incrementing prometheus counters on the hot path)
keeps per-frame work to plain integer increments in ConnectionStats.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.publisher import Publisher
from ingest.runner import ConnectionRunner


class IngestCollector(Collector):
    def __init__(self, runners: Sequence[ConnectionRunner], publisher: Publisher | None) -> None:
        self.runners = runners
        self.publisher = publisher

    def collect(self) -> Iterator[Metric]:
        labels = ["venue", "connection"]
        families = {
            "frames": CounterMetricFamily("arbstream_ingest_frames", "frames received", labels=labels),
            "events": CounterMetricFamily("arbstream_ingest_events", "quotes and funding parsed", labels=labels),
            "malformed": CounterMetricFamily(
                "arbstream_ingest_malformed", "frames that failed to parse", labels=labels
            ),
            "reconnects": CounterMetricFamily("arbstream_ingest_reconnects", "reconnections", labels=labels),
            "resyncs": CounterMetricFamily(
                "arbstream_ingest_resyncs", "sequence skips resynced per instrument", labels=labels
            ),
        }
        streaming = GaugeMetricFamily(
            "arbstream_ingest_streaming", "1 while the connection streams data", labels=labels
        )
        for runner in self.runners:
            key = [runner.venue_cls.name, runner.plan.label]
            stats = runner.stats
            families["frames"].add_metric(key, stats.frames)
            families["events"].add_metric(key, stats.events)
            families["malformed"].add_metric(key, stats.malformed + stats.parse_errors)
            families["reconnects"].add_metric(key, stats.reconnects)
            families["resyncs"].add_metric(key, stats.resyncs)
            streaming.add_metric(key, 1 if runner.state.value == "streaming" else 0)
        yield from families.values()
        yield streaming
        if self.publisher is not None:
            published = self.publisher.stats
            for name, value in (
                ("queued", published.queued),
                ("delivered", published.delivered),
                ("delivery_errors", published.delivery_errors),
                ("lost", published.lost),
                ("conflated", published.conflated),
                ("held_over", published.held_over),
            ):
                family = CounterMetricFamily(f"arbstream_ingest_{name}", f"messages {name.replace('_', ' ')}")
                family.add_metric([], value)
                yield family
            for name, value in (("pending", published.pending), ("in_flight", published.in_flight)):
                gauge = GaugeMetricFamily(
                    f"arbstream_ingest_{name}", f"events {name.replace('_', ' ')} in the publisher"
                )
                gauge.add_metric([], value)
                yield gauge
