"""Settings, one object per service, read once at the entry point and passed down.

Every field can be set from the environment with the ``ARBSTREAM_`` prefix
(``ARBSTREAM_NAMESPACE=dev``). The broker address also honours the bare
``KAFKA_BOOTSTRAP`` used by deployment tooling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def split_commas(value: object) -> object:
    """``"BTC, ETH"`` -> ``["BTC", "ETH"]`` for list settings given as one env variable."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]
"""A list setting read from the environment as a comma list (validate with split_commas)."""
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache"


class CommonSettings(BaseSettings):
    """What every service needs: where the broker is and which topic namespace to use."""

    model_config = SettingsConfigDict(env_prefix="ARBSTREAM_", extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ARBSTREAM_KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP"),
        description="host:port[,host:port] of an existing cluster; unset = start local Kafka",
    )
    namespace: str = Field(
        default="",
        description="prefix for every topic name; keeps tests, replays and backtests apart",
        pattern=r"^[A-Za-z0-9_-]*$",
    )
    topic_partitions: int = Field(
        default=1,
        ge=1,
        description="partitions for topics we create: one worker per partition at most, so set it to the number of "
        "workers before the topics exist (each ticks.<BASE> topic uses one; the others cost every worker CPU)",
    )
    log_level: str = "INFO"


class BrokerSettings(CommonSettings):
    """The local Apache Kafka started from Maven Central jars."""

    kafka_version: str = "3.9.1"
    cache_dir: Path = DEFAULT_CACHE_DIR
    kafka_data_dir: Path = DEFAULT_CACHE_DIR / "kafka-data"
    kafka_host: str = "127.0.0.1"
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    kafka_heap: str = "512m"
    kafka_start_timeout_s: float = 90.0
    kafka_stop_timeout_s: float = 60.0
    """A controlled shutdown moves ~1,500 partition leaderships at whole-market size: 20 s was not
    enough on a busy 2-core machine, and the SIGKILL that followed made the restart recover every log."""

    @property
    def kafka_libs_dir(self) -> Path:
        return self.cache_dir / f"kafka-{self.kafka_version}" / "libs"


class ApiSettings(CommonSettings):
    """HTTP/WebSocket API (uvicorn)."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)


class UpSettings(BrokerSettings, ApiSettings):
    """`arbstream up`: broker (unless external) plus every service."""

    demo: bool = Field(default=False, description="feed ingest from the local exchange simulator")
    simulator_port: int = Field(default=8765, ge=1, le=65535, description="port of the demo simulator")
