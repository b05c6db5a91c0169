"""The soak's schedule: start the stack, inject a fault per period, wait for recovery, sample memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from arbstream.soak import SERVICES, Probes, SoakSettings, Stack
from arbstream.soak_report import FAULT_KINDS, Fault, SoakReport, print_tables, write
from plumbing.errors import ArbstreamError, FatalError
from plumbing.kafka import wait_until_ready

log = logging.getLogger(__name__)

HEALTH_RANK = {"ok": 0, "degraded": 1}
"""Anything else (down, starting, unreachable) ranks worst."""
WARMUP_S = 240.0
API_GAUGES = {
    "api spread-history samples": "arbstream_api_spread_history_samples",
    "api closed episodes held": "arbstream_api_closed_episodes_held",
    "api alerts held": "arbstream_api_alerts_held",
}
"""Gauges of the API's /metrics the soak samples with memory (report name -> metric family)."""


def health_rank(status: str) -> int:
    return HEALTH_RANK.get(status, 2)


async def until(check: Callable[[], Awaitable[bool]], bound_s: float, every_s: float = 0.5) -> float | None:
    """Seconds until ``check()`` is true, or None when ``bound_s`` passes first (errors count as false)."""
    started = time.monotonic()
    while time.monotonic() - started < bound_s:
        with contextlib.suppress(Exception):
            if await check():
                return round(time.monotonic() - started, 1)
        await asyncio.sleep(every_s)
    return None


class BrokerGone(FatalError):
    """The broker did not come back after an injected restart."""


class Soak:
    def __init__(self, settings: SoakSettings, minutes: float, stack: Stack, probes: Probes) -> None:
        self.settings, self.stack, self.probes = settings, stack, probes
        self.report = SoakReport(minutes=minutes, fault_every_s=settings.soak_fault_every_s)
        self.started = time.monotonic()
        self.venues: list[str] = []
        self.broker_restarting = False

    def now(self) -> float:
        return time.monotonic() - self.started

    async def warm_up(self) -> None:
        """Until every service works (ticks delivered and processed, /health answers), then the baseline."""

        async def flowing() -> bool:
            metrics = await self.probes.ingest()
            delivered = metrics.get("arbstream_ingest_delivered_total", {}).get("", 0)
            return delivered > 0 and self.probes.processed_since(0) > 0 and await self.probes.health() != "unreachable"

        if await until(flowing, WARMUP_S) is None:
            raise FatalError(
                f"the soak stack did not start processing within {WARMUP_S:.0f} s; logs in {self.stack.logs}"
            )
        await until(self._health_ok, 60.0)  # a demo is ok within seconds; else keep what it says
        self.report.baseline_health = await self.probes.health()
        streaming = (await self.probes.ingest()).get("arbstream_ingest_streaming", {})
        self.venues = sorted(venue for venue, up in streaming.items() if venue and up == 1)
        if not self.venues:
            raise FatalError("no venue streams at the start of the soak")

    async def _health_ok(self) -> bool:
        return await self.probes.health() == "ok"

    async def run(self) -> SoakReport:
        sampler = asyncio.create_task(self._sample_forever())
        self.started = time.monotonic()
        end = self.report.minutes * 60
        try:
            index = 0
            while self.now() + 1 < end:
                await asyncio.sleep(max(0.0, min(self.settings.soak_fault_every_s * (index + 1), end) - self.now()))
                if self.now() + 1 >= end:
                    break
                try:
                    await self._one_fault(FAULT_KINDS[index % len(FAULT_KINDS)], index)
                except BrokerGone as exc:
                    self.report.breach(self.now(), str(exc))
                    break
                index += 1
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        self._sample()
        self._check_alerts()
        self.report.elapsed_s = round(self.now(), 1)
        return self.report

    async def _one_fault(self, kind: str, index: int) -> None:
        venue = self.venues[(index // len(FAULT_KINDS)) % len(self.venues)]
        fault = Fault(
            kind, venue if kind in ("drop", "stall", "malformed") else kind.split("_")[0], round(self.now(), 1)
        )
        self.report.faults.append(fault)
        log.info("soak: injecting %s on %s", kind, fault.target)
        if kind == "worker_kill":
            fault.recovered_s = await self._worker_kill()
        elif kind == "broker_restart":
            fault.recovered_s = await self._broker_restart()
        else:
            fault.recovered_s = await self._venue_fault(kind, venue)
        if fault.recovered_s is None:
            self.report.breach(
                self.now(), f"{kind} on {fault.target} not recovered within {self.settings.soak_recovery_bound_s:.0f} s"
            )
            return
        baseline = health_rank(self.report.baseline_health)

        async def health_back() -> bool:
            return health_rank(await self.probes.health()) <= baseline

        fault.health_back_s = await until(health_back, self.settings.soak_health_bound_s)
        if fault.health_back_s is None:
            reasons = "; ".join(self.probes.last_reasons)[:300]
            self.report.breach(self.now(), f"/health not back to {self.report.baseline_health} after {kind}: {reasons}")

    async def _venue_fault(self, kind: str, venue: str) -> float | None:
        before = await self.probes.ingest()
        query = f"venue={venue}" + (f"&seconds={self.settings.soak_stall_s}" if kind == "stall" else "")
        async with self.probes.http.post(f"{self.stack.sim_url}/control/{kind}?{query}") as response:
            response.raise_for_status()
        if kind == "stall":
            await asyncio.sleep(self.settings.soak_stall_s)
        at_end = await self.probes.ingest()

        def value(metrics: dict[str, dict[str, float]], family: str) -> float:
            return metrics.get(f"arbstream_ingest_{family}", {}).get(venue, 0.0)

        async def streams_again() -> bool:
            now = await self.probes.ingest()
            noticed = kind == "stall" or (
                value(now, "reconnects_total") > value(before, "reconnects_total")
                or (kind == "malformed" and value(now, "malformed_total") > value(before, "malformed_total"))
            )
            return (
                noticed and value(now, "streaming") == 1 and value(now, "events_total") > value(at_end, "events_total")
            )

        return await until(streams_again, self.settings.soak_recovery_bound_s)

    async def _worker_kill(self) -> float | None:
        killed_ns = time.time_ns()
        self.stack.kill("worker")
        self.stack.spawn("worker")

        async def processes_again() -> bool:
            return self.probes.processed_since(killed_ns) > 0

        return await until(processes_again, self.settings.soak_recovery_bound_s)

    async def _broker_restart(self) -> float | None:
        broker = self.stack.broker
        self.broker_restarting = True
        try:
            await asyncio.to_thread(broker.stop)
            broker.launch()  # from the loop's (main) thread: the JVM's death signal follows this thread
            await wait_until_ready(broker.bootstrap, self.settings.soak_broker_back_s, is_alive=broker.is_running)
        except ArbstreamError as exc:
            # Nothing can be measured without a broker: a breach, and the soak ends with its report.
            raise BrokerGone(f"broker not back after its restart: {exc}") from exc
        finally:
            self.broker_restarting = False
        delivered = (await self.probes.ingest()).get("arbstream_ingest_delivered_total", {}).get("", 0)
        processed = self.probes.processed_since(0)

        async def flows_again() -> bool:
            now = (await self.probes.ingest()).get("arbstream_ingest_delivered_total", {}).get("", 0)
            return now > delivered and self.probes.processed_since(0) > processed

        return await until(flows_again, self.settings.soak_recovery_bound_s)

    async def _sample_forever(self) -> None:
        while True:
            self._sample()
            # What the API holds, next to its RSS: growth there is a window or a capped list filling.
            gauges = await self.probes.api_gauges()
            for name, family in API_GAUGES.items():
                if family in gauges:
                    self.report.gauge(self.now(), name, gauges[family])
            await asyncio.sleep(self.settings.soak_sample_every_s)

    def _sample(self) -> None:
        self.report.sample(self.now(), self.stack.rss())
        for name, code in self.stack.dead().items():
            self.report.breach(self.now(), f"{name} exited on its own (code {code}); restarted")
            self.stack.spawn(name)
        if not self.broker_restarting and not self.stack.broker.is_running():
            self.report.breach(self.now(), "broker exited on its own; restarted")
            self.stack.broker.launch()

    def _check_alerts(self) -> None:
        self.report.alerts = len(self.probes.alerts)
        duplicated = {event_id: n for event_id, n in self.probes.alerts.items() if n > 1}
        self.report.duplicate_alerts = len(duplicated)
        for event_id, n in sorted(duplicated.items())[:20]:
            self.report.breach(self.now(), f"alert {event_id} published {n} times")


def _wait_for_simulator(url: str, bound_s: float = 60.0) -> None:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/control/status", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.3)
    raise FatalError(f"the simulator did not answer at {url} within {bound_s:.0f} s")


async def _soak(settings: SoakSettings, minutes: float, stack: Stack) -> SoakReport:
    async with aiohttp.ClientSession() as http:
        probes = Probes(stack, http)
        follower = asyncio.create_task(probes.follow(stack.broker.bootstrap, settings.namespace))
        try:
            soak = Soak(settings, minutes, stack, probes)
            await soak.warm_up()
            return await soak.run()
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower


def run_soak(settings: SoakSettings, minutes: float, out_dir: Path | None = None) -> int:
    """The whole soak; exit code 0 when no invariant broke. Reports in ``out_dir`` (JSON + Markdown)."""
    out_dir = out_dir or settings.soak_out_dir / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir.mkdir(parents=True, exist_ok=True)
    # The soak's own consumer logs every refused connection while it restarts the broker on purpose.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    stack = Stack(settings, out_dir)
    try:
        stack.start_broker()
        for name in SERVICES:
            stack.spawn(name)
            if name == "simulator":  # ingest fetches its listings from it at start
                _wait_for_simulator(stack.sim_url)
        report = asyncio.run(_soak(settings, minutes, stack))
    finally:
        stack.stop()
    json_path, md_path = write(report, out_dir)
    print_tables(report)
    print(f"report: {json_path} and {md_path}; process logs in {out_dir}", flush=True)
    return 0 if not report.breaches else 1
