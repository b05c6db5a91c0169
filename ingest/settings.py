"""Settings of ``arbstream ingest``, ``arbstream record`` and ``arbstream simulate``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from arbstream.settings import DEFAULT_CACHE_DIR, CommaList, CommonSettings, split_commas


class IngestSettings(CommonSettings):
    venues: CommaList = Field(default=[], description="venues to connect (comma list); empty = all implemented")
    symbols: CommaList = Field(default=["BTC", "ETH"], description="canonical bases to track (comma list)")
    symbols_file: Path | None = Field(default=None, description="BASE:NATIVE_SYMBOL:venue lines; overrides symbols")
    instruments_cache_dir: Path = DEFAULT_CACHE_DIR / "instruments"
    simulator_url: str | None = Field(
        default=None, description="http://host:port of `arbstream simulate`; replaces every venue's URLs"
    )
    queue_size: int = Field(default=20_000, ge=100, description="events buffered between sockets and the producer")
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    stale_after_s: float | None = Field(default=None, gt=0, description="override every venue's stale threshold")
    health_every_s: float = Field(default=5.0, gt=0, description="period of per-connection health snapshots")
    linger_ms: int = Field(default=5, ge=0)
    delivery_retries: int = Field(default=5, ge=0)
    record_dir: Path | None = Field(default=None, description="also write raw frames here (rotating .jsonl.gz)")
    record_rotate_mb: int = Field(default=64, ge=1)
    metrics_port: int | None = Field(default=None, description="serve Prometheus metrics on this port")

    _split_lists = field_validator("venues", "symbols", mode="before")(split_commas)


class SimulatorSettings(CommonSettings):
    simulator_host: str = "127.0.0.1"
    simulator_port: int = Field(default=8765, ge=1, le=65535)
    venues: CommaList = Field(default=[], description="venues to simulate; empty = all implemented")
    symbols: CommaList = Field(default=["BTC", "ETH"])
    simulator_tick_ms: int = Field(default=100, ge=5)
    simulator_auto_dislocations: bool = True

    _split_lists = field_validator("venues", "symbols", mode="before")(split_commas)
