"""Offline ingest tools: normalize (all venues), symbol files, instrument listings, recordings, schemas."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from ingest.instruments import load_all
from ingest.recorder import Recorder, read_recording
from ingest.tools import frame_from_line, normalize
from ingest.venues import VENUE_NAMES, implemented_venues
from schemas import topics
from schemas.control import CONTROL
from schemas.export import SCHEMA_DIR, TOPIC_TYPES, render
from schemas.market import Instrument, decode_tick
from tests.helpers import REPO_ROOT

FRAMES = REPO_ROOT / "tests" / "fixtures" / "frames"


def frame_lines(venue: str) -> list[str]:
    """The venue's fixture frames as normalize input lines (binary fixtures as {"b64": ...})."""
    lines = [line for line in (FRAMES / f"{venue}.jsonl").read_text().splitlines() if line.strip()]
    for binary in FRAMES.glob(f"{venue}.*.b64"):
        for raw in binary.read_text().splitlines():
            if raw.strip() and not raw.startswith("#"):
                lines.append(json.dumps({"b64": raw.strip()}))
    return lines


def test_every_registered_venue_is_implemented() -> None:
    assert implemented_venues() == list(VENUE_NAMES)
    assert len(VENUE_NAMES) == 14


@pytest.mark.parametrize("venue", VENUE_NAMES)
def test_normalize_works_offline_for_every_venue(venue: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    bad = normalize(venue, frame_lines(venue), out, err, cache_dir=None)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert bad == 0, err.getvalue()
    # CoinEx's fixture funding frames date from before its reported cessation; read "now"
    # they are frozen state, which the venue module refuses to pass on as live funding.
    expected = {"quote"} if venue == "coinex" else {"quote", "funding"}
    assert {r["type"] for r in records} == expected, f"{venue}: {records}"
    if venue == "coinex":
        assert "frozen funding state" in err.getvalue()
    for record in records:
        assert record["venue"] == venue and record["native_symbol"]
        event = decode_tick(json.dumps(record).encode())  # round-trips through the typed schema
        assert event.instrument_id.endswith(f"@{venue}")
        if record["type"] == "quote" and record["bid"] is not None:
            assert isinstance(record["bid"], str)  # decimals travel as strings


def test_normalize_cli_reports_bad_lines_and_keeps_going(tmp_path: Path) -> None:
    frames = tmp_path / "frames.jsonl"
    good = (FRAMES / "binance.jsonl").read_text().splitlines()[1]
    frames.write_text(f'{good}\nnot json at all\n"pong"\n{good}\n')
    done = subprocess.run(
        [sys.executable, "-m", "arbstream.cli", "normalize", "--venue", "binance", str(frames)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["bid"] == "86412.30"
    assert "line 2:" in done.stderr and "line 3:" in done.stderr


def test_frame_line_formats() -> None:
    assert frame_from_line('"pong"') == ("pong", None)
    assert frame_from_line('{"a":1}') == ('{"a":1}', None)
    assert frame_from_line(json.dumps({"b64": base64.b64encode(b"\x00\x01").decode()})) == (b"\x00\x01", None)
    recorded = json.dumps({"receipt_ts_ns": 5, "venue": "x", "connection": "c", "text": "{}"})
    assert frame_from_line(recorded) == ("{}", 5)


def test_recorder_rotates_and_round_trips(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, "paradex", rotate_bytes=200)
    frames: list[str | bytes] = [f'{{"n":{i},"pad":"{"x" * 50}"}}' for i in range(6)] + [b"\x00\xffbinary"]
    for i, frame in enumerate(frames):
        recorder.write("paradex-0", 1_000 + i, frame)
    recorder.close()
    files = sorted(tmp_path.glob("paradex-*.jsonl.gz"))
    assert len(files) >= 3  # rotated by size
    rows = [row for path in files for row in read_recording(path)]
    assert rows == [(1_000 + i, "paradex", "paradex-0", frame) for i, frame in enumerate(frames)]


def test_committed_json_schemas_match_the_types() -> None:
    for topic in TOPIC_TYPES:
        assert (SCHEMA_DIR / f"{topic}.schema.json").read_text() == render(topic), f"run `arbstream schemas` ({topic})"
    # Every topic arbstream names has its schema (the worker's table changelog is symbols-changelog).
    named = {value for name, value in vars(topics).items() if name.isupper() and isinstance(value, str)}
    assert named - {topics.TICKS_PREFIX} | {"ticks", CONTROL} == set(TOPIC_TYPES) - {"symbols-changelog"}


def test_instrument_ids_are_unique_across_all_listings() -> None:
    instruments = load_all()
    ids = [i.instrument_id for i in instruments]
    assert len(ids) == len(set(ids))
    # Instruments survive a JSON round trip exactly (Decimals as strings, enums by value).
    decoded = msgspec.json.decode(msgspec.json.encode(instruments), type=list[Instrument])
    assert decoded == instruments
