"""Who may open ``/ws`` and call state-changing endpoints (issue 13, item 10; decision 0014).

- **Origin allow-list.** A browser sends ``Origin`` with every WebSocket
  handshake and every cross-site POST; without a check any web page the user
  visits could read the local stream or trigger a reload. Allowed: the
  configured origins (``ARBSTREAM_CORS_ORIGINS``, default the API's own
  loopback addresses and the dev dashboard) and the API's own origin (``Origin``
  naming the same host:port as ``Host``) when that host is an IP literal or
  ``localhost``: a DNS name could be rebound to 127.0.0.1 by an attacker's
  page, so a dashboard served under a name must be listed explicitly.
  Requests without ``Origin`` (curl, scripts, other services) are not from a
  browser page and are allowed.
- **Admin token.** ``POST /api/reload-config`` (and any later state-changing
  endpoint) needs ``Authorization: Bearer $ARBSTREAM_ADMIN_TOKEN``. A custom
  header also forces a CORS preflight, which foreign origins fail. Without a
  token configured, only loopback clients of an API bound to loopback may call
  them (a developer's own machine, ``make run``); anything else is refused with
  a message saying how to enable them.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from api.context import ApiContext

LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_literal_or_localhost(hostname: str) -> bool:
    if hostname.lower() in LOOPBACK_NAMES:
        return True
    try:
        ipaddress.ip_address(hostname.strip("[]"))
        return True
    except ValueError:
        return False


def origin_allowed(origin: str | None, host_header: str | None, allowed: list[str]) -> bool:
    """True for no Origin (not a browser page), a listed origin, or the API's own address."""
    if origin is None:
        return True
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or host_header is None:
        return False
    return parts.netloc.lower() == host_header.lower() and _is_literal_or_localhost(parts.hostname or "")


def admin_refusal(
    ctx: ApiContext, authorization: str | None, client_host: str | None, origin: str | None, host_header: str | None
) -> tuple[int, str] | None:
    """None when the caller may change state; else (HTTP status, what to do about it)."""
    settings = ctx.settings
    if not origin_allowed(origin, host_header, settings.allowed_origins()):
        return 403, f"origin {origin[:100]!r} is not allowed (ARBSTREAM_CORS_ORIGINS)" if origin else "origin refused"
    token = settings.admin_token
    if token:
        scheme, _, supplied = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(), token.encode()):
            return None
        return 401, "missing or wrong admin token: send 'Authorization: Bearer <ARBSTREAM_ADMIN_TOKEN>'"
    if is_loopback(settings.api_host) and is_loopback(client_host):
        return None
    return 403, (
        "state-changing endpoints are disabled: set ARBSTREAM_ADMIN_TOKEN on the API and send "
        "'Authorization: Bearer <token>' (without a token only loopback clients of an API bound to "
        "127.0.0.1 may call them)"
    )


def require_admin(request: Request) -> None:
    """FastAPI dependency of every state-changing endpoint."""
    ctx: ApiContext = request.app.state.ctx
    refusal = admin_refusal(
        ctx,
        request.headers.get("authorization"),
        request.client.host if request.client is not None else None,
        request.headers.get("origin"),
        request.headers.get("host"),
    )
    if refusal is not None:
        status, message = refusal
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        raise HTTPException(status, detail=message, headers=headers)
