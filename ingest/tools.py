"""Offline tools over raw frames and listings: ``normalize`` and ``instruments refresh``."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import aiohttp

from ingest.instruments import load_venue_instruments
from ingest.listings import ListingError, fetch_validated
from ingest.settings import IngestSettings
from ingest.venues import implemented_venues, venue_class
from ingest.venues.base import FrameError
from schemas.market import encode


def frame_from_line(line: str) -> tuple[str | bytes, int | None]:
    """(frame, recorded receipt time) of one line of a frames file.

    Accepted lines: a JSON frame as-is; a JSON string holding a text frame (``"pong"``);
    ``{"b64": "..."}`` for a binary frame (SBE, gzip); or a line of an ``arbstream record``
    file (``{"receipt_ts_ns", "text"|"b64", ...}``), whose receipt time is kept.
    """
    if line.startswith('"'):
        return str(json.loads(line)), None
    if line.startswith('{"b64"') or line.startswith('{"receipt_ts_ns"'):
        record = json.loads(line)
        receipt = record.get("receipt_ts_ns")
        if "b64" in record:
            return base64.b64decode(record["b64"], validate=True), receipt
        if "text" in record:
            return str(record["text"]), receipt
    return line, None


def normalize(venue_name: str, lines: Iterable[str], out: IO[str], err: IO[str], cache_dir: Path | None) -> int:
    """Print one JSON line per Quote/Funding parsed from raw frames; returns the number of bad lines."""
    venue = venue_class(venue_name)(load_venue_instruments(venue_name, cache_dir))
    bad = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        try:
            frame, receipt = frame_from_line(line)
            parsed = venue.parse(frame, receipt or time.time_ns())
        except (FrameError, ValueError) as exc:  # JSONDecodeError and binascii.Error are ValueErrors
            bad += 1
            print(f"line {number}: {exc}", file=err)
            continue
        if parsed.error:
            print(f"line {number}: venue error: {parsed.error}", file=err)
        for event in parsed.events:
            out.write(encode(event).decode() + "\n")
    return bad


def run_normalize(venue_name: str, path: str | None, settings: IngestSettings) -> int:
    handle = open(path) if path and path != "-" else sys.stdin  # noqa: SIM115 - closed below when a file
    try:
        bad = normalize(venue_name, handle, sys.stdout, sys.stderr, settings.instruments_cache_dir)
    finally:
        if handle is not sys.stdin:
            handle.close()
    return 1 if bad else 0


async def refresh_instruments(settings: IngestSettings, venues: list[str]) -> dict[str, str]:
    """Fetch each venue's listing into the cache (in parallel, validated, written atomically, as
    ingest does at start); a venue that fails keeps its previous file."""
    from ingest.main import fetch_policy, venue_bases

    async def one(name: str, http: aiohttp.ClientSession) -> str:
        rest_base = venue_bases(settings, name)[1]
        try:
            listing = await fetch_validated(
                name, http, rest_base, settings.instruments_cache_dir, fetch_policy(settings)
            )
        except ListingError as exc:
            return f"FAILED ({exc}); keeping previous listing"
        return f"{len(listing.instruments)} perpetuals -> {settings.instruments_cache_dir / f'{name}.json'}"

    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(*(one(name, http) for name in venues))
    return dict(zip(venues, results, strict=True))


def run_refresh(settings: IngestSettings) -> int:
    venues = settings.venues or implemented_venues()
    outcome = asyncio.run(refresh_instruments(settings, venues))
    for name, result in outcome.items():
        print(f"{name}: {result}")
    return 1 if any(r.startswith("FAILED") for r in outcome.values()) else 0
