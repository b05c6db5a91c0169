"""Serve the built dashboard (``dashboard/dist``) at ``/``.

Not one ``StaticFiles`` mount at "/": a mount there matches every path, so a
wrong method on an API path (``PUT /api/prices``, ``GET /api/reload-config``)
would get the static handler's 404/405 instead of the API's own 405 with the
right ``Allow``. Instead: ``/`` serves ``index.html``, ``/assets`` is a mount
(Vite puts every hashed bundle there), and the other top-level files of the
build (favicon, ...) get one route each, listed when the app starts.

``/`` answers the seed's JSON (``{message, status: "running", ...}``) to clients
that do not ask for HTML (curl, scripts, ``fetch`` with ``*/*``) and the page to
browsers, which always put ``text/html`` in ``Accept`` when they navigate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel


def _file_route(app: FastAPI, url: str, path: Path) -> None:
    async def serve() -> FileResponse:
        return FileResponse(path)

    app.add_api_route(url, serve, methods=["GET"], include_in_schema=False, name=f"dashboard:{url}")


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def add_dashboard(app: FastAPI, dist: Path, root_json: Callable[[], BaseModel] | None = None) -> None:
    index = dist / "index.html"

    async def root(request: Request) -> Response:
        if root_json is None or wants_html(request):
            return FileResponse(index)
        return JSONResponse(root_json().model_dump(mode="json"))

    app.add_api_route("/", root, methods=["GET"], include_in_schema=False, name="dashboard:/")
    for path in sorted(dist.iterdir()):
        if path.is_file():
            _file_route(app, f"/{path.name}", path)
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="dashboard-assets")
