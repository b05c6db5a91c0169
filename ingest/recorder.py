"""Raw-frame recording: every frame with its receipt time, to rotating gzip JSON-lines files.

One line per frame: ``{"receipt_ts_ns", "venue", "connection", "text"}`` for text
frames or ``"b64"`` instead of ``"text"`` for binary ones. Files are named
``<venue>-<UTC start>-<n>.jsonl.gz`` and rotate after ``rotate_bytes`` of input.
These files are the input of replay and of ``arbstream normalize``.
"""

from __future__ import annotations

import base64
import gzip
import time
from pathlib import Path

import orjson


class Recorder:
    def __init__(self, directory: Path, venue: str, rotate_bytes: int) -> None:
        self.directory = directory
        self.venue = venue
        self.rotate_bytes = rotate_bytes
        self._file: gzip.GzipFile | None = None
        self._written = 0
        self._count = 0
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, connection: str, receipt_ts_ns: int, frame: str | bytes) -> None:
        record: dict[str, object] = {"receipt_ts_ns": receipt_ts_ns, "venue": self.venue, "connection": connection}
        if isinstance(frame, bytes):
            record["b64"] = base64.b64encode(frame).decode()
        else:
            record["text"] = frame
        line = orjson.dumps(record) + b"\n"
        if self._file is None or self._written >= self.rotate_bytes:
            self._rotate()
        assert self._file is not None
        self._file.write(line)
        self._written += len(line)

    def _rotate(self) -> None:
        self.close()
        self._count += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"{self.venue}-{stamp}-{self._count:04d}.jsonl.gz"
        self._file = gzip.open(path, "ab")  # noqa: SIM115 - kept open across writes, closed in close()
        self._written = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_recording(path: Path) -> list[tuple[int, str, str, str | bytes]]:
    """(receipt_ts_ns, venue, connection, frame) of every line of a recording file."""
    rows = []
    with gzip.open(path, "rb") as handle:
        for line in handle:
            record = orjson.loads(line)
            frame = record["text"] if "text" in record else base64.b64decode(record["b64"])
            rows.append((record["receipt_ts_ns"], record["venue"], record["connection"], frame))
    return rows
