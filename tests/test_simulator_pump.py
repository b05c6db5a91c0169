"""Pacing (per-instrument schedules on a fake clock), batched delivery, and the generated REST listings."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web

from ingest.instruments import load_venue_instruments
from ingest.settings import SimulatorSettings
from ingest.simulator.base import BOOK, FUNDING, Frame, SimSession
from ingest.simulator.clients import SimClient, encode_ws_frames
from ingest.simulator.main import build_simulator
from ingest.simulator.schedule import NS, Schedule, heavy_tailed_rates
from ingest.simulator.server import Simulator, serve
from ingest.simulator.universe import MAJORS, GeneratedMarket, generated_market, plan_market, update_weights
from ingest.venues import implemented_venues, venue_class
from ingest.venues.base import load_json
from plumbing.broker import free_port
from schemas.market import Quote

T0 = 1_790_516_400 * NS


@pytest.fixture(scope="module")
def market() -> GeneratedMarket:
    return generated_market(implemented_venues())


def test_heavy_tailed_rates_sum_to_the_total_with_a_floor(market: GeneratedMarket) -> None:
    weights = update_weights(market)
    rates = heavy_tailed_rates(weights, 50_000)
    assert sum(rates.values()) == pytest.approx(50_000)
    ordered = sorted(rates.values())
    assert 1.0 <= ordered[0] <= 2.0  # the long tail near 1/s
    assert 200 <= ordered[-1] <= 2000  # a few symbols at hundreds per second
    assert sum(1 for r in ordered if r >= 100) <= 0.03 * len(ordered)  # a few per venue
    small = heavy_tailed_rates(weights, 1000)  # fewer updates than instruments: the floor shrinks
    assert sum(small.values()) == pytest.approx(1000) and min(small.values()) > 0


def test_schedule_hits_the_rate_over_a_window_on_a_fake_clock() -> None:
    rates = {"hot": 400.0, "warm": 30.0} | {f"tail{i}": 1.0 for i in range(500)}
    schedule = Schedule(rates, T0)
    counts: Counter[str] = Counter()
    for step in range(1, 1001):  # 20 s in 20 ms steps
        counts.update(schedule.due(T0 + step * 20_000_000))
    assert abs(counts["hot"] - 8000) <= 1 and abs(counts["warm"] - 600) <= 1
    assert all(19 <= counts[f"tail{i}"] <= 21 for i in range(500))
    assert schedule.emitted == sum(counts.values()) and schedule.lagged == 0


def test_a_late_pump_drops_the_backlog_and_counts_it() -> None:
    schedule = Schedule({"a": 100.0}, T0)
    assert len(schedule.due(T0 + 10 * NS)) <= 101  # ten seconds late: at most the last second
    assert schedule.lagged >= 899
    assert len(schedule.due(T0 + 10 * NS + 100_000_000)) == pytest.approx(10, abs=1)


def _rates(market: GeneratedMarket, total: float = 5_000) -> dict[str, float]:
    return heavy_tailed_rates(update_weights(market), total)


def _sim(market: GeneratedMarket, venues: list[str]) -> Simulator:
    """The market on ``venues`` at 5,000 updates/s, its clock at T0 (steps pass later times)."""
    return Simulator(
        market.instruments, venues, tick_ms=20, rates=_rates(market), auto_dislocations=False, clock=lambda: T0
    )


def _fake_client(sim: Simulator, venue: str, kinds: tuple[str, ...] = (BOOK, FUNDING)) -> list[Frame]:
    """A client of ``venue`` subscribed to everything, collecting what the pump sends it."""
    received: list[Frame] = []
    session = SimSession(venue, sim.sims[venue].ws_paths[0], {})
    session.subscriptions = {(kind, native) for native in sim.sims[venue].by_native for kind in kinds}

    async def send_batch(frames: list[Frame]) -> None:
        received.extend(frames)

    async def send_frame(frame: Frame) -> None:
        received.append(frame)

    async def close() -> None:
        return None

    sim.clients[venue].add(SimClient(session, send_frame, send_batch, close, lambda: False))
    return received


async def test_pump_sends_the_configured_rate_by_the_schedule(market: GeneratedMarket) -> None:
    sim = Simulator(
        market.instruments,
        ["binance", "hyperliquid"],
        tick_ms=20,
        auto_dislocations=False,
        rates=heavy_tailed_rates(update_weights(market), 20_000),
        reference_prices=market.reference_prices,
        funding_every_ms=5_000,
        clock=lambda: T0,
    )
    binance, hyperliquid = _fake_client(sim, "binance", (BOOK,)), _fake_client(sim, "hyperliquid")
    for step in range(1, 501):  # 10 simulated seconds
        await sim.step(T0 + step * 20_000_000)
    expected = 10 * sim.books.total_per_s
    assert sim.books.total_per_s < 20_000  # two venues' share of the whole market's 20,000/s
    assert sim.counters["book_updates"] == pytest.approx(expected, rel=0.02)
    books = Counter(orjson_symbol(f) for f in binance)
    assert books["BTCUSDT"] > 50 * books.most_common()[-1][1]  # heavy-tailed: BTC far above the tail
    assert len(books) == len(sim.sims["binance"].by_native)  # and every instrument updated
    instruments = len(sim.sims["hyperliquid"].by_native)
    assert len(hyperliquid) > 10 * 2 * instruments  # funding every 5 s + books at >= 1/s
    assert sim.counters["frames"] == len(binance) + len(hyperliquid)


def orjson_symbol(frame: Frame) -> str:
    data = load_json(frame)
    return str(data["data"]["s"])


async def test_stalled_venue_sends_nothing_and_counts_it(market: GeneratedMarket) -> None:
    sim = _sim(market, ["binance"])
    received = _fake_client(sim, "binance")
    sim.stalled_until["binance"] = float("inf")
    for step in range(1, 51):
        await sim.step(T0 + step * 20_000_000)
    assert received == [] and sim.counters["stalled_updates"] > 0


async def test_slow_client_misses_updates_without_a_sequence_gap(market: GeneratedMarket) -> None:
    sim = _sim(market, ["binance"])
    received = _fake_client(sim, "binance", (BOOK,))
    client = next(iter(sim.clients["binance"]))
    for step in range(1, 101):
        client.backlogged = (lambda: True) if 30 <= step < 60 else (lambda: False)
        await sim.step(T0 + step * 20_000_000)
    assert sim.counters["slow_client_updates"] > 0
    sequences = [load_json(f)["data"]["u"] for f in received if orjson_symbol(f) == "BTCUSDT"]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))


async def test_dislocated_tail_base_bursts_on_every_venue(market: GeneratedMarket) -> None:
    sim = _sim(market, ["binance", "bybit"])
    binance = _fake_client(sim, "binance", (BOOK,))
    tail = next(i for i in reversed(market.instruments) if i.venue == "binance")
    sim._dislocate(["bybit"], tail.base, Decimal(90), seconds=10)
    for step in range(1, 251):  # 5 s
        await sim.step(T0 + step * 20_000_000)
    assert sum(1 for f in binance if orjson_symbol(f) == tail.native_symbol) >= 9  # >= 2/s while dislocated


def test_ws_frame_headers() -> None:
    assert encode_ws_frames(["a" * 125]) == b"\x81\x7d" + b"a" * 125
    assert encode_ws_frames(["a" * 126])[:4] == b"\x81\x7e\x00\x7e"
    assert encode_ws_frames([b"\x00" * 70_000])[:10] == b"\x82\x7f" + (70_000).to_bytes(8, "big")
    assert encode_ws_frames(["x", b"y"]) == b"\x81\x01x\x82\x01y"


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Simulator]]:
    # Majors and the tail, not all 480 bases: CoinDCX's listing is one paced request per pair.
    bases = plan_market().bases[:11] + plan_market().bases[-30:]  # PEPE is the 11th
    settings = SimulatorSettings(symbols=bases, simulator_rate=20_000.0, simulator_auto_dislocations=False)
    sim = build_simulator(settings)
    port = free_port()
    runner: web.AppRunner = await serve(sim, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}", sim
    await runner.cleanup()


async def test_every_venue_listing_served_parses_back_to_the_simulated_instruments(
    served: tuple[str, Simulator],
) -> None:
    base_url, sim = served
    sources = generated_market(implemented_venues()).sources
    assert sources["binance"] == "generated"
    async with aiohttp.ClientSession() as http:
        for venue in implemented_venues():
            cls = venue_class(venue)
            listing = load_json(await cls.fetch_listing(http, f"{base_url}/{venue}"))
            served_instruments = sorted(cls.parse_instruments(listing), key=lambda i: i.instrument_id)
            simulated = sorted(sim.sims[venue].by_native.values(), key=lambda i: i.instrument_id)
            if sources[venue] == "generated":
                assert served_instruments == simulated, venue
            else:  # its simulator cannot generate yet: the bundled file, which the simulated subset came from
                bundled = sorted(load_venue_instruments(venue), key=lambda i: i.instrument_id)
                assert served_instruments == bundled, venue
                assert set(simulated) <= set(served_instruments), venue
        assert len({i.base for i in sim.by_id.values()}) >= 35


async def test_served_market_streams_a_generated_tail_symbol(served: tuple[str, Simulator]) -> None:
    base_url, sim = served
    pepe = sim.by_id["PEPE-USDT-PERP@binance"]
    tail = next(i for i in sim.by_id.values() if i.venue == "binance" and i.base not in ("BTC", "ETH", "PEPE"))
    streams = [f"{pepe.native_symbol.lower()}@bookTicker", f"{tail.native_symbol.lower()}@bookTicker"]
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{base_url.replace('http', 'ws')}/binance/public/stream")
        await ws.send_json({"method": "SUBSCRIBE", "params": streams, "id": 7})
        assert await ws.receive_json(timeout=5) == {"result": None, "id": 7}
        # Rates are heavy-tailed: a busy symbol may fill the first frames, so read until both came.
        wanted, seen = {pepe.native_symbol, tail.native_symbol}, set[str]()
        frames_read = 0
        while frames_read < 200 and not seen >= wanted:
            seen.add((await ws.receive_json(timeout=10))["data"]["s"])
            frames_read += 1
        assert seen == wanted
        async with http.get(f"{base_url}/control/stats") as response:
            stats = await response.json()
        # The restricted market keeps its symbols' share of the whole market's 20,000/s.
        assert 1_000 < stats["book_rate_per_s"] < 20_000
        assert stats["frames"] >= frames_read


async def test_auto_dislocations_open_tail_opportunities_within_a_minute(market: GeneratedMarket) -> None:
    """The demo's acceptance, on the wire: parsed as ingest parses, a tail base crosses by more than
    fees + the open threshold with both legs under 3 s old, within one simulated minute."""
    venues = ["binance", "okx"]
    sim = Simulator(
        market.instruments, venues, tick_ms=20, rates=_rates(market), dislocation_every_ms=10_000, clock=lambda: T0
    )
    received = {v: _fake_client(sim, v, (BOOK,)) for v in venues}
    parsers = {v: venue_class(v)(list(sim.sims[v].by_native.values())) for v in venues}
    latest: dict[tuple[str, str], tuple[Decimal, Decimal, int]] = {}  # (base, venue) -> per-unit bid, ask, time
    crossed: set[str] = set()
    for step in range(1, 3001):  # 60 s
        now = T0 + step * 20_000_000
        await sim.step(now)
        for venue, frames in received.items():
            for frame in frames:
                for event in parsers[venue].parse(frame, now).events:
                    if isinstance(event, Quote) and event.bid is not None and event.ask is not None:
                        unit = event.price_multiplier
                        latest[event.base, venue] = (event.bid / unit, event.ask / unit, now)
                        crossed |= _crossing(latest, event.base, now)
            frames.clear()
    assert crossed - set(MAJORS), crossed


def _crossing(latest: dict[tuple[str, str], tuple[Decimal, Decimal, int]], base: str, now: int) -> set[str]:
    legs = [latest[base, v] for v in ("binance", "okx") if (base, v) in latest]
    if len(legs) < 2 or any(now - t > 3 * NS for _b, _a, t in legs):
        return set()
    (bid_a, ask_a, _), (bid_b, ask_b, _) = legs
    net = max(bid_b / ask_a, bid_a / ask_b) - 1 - Decimal("0.0010")  # two taker fees of ~5 bp
    return {base} if net >= Decimal("0.0015") else set()
