"""The simulator's planted funding carry: exact rates, its settlement schedule, the default choice
over 1 h / 4 h / 8 h venues, and the control endpoint (``ingest.simulator.carry``)."""

from __future__ import annotations

from decimal import Decimal

import aiohttp

from ingest.simulator.carry import DEFAULT_RATES, default_carry
from ingest.simulator.market import Market, PlantedCarry, next_settlement_ms
from ingest.simulator.server import Simulator, serve
from ingest.simulator.universe import generated_market
from ingest.venues import implemented_venues
from ingest.venues.base import make_instrument
from plumbing.broker import free_port
from schemas.market import ContractKind, Instrument

D = Decimal
HOUR_MS = 3_600_000
NOW_MS = 1_790_000_123_456


def inst(venue: str, interval_h: int, base: str = "ACE", quote: str = "USDT") -> Instrument:
    linear = ContractKind.LINEAR
    return make_instrument(venue, f"{base}{quote}", base, quote, quote, linear, funding_interval_h=interval_h)


def test_a_planted_rate_is_exact_and_expires() -> None:
    market = Market([inst("gate", 1), inst("binance", 8)], auto_dislocation_every_ms=0)
    before = [market.funding(inst("binance", 8), NOW_MS).rate for _ in range(20)]
    assert len(set(before)) > 1  # the generated rate moves around its level
    market.plant_carry(PlantedCarry(base="ace", venue="binance", rate=D("-0.002"), until_ms=NOW_MS + 1_000))
    planted = market.funding(inst("binance", 8), NOW_MS)
    assert (planted.rate, planted.next_funding_ms) == (D("-0.002"), (NOW_MS // (8 * HOUR_MS) + 1) * 8 * HOUR_MS)
    assert market.funding(inst("gate", 1), NOW_MS).rate != D("-0.002")  # other venues untouched
    assert market.funding(inst("binance", 8), NOW_MS + 1_000).rate != D("-0.002")  # expired
    assert market.carries == {}


def test_a_planted_settlement_time_then_every_interval() -> None:
    carry = PlantedCarry(base="ACE", venue="gate", rate=D("0.0003"), first_settlement_ms=NOW_MS + 5_000)
    assert next_settlement_ms(NOW_MS, HOUR_MS, carry) == NOW_MS + 5_000
    assert next_settlement_ms(NOW_MS + 5_000, HOUR_MS, carry) == NOW_MS + 5_000 + HOUR_MS
    assert next_settlement_ms(NOW_MS + 5_001 + HOUR_MS, HOUR_MS, carry) == NOW_MS + 5_000 + 2 * HOUR_MS
    assert next_settlement_ms(NOW_MS, HOUR_MS) == (NOW_MS // HOUR_MS + 1) * HOUR_MS
    market = Market([inst("gate", 1)], auto_dislocation_every_ms=0)
    market.plant_carry(carry)
    assert market.funding(inst("gate", 1), NOW_MS).next_funding_ms == NOW_MS + 5_000


def test_the_default_carry_takes_one_venue_per_interval_of_the_first_complete_base() -> None:
    listed = [
        inst("gate", 1, "AAA"),  # AAA has no 4 h venue
        inst("binance", 8, "AAA"),
        inst("hyperliquid", 1, "ACE", "USDC"),  # another quote group: not counted
        inst("bitget", 4, "ACE"),
        inst("mexc", 4, "ACE"),
        inst("okx", 8, "ACE"),
        inst("binance", 8, "ACE"),
        inst("paradex", 1, "ACE"),
        inst("gate", 1, "ACE"),
    ]
    carries = default_carry(listed)
    assert [(c.base, c.venue, c.rate) for c in carries] == [
        ("ACE", "gate", D("0.0003")),  # preferred over paradex (gate's frames carry the next funding time)
        ("ACE", "bitget", D("0.0008")),
        ("ACE", "binance", D("-0.002")),
    ]
    assert default_carry(listed[:2]) == []
    assert DEFAULT_RATES[1] * 8760 == D("2.628") and DEFAULT_RATES[8] * 1095 == D("-2.19")


def test_the_generated_market_has_a_planted_carry() -> None:
    market = generated_market(implemented_venues(), seed=11)
    carries = default_carry(market.instruments)
    intervals = {(i.base, i.venue): i.funding_interval_h or 0 for i in market.instruments if i.quote == "USDT"}
    assert sorted(intervals[c.base, c.venue] for c in carries) == [1, 4, 8]
    sim = Simulator(market.instruments, implemented_venues(), planted_carry=True, auto_dislocations=False)
    assert set(sim.market.carries.values()) == set(carries)
    assert Simulator(market.instruments, implemented_venues(), auto_dislocations=False).market.carries == {}


async def test_control_carry_plants_lists_and_rejects() -> None:
    port = free_port()
    sim = Simulator([inst("gate", 1), inst("binance", 8)], ["gate", "binance"], clock=lambda: NOW_MS * 1_000_000)
    runner = await serve(sim, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}/control"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/carry?venue=gate&base=ace&rate=0.0003&settle_in=5") as response:
                assert response.status == 200
            async with http.post(f"{base}/carry?venue=binance&base=ACE&rate=-0.002&seconds=60") as response:
                assert response.status == 200
            async with http.get(f"{base}/carries") as response:
                assert await response.json() == [
                    {"base": "ACE", "venue": "gate", "rate": "0.0003", "until_ms": None,
                     "first_settlement_ms": NOW_MS + 5_000},
                    {"base": "ACE", "venue": "binance", "rate": "-0.002", "until_ms": NOW_MS + 60_000,
                     "first_settlement_ms": None},
                ]  # fmt: skip
            for bad in ("rate=x", "rate=1", "rate=NaN", "rate=0.001&seconds=x"):
                async with http.post(f"{base}/carry?venue=gate&base=ACE&{bad}") as response:
                    assert response.status == 400, bad
            async with http.post(f"{base}/carry?venue=gate&rate=0.001") as response:
                assert response.status == 400  # no base
    finally:
        await runner.cleanup()
    assert sim.market.funding(inst("gate", 1), NOW_MS).rate == D("0.0003")
