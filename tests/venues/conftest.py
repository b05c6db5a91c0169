"""Venue-test helpers: fixture frames in each venue's documented format."""

from __future__ import annotations

import json
from pathlib import Path

FRAMES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "frames"


def fixture_frames(venue: str) -> list[str]:
    """Raw frames of ``tests/fixtures/frames/<venue>.jsonl``: a JSON line as-is, a JSON string as its text."""
    frames = []
    for line in (FRAMES_DIR / f"{venue}.jsonl").read_text().splitlines():
        if line.strip():
            frames.append(json.loads(line) if line.startswith('"') else line)
    return frames
