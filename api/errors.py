"""Error bodies: the seed's ``{"error": ...}`` beside FastAPI's ``detail``, with real status codes.

future_rtd answered every error with an ``error`` string (decision 0020); clients written for it
read that field. arbstream keeps it on every HTTP error, including FastAPI's own 422 for a bad
parameter, whose ``detail`` stays FastAPI's list so OpenAPI-generated clients keep parsing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

MAX_SUMMARY_ERRORS = 5
"""A request with many bad fields still gets a one-line ``error``; ``detail`` lists them all."""


async def error_body(request: Request, exc: Exception) -> Response:
    """HTTP errors keep the seed's ``{"error": ...}`` beside FastAPI's ``detail``, with a real status."""
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    body: dict[str, Any] = {"error": detail, "detail": detail} if isinstance(detail, str) else {"detail": detail}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def validation_summary(errors: Sequence[Any]) -> str:
    """``query.limit: Input should be ...; path.ex2: ...`` — where each problem is and what it is."""
    parts = []
    for error in errors[:MAX_SUMMARY_ERRORS]:
        loc = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{loc}: {error.get('msg', 'invalid')}" if loc else str(error.get("msg", "invalid")))
    more = len(errors) - MAX_SUMMARY_ERRORS
    if more > 0:
        parts.append(f"and {more} more")
    return "invalid request: " + "; ".join(parts) if parts else "invalid request"


async def validation_error_body(request: Request, exc: Exception) -> Response:
    """422 with the seed's ``error`` (a readable summary) and FastAPI's ``detail`` list unchanged."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    return JSONResponse({"error": validation_summary(errors), "detail": jsonable_encoder(errors)}, status_code=422)
