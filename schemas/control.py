"""Requests from the API to ingest over the ``control`` topic (``POST /api/reload-config``).

One partition, short retention: a request only matters to the ingest processes
running when it is sent (they read from the end), so nothing old is replayed.
"""

from __future__ import annotations

from typing import Literal

import msgspec

CONTROL = "control"
CONTROL_CONFIG = {"retention.ms": str(3_600_000), "cleanup.policy": "delete", "segment.ms": str(600_000)}


class ControlRequest(msgspec.Struct, frozen=True, kw_only=True):
    op: Literal["reload-config"]
    """Re-read the symbol settings (ARBSTREAM_SYMBOLS_FILE) and follow them without a restart."""
    request_id: str
    sent_ts_ns: int


def encode_request(request: ControlRequest) -> bytes:
    return msgspec.json.encode(request)


def decode_request(raw: bytes) -> ControlRequest:
    return msgspec.json.decode(raw, type=ControlRequest)
