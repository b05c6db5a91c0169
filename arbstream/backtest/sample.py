"""The bundled sample recording: the simulator with known planted dislocations, recorded raw.

``python -m arbstream.backtest.sample OUT_DIR`` regenerates it: it starts ``arbstream simulate``
(random dislocations off) and ``arbstream record`` (no broker needed) for :data:`SECONDS`,
plants :data:`PLANTED` through the simulator's control endpoint, and writes ``planted.json``
next to the frames — what a backtest of the sample must find, exactly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

VENUES = ("binance", "okx", "bybit", "gate")
SYMBOLS = ("BTC", "ETH", "SOL", "PEPE")
SECONDS = 50
RATE = "1000"
"""The simulator's whole-market book update rate: small, so the sample stays well under 1 MB."""


@dataclass(frozen=True)
class Plant:
    at_s: float
    """Seconds after recording started."""
    base: str
    venue: str
    bps: int
    """Positive: the venue's quotes are that much higher (sell there); negative: lower (buy there)."""
    seconds: float


PLANTED = (
    Plant(8, "BTC", "okx", 60, 4),
    Plant(18, "SOL", "bybit", -70, 4),
    Plant(28, "PEPE", "gate", 80, 4),
    Plant(38, "ETH", "binance", -60, 4),
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _post(url: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5) as response:
        response.read()


def _wait_up(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s")


def make_sample(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    port, cache = _free_port(), tempfile.mkdtemp(prefix="arbstream-sample-")
    env = {
        **os.environ,
        "ARBSTREAM_SIMULATOR_PORT": str(port),
        "ARBSTREAM_SIMULATOR_URL": f"http://127.0.0.1:{port}",
        "ARBSTREAM_SIMULATOR_AUTO_DISLOCATIONS": "false",
        "ARBSTREAM_SIMULATOR_RATE": RATE,
        "ARBSTREAM_VENUES": ",".join(VENUES),
        "ARBSTREAM_SYMBOLS": ",".join(SYMBOLS),
        "ARBSTREAM_INSTRUMENTS_CACHE_DIR": cache,
    }
    cli = [sys.executable, "-m", "arbstream.cli"]
    simulator = subprocess.Popen([*cli, "simulate"], env=env)
    try:
        _wait_up(f"http://127.0.0.1:{port}/control/status")
        recorder = subprocess.Popen([*cli, "record", "--out", str(out)], env=env)
        started = time.monotonic()
        planted = []
        for plant in PLANTED:
            time.sleep(max(0.0, started + plant.at_s - time.monotonic()))
            query = f"base={plant.base}&venue={plant.venue}&bps={plant.bps}&seconds={plant.seconds}"
            _post(f"http://127.0.0.1:{port}/control/dislocate?{query}")
            planted.append({**asdict(plant), "start_ns": time.time_ns()})
        time.sleep(max(0.0, started + SECONDS - time.monotonic()))
        recorder.send_signal(signal.SIGTERM)
        recorder.wait(30)
    finally:
        simulator.send_signal(signal.SIGTERM)
        simulator.wait(30)
    (out / "planted.json").write_text(json.dumps(planted, indent=1) + "\n")


if __name__ == "__main__":
    make_sample(Path(sys.argv[1]))
