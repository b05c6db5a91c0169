"""Settings of ``arbstream worker``."""

from __future__ import annotations

from pydantic import Field

from arbstream.settings import CommonSettings


class WorkerSettings(CommonSettings):
    app_name: str = Field(default="arbstream", description="Faust app id before the namespace prefix")
    symbols: list[str] = Field(default=["BTC", "ETH"], description="canonical bases whose ticks.* topics to read")
    worker_web_enabled: bool = False
    worker_web_port: int = Field(default=6066, ge=1, le=65535)
    worker_data_dir: str = ".cache/faust"
