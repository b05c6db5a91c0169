"""Funding-history backfill, pure parts: each venue's parser on its documented response format
(``tests/fixtures/funding_history/<venue>.json``), the paging loop, the windows, and each venue's
request against the simulator's endpoint (same settlements as the simulator's market)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ingest.funding_backfill import FundingBackfill, by_liquidity, fetch_instrument, venue_history, window
from ingest.simulator.server import Simulator, serve
from ingest.venues.base import FrameError, load_json, make_instrument
from ingest.venues.history import HistoryRequest, HistorySpec, Paging, snap_ns
from plumbing.broker import free_port
from schemas.funding import FundingSettlement
from schemas.market import ContractKind, Instrument

D = Decimal
FIXTURES = Path(__file__).parent / "fixtures" / "funding_history"
HOUR_MS = 3_600_000
MS = 1_000_000
NOW_MS = 1_790_553_600_000 + 1234  # 2026-09-28 00:00:01.234 UTC


def fixture(venue: str) -> dict[str, Any]:
    loaded: dict[str, Any] = load_json((FIXTURES / f"{venue}.json").read_bytes())
    return loaded


def inst(venue: str, native: str, interval_h: int = 8, base: str = "BTC", volume: str | None = None) -> Instrument:
    made = make_instrument(venue, native, base, "USDT", "USDT", ContractKind.LINEAR, funding_interval_h=interval_h)
    if volume is None:
        return made
    import msgspec

    return msgspec.structs.replace(made, volume_24h_quote=D(volume))


# venue -> (instrument in the fixture, expected [(settlement ms, rate)])
EXPECTED: dict[str, tuple[Instrument, list[tuple[int, str]]]] = {
    "binance": (
        inst("binance", "BTCUSDT"),
        [(1790467200000, "0.00010000"), (1790496000000, "0.00007342"), (1790524800000, "-0.00002150")],
    ),
    "bybit": (
        inst("bybit", "ETHUSDT", 4, "ETH"),
        [(1790524800000, "-0.00012"), (1790539200000, "0.00004863"), (1790553600000, "0.0001")],
    ),
    "okx": (  # the realised rate where given, else the published one
        inst("okx", "BTC-USDT-SWAP"),
        [(1790496000000, "-0.0000212039"), (1790524800000, "0.0001"), (1790553600000, "0.0000911203")],
    ),
    "gate": (
        inst("gate", "BTC_USDT", 2),
        [(1790539200000, "0.0001"), (1790546400000, "-0.000015"), (1790553600000, "0.000073")],
    ),
    "bitget": (
        inst("bitget", "BTCUSDT"),
        [(1790496000000, "-0.000031"), (1790524800000, "0.0001"), (1790553600000, "0.000068")],
    ),
    "mexc": (  # JSON numbers, read as Decimals from their text
        inst("mexc", "BTC_USDT"),
        [(1790496000000, "0"), (1790524800000, "-0.00005"), (1790553600000, "0.000266")],
    ),
    "kucoin": (
        inst("kucoin", "XBTUSDTM"),
        [(1790496000000, "0.0001"), (1790524800000, "-0.000012"), (1790553600000, "0.000089")],
    ),
    "bitmex": (  # ISO times; each row's own interval
        inst("bitmex", "XBTUSD", 4),
        [(1790481600000, "0.0001"), (1790510400000, "-0.000245"), (1790539200000, "0.000061")],
    ),
    "hyperliquid": (  # times a few ms past the hour are that hour
        inst("hyperliquid", "ETH", 1, "ETH"),
        [(1790546400000, "-0.00022196"), (1790550000000, "0.0000125"), (1790553600000, "0.00001831")],
    ),
    "coinex": (  # the rate actually charged, not the theoretical one
        inst("coinex", "BTCUSDT"),
        [(1790496000000, "0.0001"), (1790524800000, "-0.00013372"), (1790553600000, "0.00007488")],
    ),
    "deribit": (  # hourly rows: the one on the 8 h grid, with its trailing 8 h rate
        make_instrument("deribit", "BTC-PERPETUAL", "BTC", "USD", "BTC", ContractKind.INVERSE, funding_interval_h=8),
        [(1790524800000, "0.0000398")],
    ),
}


@pytest.mark.parametrize("venue", sorted(EXPECTED))
def test_parser_reads_the_documented_response_exactly(venue: str) -> None:
    instrument, expected = EXPECTED[venue]
    loaded = fixture(venue)
    assert loaded["source"].startswith("https://")
    rows = venue_history(venue).parse(loaded["response"], instrument)  # type: ignore[union-attr]
    assert [(r.settled_ts_ns // MS, r.rate) for r in sorted(rows, key=lambda r: r.settled_ts_ns)] == [
        (t, D(rate)) for t, rate in expected
    ]
    for row in rows:
        assert isinstance(row.rate, Decimal)
        assert (row.instrument_id, row.venue, row.base) == (instrument.instrument_id, venue, instrument.base)
        assert row.interval_h == (8 if venue == "bitmex" else instrument.funding_interval_h)
        assert row.observed_ts_ns == row.settled_ts_ns and not row.time_estimated


@pytest.mark.parametrize("venue", sorted(EXPECTED))
def test_parser_refuses_a_payload_of_another_shape(venue: str) -> None:
    instrument, _ = EXPECTED[venue]
    history = venue_history(venue)
    assert history is not None
    with pytest.raises(FrameError):
        history.parse({"unexpected": "shape"} if venue == "binance" else ["unexpected"], instrument)


def test_settlement_times_snap_to_the_hour_only_when_within_a_second() -> None:
    hour_ns = HOUR_MS * MS
    assert snap_ns(5 * hour_ns + 76 * MS) == 5 * hour_ns
    assert snap_ns(5 * hour_ns - 999 * MS) == 5 * hour_ns
    assert snap_ns(5 * hour_ns + 1_001 * MS) == 5 * hour_ns + 1_001 * MS  # not a settlement on the hour


def test_windows_start_after_what_the_topic_holds() -> None:
    hourly, eight = inst("gate", "BTC_USDT", 1), inst("binance", "BTCUSDT", 8)
    assert window(eight, NOW_MS, 30, None) == (NOW_MS - 30 * 24 * HOUR_MS, NOW_MS)
    have = (NOW_MS - 5 * HOUR_MS) * MS
    assert window(hourly, NOW_MS, 30, have) == (NOW_MS - 5 * HOUR_MS + 1, NOW_MS)
    assert window(eight, NOW_MS, 30, have) is None  # nothing can have settled since
    assert window(eight, NOW_MS, 0, None) is None


def test_most_liquid_first_unknown_volume_last() -> None:
    a, b, c = inst("binance", "AUSDT", volume="10"), inst("binance", "BUSDT", volume="2000"), inst("binance", "CUSDT")
    assert by_liquidity([c, a, b]) == [b, a, c]


class _Pages:
    """A fake venue: 10 hourly settlements, answered per the paging rule under test."""

    def __init__(self, paging: Paging, page_size: int = 3) -> None:
        self.times = [NOW_MS - NOW_MS % HOUR_MS - k * HOUR_MS for k in range(10)][::-1]
        self.spec = HistorySpec(page_size=page_size, paging=paging, min_interval_s=0)
        self.requests: list[tuple[int, int, int]] = []

    def funding_history_request(self, instrument: Instrument, start_ms: int, end_ms: int, page: int) -> HistoryRequest:
        self.requests.append((start_ms, end_ms, page))
        return HistoryRequest("/h", {"start": str(start_ms), "end": str(end_ms), "page": str(page)})

    async def fetch(self, request: HistoryRequest) -> list[int]:
        lo, hi, page = (int(request.params[k]) for k in ("start", "end", "page"))
        size = self.spec.page_size
        inside = [t for t in self.times if lo <= t <= hi]
        if self.spec.paging is Paging.FORWARD:
            return inside[:size]
        if self.spec.paging is Paging.BACKWARD:
            return inside[::-1][:size]
        newest_first = self.times[::-1]
        return newest_first[(page - 1) * size : page * size]

    def parse_funding_history(self, payload: list[int], instrument: Instrument) -> list[FundingSettlement]:
        from ingest.venues.history import settlement

        return [settlement(instrument, D(t % 7), t * MS) for t in payload]


@pytest.mark.parametrize("paging", list(Paging))
async def test_paging_collects_every_settlement_in_the_window_once(paging: Paging) -> None:
    pages = _Pages(paging)
    history = venue_history("binance")
    assert history is not None
    fake = type(history)(pages.spec, pages)  # type: ignore[arg-type]
    start = pages.times[2] - 1
    rows = await fetch_instrument(fake, inst("gate", "BTC_USDT", 1), start, NOW_MS, pages.fetch)
    assert [r.settled_ts_ns // MS for r in rows] == pages.times[2:]
    assert len(pages.requests) == {Paging.FORWARD: 3, Paging.BACKWARD: 3, Paging.PAGES: 3}[paging]


# -- each venue's request against the simulator's endpoint --------------------------------------
SIM_INSTRUMENTS = {
    "binance": inst("binance", "BTCUSDT", 8),
    "bybit": inst("bybit", "ETHUSDT", 1, "ETH"),  # 721 hourly rows: four pages of 200
    "okx": inst("okx", "BTC-USDT-SWAP", 4),
    "gate": inst("gate", "BTC_USDT", 1),
    "bitget": inst("bitget", "BTCUSDT", 1),  # 721 rows: eight pages of 100
    "mexc": inst("mexc", "BTC_USDT", 4),  # 181 rows: two pages of 100
    "kucoin": inst("kucoin", "XBTUSDTM", 4),  # 181 rows: two pages of 100
    "bitmex": inst("bitmex", "XBTUSD", 1),  # 721 rows: two pages of 500
    "hyperliquid": inst("hyperliquid", "ETH", 1, "ETH"),
    "coinex": inst("coinex", "BTCUSDT", 4),
    "deribit": inst("deribit", "ETH_USDC-PERPETUAL", 8, "ETH"),  # 721 hourly rows in two windows
}


@pytest.mark.parametrize("venue", sorted(SIM_INSTRUMENTS))
async def test_backfill_from_the_simulator_matches_its_market(venue: str) -> None:
    instrument = SIM_INSTRUMENTS[venue]
    port = free_port()
    sim = Simulator([instrument], [venue], clock=lambda: NOW_MS * MS, auto_dislocations=False)
    runner = await serve(sim, "127.0.0.1", port)
    published: list[FundingSettlement] = []

    async def publish(rows: list[FundingSettlement]) -> None:
        published.extend(rows)

    try:
        async with aiohttp.ClientSession() as http:
            backfill = FundingBackfill(http, lambda v: f"http://127.0.0.1:{port}/{v}", 30, publish, pacing=0.0)
            backfill.track([instrument], now_ms=NOW_MS)
            await backfill.wait()
    finally:
        await runner.cleanup()
    step = (instrument.funding_interval_h or 8) * HOUR_MS
    start = NOW_MS - 30 * 24 * HOUR_MS
    expected = list(range(-(-start // step) * step, NOW_MS + 1, step))
    assert [s.settled_ts_ns // MS for s in published] == expected
    assert [s.rate for s in published] == [sim.market.settled_rate(instrument, t) for t in expected]
    progress = backfill.progress[venue]
    assert (progress.state, progress.done, progress.written, progress.errors) == ("done", 1, len(expected), 0)


def test_every_venue_declares_its_history_endpoint_or_its_absence() -> None:
    from ingest.venues import VENUE_NAMES

    declared = {venue: venue_history(venue) for venue in VENUE_NAMES}
    assert sorted(v for v, h in declared.items() if h is None) == ["coindcx", "paradex", "phemex"]
    assert sorted(v for v, h in declared.items() if h is not None) == sorted(SIM_INSTRUMENTS) == sorted(EXPECTED)
    for history in declared.values():
        if history is not None:
            assert history.spec.page_size > 0 and history.spec.min_interval_s > 0


async def test_a_venue_without_an_endpoint_is_reported_unsupported() -> None:
    async def publish(rows: list[FundingSettlement]) -> None:
        raise AssertionError("nothing to publish")

    async with aiohttp.ClientSession() as http:
        backfill = FundingBackfill(http, lambda v: "http://127.0.0.1:9", 30, publish)
        backfill.track([inst("paradex", "BTC-USD-PERP"), inst("paradex", "ETH-USD-PERP", base="ETH")])
        await backfill.wait()
    status = backfill.statuses()["paradex"]
    assert (status.state, status.instruments, status.done, status.errors) == ("unsupported", 2, 0, 0)


async def test_a_failure_on_our_side_ends_that_venue_as_failed_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = _Pages(Paging.FORWARD)
    history = venue_history("binance")
    assert history is not None
    monkeypatch.setattr("ingest.funding_backfill.venue_history", lambda venue: type(history)(pages.spec, pages))  # type: ignore[arg-type]

    async def publish(rows: list[FundingSettlement]) -> None:
        raise RuntimeError("broker refused")

    async def get(venue: str, request: HistoryRequest) -> Any:
        return await pages.fetch(request)

    async with aiohttp.ClientSession() as http:
        backfill = FundingBackfill(http, lambda v: "unused", 30, publish, pacing=0.0)
        monkeypatch.setattr(backfill, "_get", get)
        backfill.track([inst("gate", "BTC_USDT", 1), inst("gate", "ETH_USDT", 1, "ETH")], now_ms=NOW_MS)
        await backfill.wait()
    status = backfill.statuses()["gate"]
    assert (status.state, status.done, status.last_error) == ("failed", 0, "RuntimeError('broker refused')")


async def test_instruments_listed_later_are_backfilled_once_each() -> None:
    first, later = inst("binance", "BTCUSDT", 8), inst("binance", "ETHUSDT", 8, "ETH")
    port = free_port()
    sim = Simulator([first, later], ["binance"], clock=lambda: NOW_MS * MS, auto_dislocations=False)
    runner = await serve(sim, "127.0.0.1", port)
    published: list[FundingSettlement] = []

    async def publish(rows: list[FundingSettlement]) -> None:
        published.extend(rows)

    try:
        async with aiohttp.ClientSession() as http:
            backfill = FundingBackfill(http, lambda v: f"http://127.0.0.1:{port}/{v}", 1, publish, pacing=0.0)
            backfill.track([first], now_ms=NOW_MS)
            await backfill.wait()
            backfill.track([first, later], now_ms=NOW_MS)  # a listing refresh: only ETH is new
            await backfill.wait()
    finally:
        await runner.cleanup()
    step = 8 * HOUR_MS
    day = list(range(-(-(NOW_MS - 24 * HOUR_MS) // step) * step, NOW_MS + 1, step))
    assert [(s.base, s.settled_ts_ns // MS) for s in published] == [("BTC", t) for t in day] + [("ETH", t) for t in day]
    progress = backfill.progress["binance"]
    assert (progress.instruments, progress.done, progress.written, progress.state) == (2, 2, 6, "done")


async def test_the_pacer_spaces_request_starts_by_the_venue_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.funding_backfill import Pacer

    clock = [1000.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        clock[0] += seconds

    monkeypatch.setattr("ingest.funding_backfill.time.monotonic", lambda: clock[0])
    monkeypatch.setattr("ingest.funding_backfill.asyncio.sleep", sleep)
    pacer = Pacer(0.75)
    await pacer.wait()  # the first request goes at once
    clock[0] += 0.25  # the request took 0.25 s
    await pacer.wait()
    await pacer.wait()
    clock[0] += 2.0  # a slow answer: no pause owed
    await pacer.wait()
    assert slept == [0.5, 0.75]
