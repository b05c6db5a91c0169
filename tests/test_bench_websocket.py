"""The WebSocket stage's reading of the API's delivery histogram, and its report row."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from arbstream.bench import report
from arbstream.bench.websocket_stage import DELIVERY_BUCKET, bucket_quantile

BOUNDS = (0.01, 0.05, 0.1, 0.25)


def _scrape(registry: CollectorRegistry) -> dict[float, float]:
    """What api_delivery_buckets reads, from the same text format the API serves."""
    return {
        float(s.labels["le"]): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name == DELIVERY_BUCKET
    }


def test_quantiles_come_from_what_was_observed_between_two_scrapes() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("arbstream_api_ws_delivery_seconds", "x", buckets=BOUNDS, registry=registry)
    for _ in range(50):
        histogram.observe(0.2)  # before the level: must not count
    before = _scrape(registry)
    for seconds in [0.003] * 60 + [0.04] * 39 + [0.3]:
        histogram.observe(seconds)
    after = _scrape(registry)
    assert bucket_quantile(before, after, 0.5) == 10.0  # 60 of 100 within 10 ms
    assert bucket_quantile(before, after, 0.99) == 50.0  # the 99th is the last 40 ms one
    assert bucket_quantile(before, after, 1.0) == math.inf  # the 300 ms one is above every bound
    assert math.isnan(bucket_quantile(after, after, 0.5))  # nothing observed in between


def test_the_websocket_row_shows_the_api_s_part() -> None:
    level = {
        "clients": 1000,
        "alerts": 11,
        "delivered_ratio": 1.0,
        "api_cpu": 0.2,
        "bench_cpu": 0.1,
        "setup_s": 0.2,
        "api_delivery_p50_ms": 50.0,
        "api_delivery_p99_ms": 100.0,
        "samples": 11000,
        "p50_ms": 200.0,
        "p99_ms": 400.0,
        "p99_9_ms": 410.0,
        "max_ms": 420.0,
    }
    rows = report._websocket_rows({"levels": [level]}, {})
    assert rows[0][0] == "5 WebSocket"
    assert "the API's part, publish → last socket, p50/p99 ≤ 50 / 100 ms" in rows[0][1]
    assert rows[0][2] == "200.0 / 400.0 / 410.0"
