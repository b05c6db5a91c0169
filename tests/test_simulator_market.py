"""The generated market: its shape (plan), the venues' spelling of it (build), and the quotes."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from ingest.simulator import universe
from ingest.simulator.base import Frame, ListingSpec, SimSession, VenueSim
from ingest.simulator.market import Market, SimFunding, SimQuote
from ingest.simulator.universe import (
    INVERSE,
    MarketPlan,
    build_market,
    generated_market,
    plan_market,
    seed_bases,
    tail_names,
)
from ingest.simulator.venues import sim_class
from ingest.venues import implemented_venues
from ingest.venues.base import canonical_base
from schemas.market import ContractKind, Instrument


@pytest.fixture(scope="module")
def plan() -> MarketPlan:
    return plan_market()


@pytest.fixture(scope="module")
def market() -> universe.GeneratedMarket:
    return generated_market(implemented_venues())


def test_seed_bases_file_holds_the_seed_list() -> None:
    bases = seed_bases()
    assert len(bases) == 130 and len(set(bases)) == 130
    assert {"BTC", "1INCH", "PEPE", "FARTCOIN", "NEIROETH", "XCN"} <= set(bases)


def test_plan_has_400_bases_each_on_two_venues_of_one_group(plan: MarketPlan) -> None:
    assert len(plan.bases) >= 400 and len(set(plan.bases)) == len(plan.bases)
    assert set(seed_bases()) <= set(plan.bases)
    venues_by_group: dict[tuple[str, str], set[str]] = defaultdict(set)
    for venue, specs in plan.specs.items():
        for spec in specs:
            venues_by_group[spec.base, spec.group].add(venue)
    for base in plan.bases:
        assert max(len(v) for (b, _g), v in venues_by_group.items() if b == base) >= 2, base


def test_plan_venue_sizes_are_realistic(plan: MarketPlan) -> None:
    main = {v: sum(1 for s in specs if s.group in ("USDT", "USDC")) for v, specs in plan.specs.items()}
    assert set(main) == set(implemented_venues())
    for venue in ("binance", "bybit", "bitget", "gate", "mexc"):
        assert main[venue] >= 400, (venue, main[venue])
    assert 200 <= main["okx"] < 300 and 250 <= main["kucoin"] < 350
    assert main["deribit"] < 20 and main["bitmex"] < 60
    assert main["hyperliquid"] == 200 and main["paradex"] == 100
    assert main["coindcx"] == 300 and 290 <= main["phemex"] < 320 and 240 <= main["coinex"] < 270


def test_plan_has_prefixes_inverse_usdc_and_all_intervals(plan: MarketPlan) -> None:
    def specs(venue: str) -> dict[tuple[str, str], ListingSpec]:
        return {(s.base, s.group): s for s in plan.specs[venue]}

    binance, hyperliquid, okx = specs("binance"), specs("hyperliquid"), specs("okx")
    assert binance["PEPE", "USDT"].multiplier == 1000 and hyperliquid["PEPE", "USDC"].multiplier == 1000
    assert okx["PEPE", "USDT"].multiplier == 1  # OKX trades it unprefixed (contract size instead)
    assert binance["BTC", "USDT"].multiplier == 1
    for venue in ("bybit", "okx", "bitmex", "deribit", "phemex"):
        assert ("BTC", INVERSE) in specs(venue), venue
    for venue in ("deribit", "hyperliquid", "paradex", "bybit"):
        assert ("BTC", "USDC") in specs(venue), venue
    assert {s.funding_interval_h for s in plan.specs["binance"]} == {1, 4, 8}
    assert {s.funding_interval_h for s in plan.specs["hyperliquid"]} == {1}
    # CoinDCX relays Binance: a subset of its bases with Binance's funding interval.
    assert all(binance[b, g].funding_interval_h == s.funding_interval_h for (b, g), s in specs("coindcx").items())
    prefixed = {s.base for specs_ in plan.specs.values() for s in specs_ if s.multiplier == 1000}
    assert {"PEPE", "SHIB", "BONK", "FLOKI", "SATS"} <= prefixed and len(prefixed) >= 20


def test_volumes_are_heavy_tailed(plan: MarketPlan) -> None:
    volumes = sorted((s.volume_24h_quote or Decimal(0) for s in plan.specs["binance"]), reverse=True)
    assert volumes[0] > 10**10 and volumes[-1] < 10**7
    top_share = sum(volumes[:10]) / sum(volumes)
    assert top_share > Decimal("0.5")  # the top 10 of 420 trade more than all the others


def test_plan_is_deterministic_per_seed(plan: MarketPlan) -> None:
    again = plan_market()
    assert again.bases == plan.bases and again.specs == plan.specs
    assert plan_market(seed=12).bases != plan.bases


def test_tail_names_are_plain_uppercase_and_never_read_as_prefixed() -> None:
    import random

    names = tail_names(2000, ["BTC"], random.Random(3))
    assert len(set(names)) == 2000 and "BTC" not in names
    for name in names:
        assert re.fullmatch(r"[A-Z]{3,7}", name), name
        assert canonical_base(name) == (name, Decimal(1))
        assert not any(bad in name for bad in ("USD", "PERP", "SWAP", "XBT"))


def test_built_market_every_base_on_two_venues(market: universe.GeneratedMarket) -> None:
    venues_of: dict[str, set[str]] = defaultdict(set)
    for inst in market.instruments:
        venues_of[inst.base].add(inst.venue)
    assert all(len(v) >= 2 for v in venues_of.values())
    assert len({i.instrument_id for i in market.instruments}) == len(market.instruments)
    assert set(market.sources) == set(implemented_venues())


def test_generated_venues_spell_the_plan(market: universe.GeneratedMarket, plan: MarketPlan) -> None:
    generated = [v for v, source in market.sources.items() if source == "generated"]
    assert "binance" in generated  # its simulator implements list_instrument
    per_venue = Counter(i.venue for i in market.instruments)
    for venue in generated:
        refused = sum(n for reason, n in market.dropped.items() if reason.startswith(f"{venue}: "))
        assert per_venue[venue] + refused >= 0.95 * len(plan.specs[venue]), venue
    by_id = {i.instrument_id: i for i in market.instruments}
    assert by_id["PEPE-USDT-PERP@binance"].native_symbol == "1000PEPEUSDT"
    assert by_id["PEPE-USDT-PERP@binance"].price_multiplier == 1000
    if market.sources["hyperliquid"] == "generated":
        assert by_id["PEPE-USDC-PERP@hyperliquid"].native_symbol == "kPEPE"
    bases = {i.base for i in market.instruments}
    if sum(1 for s in market.sources.values() if s == "generated") >= 5:
        assert len(bases) >= 400 and set(seed_bases()) <= bases


def test_a_venue_that_cannot_generate_keeps_its_bundled_listing(
    plan: MarketPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NotYet(VenueSim):
        """A venue simulator from before generated listings: list_instrument raises."""

        name = "okx"

        def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
            return []

        def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
            return []

        def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
            return []

    monkeypatch.setattr(universe, "sim_class", lambda v: NotYet if v == "okx" else sim_class(v))
    built = build_market(plan, ["binance", "okx"])
    assert built.sources == {"binance": "generated", "okx": "bundled"}
    okx = sorted(i.native_symbol for i in built.instruments if i.venue == "okx")
    assert okx == ["BTC-USD-SWAP", "BTC-USDT-SWAP", "ETH-USD-SWAP", "ETH-USDT-SWAP", "PEPE-USDT-SWAP", "SOL-USDT-SWAP"]
    # Bases only Binance lists now sit on one venue: left out and counted, never served alone.
    assert {i.base for i in built.instruments} == {"BTC", "ETH", "SOL", "PEPE"}
    assert built.dropped["bases on fewer than two venues"] >= 400


def test_restricting_bases_keeps_only_those(market: universe.GeneratedMarket) -> None:
    small = generated_market(implemented_venues(), ["btc", "ETH"])
    assert {i.base for i in small.instruments} == {"BTC", "ETH"}
    assert len(small.instruments) == sum(1 for i in market.instruments if i.base in {"BTC", "ETH"})


def _inst(venue: str, base: str, tick: str | None, multiplier: int = 1) -> Instrument:
    return Instrument(
        instrument_id=f"{base}-USDT-PERP@{venue}",
        venue=venue,
        native_symbol=f"{base}USDT",
        base=base,
        quote="USDT",
        settle="USDT",
        kind=ContractKind.LINEAR,
        price_multiplier=Decimal(multiplier),
        contract_size=Decimal(multiplier),
        tick_size=Decimal(tick) if tick else None,
    )


def test_quotes_sit_on_the_tick_grid_near_the_reference() -> None:
    btc, pepe, tail = _inst("binance", "BTC", "0.10"), _inst("binance", "PEPE", "1E-7", 1000), _inst("x", "ZORK", None)
    market = Market([btc, pepe, tail], auto_dislocation_every_ms=0, reference_prices={"ZORK": Decimal("0.04321")})
    for step in range(2000):
        for inst, ref in ((btc, Decimal(86400)), (pepe, Decimal("0.0112")), (tail, Decimal("0.04321"))):
            q = market.quote(inst, step)
            tick = inst.tick_size or Decimal("0.000001")
            assert q.bid < q.ask and q.bid % tick == 0 and q.ask % tick == 0
            assert abs(q.bid / ref - 1) < Decimal("0.02"), (inst.base, q.bid)
            assert q.bid_size > 0 and q.bid_size % inst.contract_size == 0


def test_planted_dislocation_shifts_one_venue_by_its_bps() -> None:
    a, b = _inst("binance", "ZORK", "0.0001"), _inst("okx", "ZORK", "0.0001")
    market = Market([a, b], auto_dislocation_every_ms=0, reference_prices={"ZORK": Decimal(100)})
    market.plant("zork", "okx", Decimal(80), 5_000, now_ms=0)
    market.step(1)
    qa, qb = market.quote(a, 1), market.quote(b, 1)
    gap_bps = ((qb.bid + qb.ask) / (qa.bid + qa.ask) - 1) * 10_000
    assert 76 < gap_bps < 84  # 80 bps, give or take the venues' +-1 bp bias and one walk step
    market.step(5_001)
    qa, qb = market.quote(a, 5_001), market.quote(b, 5_001)
    assert abs(((qb.bid + qb.ask) / (qa.bid + qa.ask) - 1) * 10_000) < 4


def test_auto_dislocations_hit_the_tail() -> None:
    insts = [_inst(v, f"B{n}", "0.0001") for n in range(200) for v in ("binance", "okx")]
    market = Market(insts, auto_dislocation_every_ms=1_000)
    planted = set()
    for now in range(0, 120_000, 100):
        market.step(now)
        planted |= {d.base for d in market.dislocations}
    assert len(planted) >= 60  # ~120 plantings over 200 bases: not a handful of majors
