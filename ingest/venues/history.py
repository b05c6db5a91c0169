"""What a venue module declares to backfill funding history from its public REST endpoint.

A venue module that has a public funding-history endpoint exports ``FUNDING_HISTORY`` (a
:class:`HistorySpec`: how to page, how fast the venue allows us to ask) and two pure functions:

* ``funding_history_request(instrument, start_ms, end_ms, page) -> HistoryRequest``: the GET
  (or POST) for one instrument and the window ``[start_ms, end_ms]``; ``page`` counts from 1 and
  only matters to venues paged by number (:attr:`Paging.PAGES`).
* ``parse_funding_history(payload, instrument) -> list[FundingSettlement]``: the venue's
  response (decoded with ``load_json``: Decimals from the venue's text) to settlements.

:mod:`ingest.funding_backfill` owns the I/O, the paging loop and the pacing. A venue without a
public endpoint exports ``FUNDING_HISTORY = None`` and says why in its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

from ingest.venues.base import FrameError
from schemas.funding import FundingSettlement
from schemas.market import Instrument

HOUR_NS = 3_600_000_000_000
SNAP_TOLERANCE_NS = 1_000_000_000
"""Venues stamp a settlement a few ms after the hour (Hyperliquid ``time``: ...00076): within 1 s of
a whole hour it is that hour, the key the API's live settlement detection writes (decision 0018)."""


class Paging(Enum):
    FORWARD = "forward"
    """A full page holds the oldest rows of the window: ask again from just after its newest."""
    BACKWARD = "backward"
    """A full page holds the newest rows: ask again up to just before its oldest."""
    PAGES = "pages"
    """Numbered pages, newest first: ask for the next page until one is short or passes the start."""


@dataclass(frozen=True)
class HistorySpec:
    page_size: int
    """Rows the request asks for (the venue's maximum); a shorter page is the last one."""
    paging: Paging
    min_interval_s: float
    """Pause between two requests to this venue (its documented public REST limit, with room)."""
    concurrency: int = 1
    """Requests to this venue in flight at once."""
    max_window_ms: int | None = None
    """Longest ``end - start`` one request may span (venues that refuse wider windows)."""


@dataclass(frozen=True)
class HistoryRequest:
    path: str
    """Under the venue's REST base."""
    params: dict[str, str] = field(default_factory=dict)
    """Query parameters (GET)."""
    json_body: dict[str, Any] | None = None
    """A POST body instead (Hyperliquid's ``/info``)."""


def snap_ns(settled_ns: int) -> int:
    """The whole hour ``settled_ns`` is within :data:`SNAP_TOLERANCE_NS` of, else itself."""
    nearest = (settled_ns + HOUR_NS // 2) // HOUR_NS * HOUR_NS
    return nearest if abs(settled_ns - nearest) <= SNAP_TOLERANCE_NS else settled_ns


def settlement(
    instrument: Instrument, rate: Decimal | None, settled_ns: int, interval_h: int | None = None
) -> FundingSettlement:
    """A settlement as the venue recorded it.

    ``observed_ts_ns`` is the settlement time itself: the venue's own record of the settled rate
    is later than any rate the API saw quoted before that time, so in the API's upsert (the
    later-observed report wins) a backfilled point replaces a live-observed one of the same
    settlement instead of counting beside it, and a re-backfill writes identical bytes.
    """
    interval = interval_h if interval_h is not None else instrument.funding_interval_h
    if rate is None:
        raise FrameError("funding-history row without a rate")
    if not interval:
        raise FrameError(f"{instrument.instrument_id}: no funding interval known")
    snapped = snap_ns(settled_ns)
    return FundingSettlement(
        instrument_id=instrument.instrument_id,
        venue=instrument.venue,
        base=instrument.base,
        rate=rate,
        interval_h=interval,
        settled_ts_ns=snapped,
        observed_ts_ns=snapped,
    )


def rows_of(payload: Any, *path: str) -> list[Any]:
    """``payload[path[0]][path[1]]...`` as a list of rows (FrameError when the shape differs)."""
    node = payload
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise FrameError(f"funding history: no {key!r} in the response")
        node = node[key]
    if not isinstance(node, list):
        raise FrameError("funding history: expected a list of rows")
    return node
