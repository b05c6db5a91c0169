"""Settings of ``arbstream worker``: the Faust app and every number of the arbitrage semantics."""

from __future__ import annotations

import socket
from decimal import Decimal

from pydantic import Field, field_validator

from plumbing.settings import CommaList, CommonSettings, split_commas
from processors.arbitrage import ArbConfig
from processors.funding import FundingConfig

# Default taker fees, the base (non-VIP, no token discount) tier of each venue's public
# schedule as we read it on 2026-11-21. Fees change: override with ARBSTREAM_TAKER_FEES
# (JSON object) rather than trusting this table for real money.
DEFAULT_TAKER_FEES: dict[str, Decimal] = {
    "binance": Decimal("0.0005"),
    "bybit": Decimal("0.00055"),
    "okx": Decimal("0.0005"),
    "kucoin": Decimal("0.0006"),
    "deribit": Decimal("0.0005"),
    "bitmex": Decimal("0.00075"),
    "gate": Decimal("0.0005"),
    "mexc": Decimal("0.0002"),
    "bitget": Decimal("0.0006"),
    "phemex": Decimal("0.0006"),
    "coindcx": Decimal("0.0005"),
    "hyperliquid": Decimal("0.00045"),
    "paradex": Decimal("0.0003"),
    "coinex": Decimal("0.0005"),
}
TAKER_FEES_AS_OF = "2026-11-21"


class WorkerSettings(CommonSettings):
    app_name: str = Field(
        default="arbstream", description="consumer group id and changelog prefix (before the namespace)"
    )
    symbols: CommaList = Field(
        default=["BTC", "ETH"],
        description="ticks.* topics created up front (comma list); the worker reads every ticks.* topic by pattern",
    )
    worker_fetch_max_wait_ms: int = Field(
        default=20, ge=1, le=1500, description="longest broker long-poll of the worker's consumer"
    )
    worker_fetch_min_bytes: int = Field(
        default=1,
        ge=1,
        description="bytes a fetch waits for (up to the max wait) before the broker answers: fewer, fuller fetches",
    )
    worker_fetch_sessions: bool = Field(
        default=True,
        description="fetch in incremental sessions (KIP-227): a fetch names only partitions whose offset moved "
        "and the broker answers only those with news, instead of every one of the market's partitions",
    )
    worker_livelock_check_s: float = Field(
        default=30.0, gt=0, description="how often Faust's per-partition stall check (it only logs) runs"
    )
    worker_session_timeout_s: float = Field(
        default=30.0, gt=0, description="how long the group waits for a silent worker before rebalancing its partitions"
    )
    worker_instance_id: str | None = Field(
        default=None,
        description="static group membership (Kafka group.instance.id): a restarted worker with the same id takes "
        "its partitions back at once instead of after the session timeout; unique per worker; '{hostname}' in it "
        "is replaced by the host's name (one id per container replica); `arbstream up` sets '{hostname}-worker'",
    )
    worker_discover_interval_ms: int = Field(
        default=5_000, ge=100, description="how often the worker lists the cluster's topics for new ticks.* topics"
    )
    worker_data_dir: str = Field(default=".cache/faust", description="the Faust app's local directory")
    worker_poll_records: int = Field(
        default=2_000, ge=1, description="most records one fetch hands the agent (Faust's broker_max_poll_records)"
    )
    worker_batch_queue: int = Field(
        default=2,
        ge=1,
        description="fetched batches waiting for the agent (processors.faust_batches): with the fetch above, how "
        "much already-read work a worker that is behind still does before a backlog jump takes effect",
    )
    worker_resubscribe_delay_s: float = Field(
        default=1.0, ge=0, description="Faust's coalescing sleep before subscribing new tick topics (Faust: 45)"
    )
    worker_switch_interval_ms: float = Field(
        default=0.5, gt=0, description="Python's thread switch interval: Faust's consumer thread hands fetches over"
    )
    worker_commit_interval_ms: int = Field(default=500, ge=10, description="how often processed offsets are committed")
    worker_conflate_after_ms: int = Field(
        default=50,
        ge=0,
        description="a quote this old when fetched, superseded by a newer one of the same instrument, is skipped "
        "and counted (0: never conflate, e.g. for exact replays)",
    )
    worker_skip_behind_ms: int = Field(
        default=500,
        ge=0,
        description="a tick partition whose newest delivered tick is this much older than the wall clock skips "
        "its Kafka backlog but the newest record, and of fetched records this old only each fetch's newest is "
        "processed; all counted as skipped_records (0: never, e.g. for exact replays; overload then builds "
        "lag instead of dropping resolution)",
    )
    worker_recovery_stall_s: float = Field(
        default=3.0,
        gt=0,
        description="a table recovery that receives nothing from a changelog partition with records left for this "
        "long seeks that partition back to its recovery offset, logged and counted as recovery_reseeks",
    )
    worker_state_flush_s: float = Field(
        default=5.0, gt=0, description="changelog write of a symbol whose funding or episode counters changed"
    )
    prices_interval_ms: int = Field(
        default=250, ge=10, description="the worker publishes each instrument's latest quote at most this often"
    )
    worker_stats_interval_s: float = Field(default=1.0, gt=0, description="period of the worker-stats records")
    worker_sweep_interval_ms: int = Field(
        default=500, ge=10, description="how often episodes whose symbol's ticks stopped are checked for staleness"
    )
    worker_sweep_grace_ms: int = Field(
        default=1_000,
        ge=0,
        description="a silent symbol's episode closes once the worker's event-time clock is this far past its "
        "expiry (allowed lateness: ticks of different symbols reach the worker slightly out of time order)",
    )

    taker_fees: dict[str, Decimal] = Field(default_factory=lambda: dict(DEFAULT_TAKER_FEES))
    default_taker_fee: Decimal = Field(default=Decimal("0.001"), ge=0)
    max_quote_age_ms: int = Field(default=3_000, gt=0)
    max_quote_age_ms_by_venue: dict[str, int] = Field(default_factory=dict)
    open_threshold: Decimal = Field(default=Decimal("0.0015"), description="net spread that opens an episode")
    close_threshold: Decimal = Field(default=Decimal("0.0005"), description="net spread below which it closes")
    min_persist_ms: int = Field(default=0, ge=0)
    min_ticks: int = Field(default=2, ge=1)
    cooldown_s: int = Field(default=300, ge=0)
    cooldown_break_ratio: Decimal = Field(default=Decimal(2), gt=1)
    quote_bridges: dict[str, str] = Field(default_factory=dict)
    funding_open_apr: Decimal = Field(
        default=Decimal("0.10"), gt=0, description="net funding APR (entry cost amortised) that opens an episode"
    )
    funding_close_apr: Decimal = Field(default=Decimal("0.05"), description="net funding APR under which it closes")
    funding_hold_h: int = Field(default=168, ge=1, description="hours the entry cost is amortised over")
    funding_max_age_ms: int = Field(default=180_000, gt=0)
    funding_cooldown_s: int = Field(default=3_600, ge=0, description="per symbol, between funding alerts")

    _split_symbols = field_validator("symbols", mode="before")(split_commas)

    @field_validator("worker_instance_id")
    @classmethod
    def _expand_hostname(cls, instance_id: str | None) -> str | None:
        # A replica of a scaled compose service shares its environment with the others but not its host
        # name, and keeps that name across restarts: the id a restarted container must present again.
        if not instance_id:
            return None
        return instance_id.replace("{hostname}", socket.gethostname())

    @field_validator("taker_fees")
    @classmethod
    def _fees_non_negative(cls, fees: dict[str, Decimal]) -> dict[str, Decimal]:
        negative = {venue: fee for venue, fee in fees.items() if fee < 0}
        if negative:
            raise ValueError(f"taker fees must be >= 0 (rebates are not modelled): {negative}")
        return {**DEFAULT_TAKER_FEES, **fees}

    def funding_config(self) -> FundingConfig:
        if self.funding_close_apr > self.funding_open_apr:
            raise ValueError("funding_close_apr must not exceed funding_open_apr (hysteresis)")
        return FundingConfig(
            open_apr=self.funding_open_apr,
            close_apr=self.funding_close_apr,
            hold_h=self.funding_hold_h,
            max_age_ms=self.funding_max_age_ms,
            cooldown_s=self.funding_cooldown_s,
            cooldown_break_ratio=self.cooldown_break_ratio,
            quote_bridges=self.quote_bridges,
            taker_fees=self.taker_fees,
            default_fee=self.default_taker_fee,
        )

    def arb_config(self) -> ArbConfig:
        if self.close_threshold > self.open_threshold:
            raise ValueError("close_threshold must not exceed open_threshold (hysteresis)")
        return ArbConfig(
            taker_fees=self.taker_fees,
            default_fee=self.default_taker_fee,
            max_age_ms=self.max_quote_age_ms,
            max_age_ms_by_venue=self.max_quote_age_ms_by_venue,
            open_threshold=self.open_threshold,
            close_threshold=self.close_threshold,
            min_persist_ms=self.min_persist_ms,
            min_ticks=self.min_ticks,
            cooldown_s=self.cooldown_s,
            cooldown_break_ratio=self.cooldown_break_ratio,
            quote_bridges=self.quote_bridges,
        )
