"""FastAPI application factory and ``arbstream api`` entry point."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import uvicorn
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from arbstream import __version__
from arbstream.settings import REPO_ROOT, ApiSettings

DASHBOARD_DIST = REPO_ROOT / "dashboard" / "dist"


async def broker_reachable(bootstrap: str | None, timeout_s: float = 3.0) -> bool:
    if bootstrap is None:
        return False
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable", reported as such
        return False
    finally:
        await admin.close()


def create_app(settings: ApiSettings, dashboard_dist: Path = DASHBOARD_DIST) -> FastAPI:
    app = FastAPI(title="arbstream", version=__version__)

    @app.get("/api/info")
    async def info() -> dict[str, Any]:
        return {"service": "arbstream", "version": __version__, "namespace": settings.namespace}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        reachable = await broker_reachable(settings.kafka_bootstrap)
        return {"status": "ok" if reachable else "degraded", "broker": {"reachable": reachable}}

    if (dashboard_dist / "index.html").exists():
        app.mount("/", StaticFiles(directory=dashboard_dist, html=True), name="dashboard")
    else:

        @app.get("/")
        async def root() -> dict[str, Any]:
            return await info()

    return app


def run_api(settings: ApiSettings) -> int:
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info")
    return 0
