"""Backtest reports (``arbstream backtest``) listed and served read-only.

Each report is a directory under ``ARBSTREAM_BACKTEST_DIR`` holding ``report.json``,
``report.md`` and PNG charts. Names and files are matched against what is on disk — never
joined from the request into a path — so nothing outside the reports is reachable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from api.models import ErrorOut

router = APIRouter(tags=["backtests"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such report or file"}}

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_FILE = re.compile(r"^[A-Za-z0-9_-]+\.(png|md|json)$")
_TYPES = {"png": "image/png", "md": "text/markdown; charset=utf-8", "json": "application/json"}


class BacktestRunOut(BaseModel):
    name: str
    alerts: int
    episodes_closed: int
    suppressed_by_cooldown: int
    naive_pnl: str
    settings: dict[str, str]


class BacktestOut(BaseModel):
    name: str
    """The report's directory name (``backtest-results/<name>``)."""
    ticks: int
    first_utc: str
    last_utc: str
    runs: list[BacktestRunOut]
    charts: list[str]


class BacktestsOut(BaseModel):
    directory: str
    reports: list[BacktestOut]


def _root(request: Request) -> Path:
    directory: Path = request.app.state.ctx.settings.backtest_dir
    return directory


def _summary(directory: Path) -> BacktestOut | None:
    try:
        body: dict[str, Any] = orjson.loads((directory / "report.json").read_bytes())
        recording, runs = body["recording"], body["runs"]
        return BacktestOut(
            name=directory.name,
            ticks=recording["ticks"],
            first_utc=recording["first_utc"],
            last_utc=recording["last_utc"],
            runs=[
                BacktestRunOut(
                    name=name,
                    alerts=run["counts"]["alerts"],
                    episodes_closed=run["counts"]["episodes_closed"],
                    suppressed_by_cooldown=run["counts"]["suppressed_by_cooldown"],
                    naive_pnl=run["naive_pnl"]["profit"],
                    settings=run["settings"],
                )
                for name, run in runs.items()
            ],
            charts=sorted(p.name for p in directory.glob("*.png")),
        )
    except (OSError, KeyError, TypeError, orjson.JSONDecodeError):
        return None  # not a report (or a half-written one): not listed


def _report_dir(request: Request, name: str) -> Path:
    found = next((d for d in _root(request).glob("*") if d.is_dir() and d.name == name), None)
    if found is None or not (found / "report.json").is_file():
        raise HTTPException(404, f"no backtest report {name!r}")
    return found


@router.get("/api/backtests")
async def list_backtests(request: Request) -> BacktestsOut:
    """Every report under the backtest directory, newest first."""
    root = _root(request)
    directories = sorted((d for d in root.glob("*") if d.is_dir()), key=lambda d: d.stat().st_mtime, reverse=True)
    reports = [s for s in (_summary(d) for d in directories) if s is not None]
    return BacktestsOut(directory=str(root.name), reports=reports)


@router.get("/api/backtests/{name}", responses=NOT_FOUND)
async def get_backtest(request: Request, name: Annotated[str, PathParam(pattern=_NAME)]) -> Response:
    """The whole ``report.json`` of one report."""
    return Response((_report_dir(request, name) / "report.json").read_bytes(), media_type="application/json")


@router.get("/api/backtests/{name}/{file}", responses=NOT_FOUND)
async def get_backtest_file(
    request: Request, name: Annotated[str, PathParam(pattern=_NAME)], file: Annotated[str, PathParam()]
) -> FileResponse:
    """One file of a report: a chart (PNG), ``report.md`` or ``report.json``."""
    match = _FILE.match(file)
    directory = _report_dir(request, name)
    found = next((p for p in directory.iterdir() if p.name == file), None) if match else None
    if match is None or found is None or not found.is_file():
        raise HTTPException(404, f"report {name!r} has no file {file!r}")
    return FileResponse(found, media_type=_TYPES[match.group(1)])
