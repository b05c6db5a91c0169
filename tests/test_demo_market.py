"""Issue 11's acceptance, as ``make demo`` runs it: the default universe (``all``) over the simulator's
generated whole market, through ingest, the broker, the worker and the API.

Only what a test needs differs from ``arbstream up --demo``: free ports, its own namespace and
directories. The assertions are the issue's: the API lists at least 400 symbols, each priced on at
least two venues, and opportunities appear in tail symbols (not the majors) within a minute of it.
On this machine (2 cores): 441 symbols on two venues or more about 20 s after start, the first
tail alert already there.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ingest.simulator.universe import MAJORS
from plumbing.broker import free_port
from tests.helpers import running, service_env

pytestmark = pytest.mark.integration

SERVICES = ("simulate", "ingest", "worker", "api")
MIN_SYMBOLS = 400
OPPORTUNITY_WITHIN_S = 60


def _json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def _poll(what: str, timeout_s: float, probe: Callable[[], Any]) -> Any:
    """``probe()``'s first truthy answer; the last answer is in the failure message."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except OSError as error:  # not serving yet (refused, 503 while loading)
            last = repr(error)
        else:
            if last:
                return last
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {str(last)[:500]}")


def _priced_symbols(base_url: str) -> dict[str, int]:
    """Symbol -> venues with a price now, from ``GET /api/prices`` (what the dashboard lists)."""
    prices: dict[str, dict[str, Any]] = _json(f"{base_url}/api/prices")["prices"]
    return {symbol: sum(q.get("price") is not None for q in venues.values()) for symbol, venues in prices.items()}


def _whole_market_priced(base_url: str) -> dict[str, int] | None:
    venues_per_symbol = _priced_symbols(base_url)
    on_two = {symbol for symbol, venues in venues_per_symbol.items() if venues >= 2}
    # The majors too: 450 symbols can be priced while a major still waits for its second venue.
    return venues_per_symbol if len(on_two) >= MIN_SYMBOLS and set(MAJORS) <= on_two else None


def _tail_alerts(base_url: str) -> list[str]:
    alerts = _json(f"{base_url}/api/opportunities")["recent_alerts"]
    return [alert["symbol"] for alert in alerts if alert["symbol"] not in MAJORS]


def test_the_demo_lists_the_whole_market_and_finds_tail_opportunities(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    sim_port, api_port = free_port(), free_port()
    env = service_env(
        kafka_bootstrap,
        namespace,
        ARBSTREAM_DEMO="true",
        ARBSTREAM_SIMULATOR_PORT=str(sim_port),
        ARBSTREAM_SIMULATOR_URL=f"http://127.0.0.1:{sim_port}",
        ARBSTREAM_METRICS_PORT=str(free_port()),
        ARBSTREAM_WORKER_DATA_DIR=str(tmp_path / "faust"),
        ARBSTREAM_API_HOST="127.0.0.1",
        ARBSTREAM_API_PORT=str(api_port),
    )
    for default in ("ARBSTREAM_SYMBOLS", "ARBSTREAM_SYMBOLS_FILE", "ARBSTREAM_SIMULATOR_RATE"):
        env.pop(default, None)  # the demo's defaults: the whole market at the default rate
    logs = {name: tmp_path / f"{name}.log" for name in SERVICES}
    base_url = f"http://127.0.0.1:{api_port}"
    with ExitStack() as stack:
        procs = {name: stack.enter_context(running([name], env, logs[name])) for name in SERVICES}
        try:
            venues_per_symbol = _poll(
                f"{MIN_SYMBOLS} symbols priced on two venues or more, the majors among them",
                240,
                lambda: _whole_market_priced(base_url),
            )
            listed_at = time.monotonic()
            tail = _poll("an alert on a tail symbol", OPPORTUNITY_WITHIN_S, lambda: _tail_alerts(base_url))
            found_after_s = time.monotonic() - listed_at
        except AssertionError as failure:
            tails = "\n".join(f"--- {n} ---\n{p.read_text(errors='replace')[-1500:]}" for n, p in logs.items())
            raise AssertionError(f"{failure}\n{tails}") from None
        dead = [name for name, proc in procs.items() if proc.poll() is not None]
    assert not dead, f"services exited during the test: {dead}"
    # Each long-running service froze its startup objects once started (plumbing.gc_tuning).
    frozen = [name for name in ("ingest", "worker", "api") if "startup objects frozen" in logs[name].read_text()]
    assert frozen == ["ingest", "worker", "api"]
    on_two = [symbol for symbol, venues in venues_per_symbol.items() if venues >= 2]
    assert len(on_two) >= MIN_SYMBOLS
    assert set(MAJORS) <= set(on_two), "the majors are part of the whole market"
    assert tail and not set(tail) & set(MAJORS), f"first tail alert {found_after_s:.1f}s after the market was listed"
