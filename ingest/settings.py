"""Settings of ``arbstream ingest``, ``arbstream record`` and ``arbstream simulate``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from ingest.universe import UniverseSpec
from plumbing.settings import DEFAULT_CACHE_DIR, CommaList, CommonSettings, split_commas


class IngestSettings(CommonSettings):
    venues: CommaList = Field(default=[], description="venues to connect (comma list); empty = all implemented")
    symbols: CommaList = Field(
        default=["all"],
        description="`all` (every base on >= min_venues venues), `top:N` (by 24 h volume) or a comma list of bases",
    )
    min_venues: int = Field(default=2, ge=1, description="`all`/`top:N`: venues that must list a base")
    quote_groups: CommaList = Field(default=[], description="keep only these quote groups (USDT,USDC,USD-inverse)")
    exclude: CommaList = Field(default=[], description="bases never tracked (comma list)")
    symbols_file: Path | None = Field(
        default=None, description="the seed's futures_symbols.txt, symbols.csv or symbols.json; overrides symbols"
    )
    instruments_cache_dir: Path = DEFAULT_CACHE_DIR / "instruments"
    listing_refresh_s: float = Field(default=3600.0, gt=0, description="re-fetch every venue's listing this often")
    listing_timeout_s: float = Field(default=10.0, gt=0, description="one attempt at a venue's REST listing")
    listing_attempts: int = Field(default=3, ge=1, description="attempts per venue listing fetch (backoff between)")
    listing_deadline_s: float = Field(
        default=30.0, gt=0, description="a venue's whole listing fetch (all attempts); then cache, then bundled"
    )
    listing_start_wait_s: float = Field(
        default=5.0, ge=0, description="start with the cached/bundled listing of a venue still fetching after this"
    )
    simulator_url: str | None = Field(
        default=None, description="http://host:port of `arbstream simulate`; replaces every venue's URLs"
    )
    queue_size: int = Field(
        default=20_000,
        ge=100,
        description="events pending for the producer before they are conflated (newest per instrument kept, counted)",
    )
    conflate_after_ms: int = Field(
        default=0,
        ge=0,
        description="events that waited this long for the producer when it takes them are conflated too, newest "
        "per instrument kept, counted: fresher under overload, but a broker failover then drops resolution as well "
        "(0: only past queue_size, decision 0039)",
    )
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    stale_after_s: float | None = Field(default=None, gt=0, description="override every venue's stale threshold")
    health_every_s: float = Field(default=5.0, gt=0, description="period of per-connection health snapshots")
    linger_ms: int = Field(default=5, ge=0)
    delivery_retries: int = Field(default=5, ge=0)
    record_dir: Path | None = Field(default=None, description="also write raw frames here (rotating .jsonl.gz)")
    record_rotate_mb: int = Field(default=64, ge=1)
    metrics_port: int | None = Field(default=None, description="serve Prometheus metrics on this port")
    funding_backfill_days: int = Field(
        default=30, ge=0, le=35, description="fetch this many days of funding history from the venues on start; 0: off"
    )

    _split_lists = field_validator("venues", "symbols", "quote_groups", "exclude", mode="before")(split_commas)

    @model_validator(mode="after")
    def _universe_is_valid(self) -> IngestSettings:
        self.universe_spec()  # a bad ARBSTREAM_SYMBOLS fails at start, with the rule
        return self

    def universe_spec(self) -> UniverseSpec:
        return UniverseSpec.parse(self.symbols, self.min_venues, self.quote_groups, self.exclude)


class SimulatorSettings(CommonSettings):
    simulator_host: str = "127.0.0.1"
    simulator_port: int = Field(default=8765, ge=1, le=65535)
    venues: CommaList = Field(default=[], description="venues to simulate; empty = all implemented")
    symbols: CommaList = Field(
        default=["all"], description="`all` (the whole generated market) or a comma list of bases that restricts it"
    )
    simulator_rate: float = Field(
        default=5000.0, gt=0, description="book updates/s of the whole market if all subscribed (heavy-tailed)"
    )
    simulator_funding_every_ms: int = Field(default=5000, ge=100, description="funding/mark frame per instrument")
    simulator_tick_ms: int = Field(default=20, ge=5, description="pump period: due updates are sent in batches")
    simulator_auto_dislocations: bool = True
    simulator_dislocation_every_ms: int = Field(default=10_000, ge=100, description="one planted dislocation per")
    simulator_planted_carry: bool = Field(
        default=True, description="plant a funding carry on one base's 1 h / 4 h / 8 h venues (ingest.simulator.carry)"
    )
    simulator_seed: int = Field(default=11, description="seed of the generated market (same seed, same market)")

    _split_lists = field_validator("venues", "symbols", mode="before")(split_commas)
