"""Serve the built dashboard (``dashboard/dist``) at ``/``.

Not one ``StaticFiles`` mount at "/": a mount there matches every path, so a
wrong method on an API path (``PUT /api/prices``, ``GET /api/reload-config``)
would get the static handler's 404/405 instead of the API's own 405 with the
right ``Allow``. Instead: ``/`` serves ``index.html``, ``/assets`` is a mount
(Vite puts every hashed bundle there), and the other top-level files of the
build (favicon, ...) get one route each, listed when the app starts.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles


def _file_route(app: FastAPI, url: str, path: Path) -> None:
    async def serve() -> FileResponse:
        return FileResponse(path)

    app.add_api_route(url, serve, methods=["GET"], include_in_schema=False, name=f"dashboard:{url}")


def add_dashboard(app: FastAPI, dist: Path) -> None:
    _file_route(app, "/", dist / "index.html")
    for path in sorted(dist.iterdir()):
        if path.is_file():
            _file_route(app, f"/{path.name}", path)
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="dashboard-assets")
