"""Response models of the operational endpoints: ``/health``, ``/api/info``, ``/api/venues``.

Conventions as in :mod:`api.models` (times, numbers as JSON number literals via ``api.wire``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.models import NOW
from api.wire import Num


class ConnectionOut(BaseModel):
    connection: str
    state: str
    reason: str
    reconnects: int
    frames_total: int
    events_total: int
    malformed_total: int
    resyncs_total: int = Field(
        description="instruments whose book skipped a sequence number: their quotes were withheld until the "
        "next snapshot, the connection kept streaming (Bybit orderbook.1, CoinDCX)"
    )
    last_message_age_ms: int | None = Field(description="now - receipt time of the last market-data frame")
    messages_per_s: float | None = Field(description="frames/s between the last two health snapshots")
    events_per_s: float | None
    reported_age_ms: int = Field(description="now - time of the last health snapshot")


class FundingBackfillOut(BaseModel):
    """Progress of the funding-history backfill from the venue's REST endpoint (decision 0023)."""

    state: Literal["pending", "running", "done", "unreachable", "unsupported", "failed"]
    instruments: int
    done: int
    written: int = Field(description="settlements published to funding-settlements")
    skipped: int = Field(description="instruments whose history the topic already held")
    errors: int = Field(description="failed instrument fetches (HTTP error, unreachable, payload not understood)")
    last_error: str


class ListingOut(BaseModel):
    """Which instrument listing a venue's connections use (ingest's ``listings`` topic)."""

    source: Literal["live", "cache", "bundled"] = Field(
        description="live: fetched from the venue's REST API; cache: the last successful fetch (the venue "
        "could not be reached); bundled: the snapshot shipped with arbstream"
    )
    listed_at: str = Field(description="when the listing in use was fetched from the venue, ISO 8601")
    listed_timestamp_ms: int
    age_s: float = Field(description="now - listed_at, seconds")
    instruments: int = Field(description="perpetuals in the listing")
    tracked: int = Field(description="of them in the tracked universe")
    error: str = Field(description="why the latest live fetch failed ('' when it succeeded)")
    reported_age_s: float = Field(description="how old this status report from ingest is, seconds")
    funding_backfill: FundingBackfillOut | None = Field(
        default=None, description="ingest's funding-history backfill from this venue; null when off or not started"
    )


class VenueOut(BaseModel):
    venue: str
    state: str = Field(description="worst state over the venue's connections, 'unknown' without health reports")
    connections: list[ConnectionOut]
    symbols: list[str]
    instruments: list[str] = Field(description="configured or quoted instrument ids")
    quote_count: int
    last_quote_timestamp: int | None = Field(description="receipt time of the venue's latest quote, Unix ms")
    last_quote_age_ms: int | None
    taker_fee: Num
    listing: ListingOut | None = Field(default=None, description="the venue's listing source; null until reported")


class VenuesOut(BaseModel):
    venues: list[VenueOut]
    timestamp: str = NOW


class BrokerOut(BaseModel):
    reachable: bool
    bootstrap: str | None


class ConsumerOut(BaseModel):
    caught_up: bool = Field(description="the read model has loaded every topic up to the end seen at startup")
    lag_total: int | None = Field(description="records not yet applied (end offsets - positions); null if unknown")
    lag_by_topic: dict[str, int]
    records_applied: int
    load_seconds: float | None = Field(description="time from start to caught up")


class TaskOut(BaseModel):
    name: str
    state: Literal["starting", "running", "restarting", "stopped"]
    critical: bool = Field(description="while not running, data endpoints answer 503 and /health is down")
    restarts: int
    last_error: str | None
    last_error_at_ns: int | None
    retry_in_s: float | None = Field(description="seconds until the next restart attempt (state restarting)")


class WorkerOut(BaseModel):
    """One worker's cumulative tick counters (``worker-stats``, decision 0015): every tick it read is in one."""

    worker_id: str
    processed: int
    conflated: int = Field(description="quotes skipped because a newer one of the same instrument was queued")
    rebuilt: int = Field(description="ticks re-read after a rebalance that the restored state already held")
    forwarded: int = Field(description="ticks moved from a wrong partition to their symbol's")
    rejected: int = Field(description="undecodable ticks or unusable numbers")
    out_of_order: int = Field(default=0, description="quotes older than the one held (ignored, counted)")
    skipped_records: int = Field(
        default=0,
        description="records of a stale backlog jumped over or left out of a stale fetch, never processed "
        "(ARBSTREAM_WORKER_SKIP_BEHIND_MS): overload dropped resolution to keep the data fresh",
    )
    recovery_reseeks: int = Field(
        default=0,
        description="times a table recovery received nothing from a changelog partition with records left and "
        "was sought back (decision 0038; each one is logged by the worker)",
    )
    partitions: int
    lag_ms: int = Field(description="wall clock minus the Kafka time of the newest tick it handled")
    reported_age_ms: int
    alive: bool = Field(
        description="reported within health_worker_max_age_s; a gone worker stays listed for workers_gone_keep_s"
    )


class HealthOut(BaseModel):
    status: Literal["starting", "ok", "degraded", "down"] = Field(
        description="starting and down answer HTTP 503; rule in decision 0014"
    )
    complete: bool = Field(description="false while the read model is still loading (data endpoints answer 503)")
    broker: BrokerOut
    consumer: ConsumerOut
    venues: list[VenueOut]
    venues_unhealthy: list[str]
    venues_streaming: list[str] = Field(
        default=[], description="venues whose every connection streams, reported recently"
    )
    tasks: list[TaskOut] = Field(default=[], description="supervised background tasks")
    workers: list[WorkerOut] = Field(default=[], description="each worker's tick counters (conflated, rejected, ...)")
    reasons: list[str] = Field(description="why the status is not ok")
    price_fetcher_active: bool = Field(default=False, description="the seed's field: some venue is streaming")
    websocket_connections: int = Field(default=0, description="the seed's field: WebSocket clients of this API")
    timestamp: str = NOW


class InfoOut(BaseModel):
    message: str = Field(description="the seed's greeting at GET /")
    status: Literal["running"] = Field(description="the seed's field at GET /")
    service: str
    version: str
    namespace: str
    complete: bool
    demo: bool = Field(description="the data comes from the exchange simulator, not real venues")
    max_quote_age_ms: int = Field(description="a quote older than this is not usable as an arbitrage leg")
    max_quote_age_ms_by_venue: dict[str, int] = Field(description="per-venue overrides of max_quote_age_ms")
    docs: str
    websocket: str
