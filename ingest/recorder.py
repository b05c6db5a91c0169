"""Raw-frame recording: every frame with its receipt time, to rotating gzip JSON-lines files.

One line per frame: ``{"receipt_ts_ns", "venue", "connection", "text"}`` for text
frames or ``"b64"`` instead of ``"text"`` for binary ones. Files are named
``<venue>-<UTC start>-<n>.jsonl.gz`` and rotate after ``rotate_bytes`` of input.
These files are the input of replay, backtests and ``arbstream normalize``.

Besides the frames a recording holds what a replay needs to reproduce live events: the
``health`` events each connection emitted, interleaved in its venue's file (same line format,
``"health"`` holding the event's JSON), and ``instruments-<ns>.json`` (the tracked instruments,
written at start and on every listing change).

The event loop never touches the disk: :meth:`Recorder.write` only queues the line, a writer
thread compresses it, and a sync flush every ``flush_every_s`` makes everything up to it
readable even if the process is killed (:func:`iter_recording` reads such a file to its last
flush).
"""

from __future__ import annotations

import base64
import gzip
import logging
import queue
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import orjson

from schemas.market import Health, Instrument, encode

log = logging.getLogger(__name__)

Row = tuple[int, str, str, str | bytes]
"""(receipt_ts_ns, venue, connection, frame) of one recorded frame."""


class Recorder:
    """One venue's rotating recording, written by a background thread."""

    def __init__(self, directory: Path, venue: str, rotate_bytes: int, flush_every_s: float = 1.0) -> None:
        self.directory = directory
        self.venue = venue
        self.rotate_bytes = rotate_bytes
        self.flush_every_s = flush_every_s
        self.lines_written = 0
        self._file: gzip.GzipFile | None = None
        self._written = 0
        self._count = 0
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._drain, name=f"recorder-{venue}", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Lines queued but not yet compressed (grows only if the disk cannot keep up)."""
        return self._queue.qsize()

    def write(self, connection: str, receipt_ts_ns: int, frame: str | bytes) -> None:
        record: dict[str, object] = {"receipt_ts_ns": receipt_ts_ns, "venue": self.venue, "connection": connection}
        if isinstance(frame, bytes):
            record["b64"] = base64.b64encode(frame).decode()
        else:
            record["text"] = frame
        self._queue.put(orjson.dumps(record) + b"\n")

    def write_health(self, health: Health) -> None:
        record = {"receipt_ts_ns": health.receipt_ts_ns, "venue": health.venue, "connection": health.connection}
        self._queue.put(orjson.dumps(record)[:-1] + b',"health":' + encode(health) + b"}\n")

    def close(self) -> None:
        """Write everything queued, then close the file (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._close_file()

    def _drain(self) -> None:
        last_flush = time.monotonic()
        while True:
            try:
                line = self._queue.get(timeout=self.flush_every_s)
            except queue.Empty:
                line = b""
            if line is None:
                return
            if line:
                self._append(line)
            if self._file is not None and time.monotonic() - last_flush >= self.flush_every_s:
                self._file.flush(zlib.Z_SYNC_FLUSH)
                last_flush = time.monotonic()

    def _append(self, line: bytes) -> None:
        if self._file is None or self._written >= self.rotate_bytes:
            self._rotate()
        assert self._file is not None
        self._file.write(line)
        self._written += len(line)
        self.lines_written += 1

    def _rotate(self) -> None:
        self._close_file()
        self._count += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"{self.venue}-{stamp}-{self._count:04d}.jsonl.gz"
        self._file = gzip.open(path, "ab")  # noqa: SIM115 - kept open across writes, closed in close()
        self._written = 0

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def write_instruments(directory: Path, instruments: Sequence[Instrument], ts_ns: int | None = None) -> Path:
    """The tracked instruments at ``ts_ns`` (a replay parses frames with the listing live used)."""
    directory.mkdir(parents=True, exist_ok=True)
    ts_ns = time.time_ns() if ts_ns is None else ts_ns
    path = directory / f"instruments-{ts_ns}.json"
    body = {"ts_ns": ts_ns, "instruments": [msgspec.to_builtins(i) for i in instruments]}
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(body))
    tmp.replace(path)
    return path


def iter_recording(path: Path, read: dict[Path, int] | None = None) -> Iterator[Row]:
    """Every frame line of a recording file, in file order, streamed (health lines skipped).

    A file whose writer was killed ends without a gzip trailer: it is read up to its last sync
    flush and the truncation is logged, never raised. ``read[path]`` follows the compressed bytes
    consumed (every 256 lines: a progress bar's position when the recording's end time is unknown).
    """
    try:
        with path.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as handle:
            for number, line in enumerate(handle):
                if read is not None and number % 256 == 0:
                    read[path] = raw.tell()
                record = orjson.loads(line)
                if "health" in record:
                    continue
                frame = record["text"] if "text" in record else base64.b64decode(record["b64"])
                yield record["receipt_ts_ns"], record["venue"], record["connection"], frame
    except EOFError:
        log.warning("%s ends without a gzip trailer (writer killed?): read up to its last flush", path)
    if read is not None:
        read[path] = path.stat().st_size


def iter_health(path: Path) -> Iterator[Health]:
    """The health events recorded in a recording file, in file order."""
    decoder = msgspec.json.Decoder(Health)
    try:
        with gzip.open(path, "rb") as handle:
            for line in handle:
                if b'"health":' in line:
                    yield decoder.decode(orjson.dumps(orjson.loads(line)["health"]))
    except EOFError:
        log.warning("%s ends without a gzip trailer (writer killed?): read up to its last flush", path)


def read_recording(path: Path) -> list[Row]:
    """(receipt_ts_ns, venue, connection, frame) of every frame line of a recording file."""
    return list(iter_recording(path))
