"""The simulator's generated market: ~480 bases across the 14 venues, deterministic per seed.

The plan (:func:`plan_market`) is pure: which venue lists which base in which quote group, with
which multiplier, funding interval and 24 h volume, as :class:`ListingSpec` values. The venue
simulators then turn each spec into the contract the real venue would list
(:meth:`VenueSim.list_instrument`: native spelling, contract size, tick) in :func:`build_market`.
A venue whose simulator cannot generate listings yet keeps its bundled listing, so the market
works at every stage of the venue modules.

Shape, modelled on the venues' real product ranges (late 2026): Binance, Bybit, Bitget, Gate and
MEXC list most bases; OKX and KuCoin fewer; Deribit and BitMEX a few; Hyperliquid ~200 (USDC,
``k``-prefixed small coins), Paradex ~100 (USDC), CoinDCX ~300 (a subset of Binance's, whose
funding it relays), Phemex ~300, CoinEx ~250. Coins priced under :data:`PREFIX_BELOW` trade as
1000-prefixed contracts where the venue does that. Majors also trade USD-inverse and USDC-margined.
Volumes are heavy-tailed (Zipf in the base's rank), which also drives the update rates.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from ingest.instruments import load_venue_instruments
from ingest.simulator.base import ListingSpec
from ingest.simulator.venues import sim_class
from schemas.market import Instrument

SEED_BASES_FILE = Path(__file__).with_name("seed_bases.txt")
SEED_LISTINGS_FILE = Path(__file__).with_name("seed_listings.txt")
DEFAULT_SEED = 11
DEFAULT_BASES = 480
PREFIX_BELOW = Decimal("0.001")
"""Coins cheaper than this trade as ``1000X`` (``kX`` on Hyperliquid/Paradex) where venues do so."""
INVERSE = "USD-inverse"

# Reference prices of the best-known bases (USD per base unit, late 2026 orders of magnitude);
# their order is their rank. Every other base gets a generated price.
MAJORS: dict[str, Decimal] = {
    name: Decimal(price)
    for name, price in (
        ("BTC", "86400"), ("ETH", "3200"), ("SOL", "180"), ("XRP", "2.14"), ("BNB", "690"),
        ("DOGE", "0.172"), ("SUI", "3.42"), ("ADA", "0.652"), ("LINK", "14.52"), ("AVAX", "24.1"),
        ("PEPE", "0.0000112"), ("TRX", "0.251"), ("LTC", "98.4"), ("TON", "3.12"), ("HYPE", "27.9"),
        ("WIF", "0.853"), ("BCH", "421.5"), ("DOT", "4.21"), ("SHIB", "0.0000125"), ("NEAR", "2.61"),
        ("UNI", "8.13"), ("APT", "5.12"), ("ARB", "0.362"), ("OP", "0.721"), ("ENA", "0.412"),
        ("BONK", "0.0000215"), ("FLOKI", "0.0000845"), ("ETC", "18.52"), ("FIL", "2.91"), ("XLM", "0.273"),
        ("HBAR", "0.181"), ("ICP", "5.23"), ("AAVE", "182.4"), ("TIA", "2.43"), ("SEI", "0.221"),
        ("INJ", "12.31"), ("ONDO", "0.913"), ("WLD", "1.182"), ("FARTCOIN", "0.774"), ("TAO", "412.3"),
        ("SATS", "0.0000001142"), ("PENGU", "0.0102"), ("ATOM", "4.52"), ("XMR", "331.2"), ("CRV", "0.612"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class VenueProfile:
    """How much of the market a venue lists, and how."""

    name: str
    bases: int
    """Bases listed in the venue's main quote group."""
    group: str = "USDT"
    inverse: int = 0
    """Top bases also listed USD-inverse."""
    usdc: int = 0
    """Top bases also listed USDC-margined (for USDT venues)."""
    prefix: bool = False
    """Lists coins under PREFIX_BELOW as 1000-prefixed (or k-prefixed) contracts."""
    funding: tuple[tuple[int, float], ...] = ((8, 1.0),)
    """(interval hours, share) of its alts; the top 20 bases are 8 h except on hourly venues."""
    share: float = 0.05
    """Share of the market's volume (scales 24 h volumes and hence update rates)."""


PROFILES: tuple[VenueProfile, ...] = (
    VenueProfile("binance", 420, prefix=True, funding=((8, 0.72), (4, 0.23), (1, 0.05)), share=0.30),
    VenueProfile("bybit", 430, inverse=8, usdc=10, prefix=True, funding=((8, 0.6), (4, 0.35), (1, 0.05)), share=0.16),
    VenueProfile("okx", 230, inverse=10, usdc=6, funding=((8, 0.9), (4, 0.1)), share=0.10),
    VenueProfile("kucoin", 300, inverse=3, funding=((8, 0.6), (4, 0.4)), share=0.04),
    VenueProfile("deribit", 12, group="USDC", inverse=2, share=0.02),
    VenueProfile("bitmex", 45, inverse=12, share=0.02),
    VenueProfile("gate", 440, inverse=1, funding=((8, 0.55), (4, 0.4), (1, 0.05)), share=0.07),
    VenueProfile("mexc", 450, inverse=2, funding=((8, 0.7), (4, 0.3)), share=0.08),
    VenueProfile("bitget", 420, inverse=6, usdc=8, prefix=True, funding=((8, 0.6), (4, 0.35), (1, 0.05)), share=0.08),
    VenueProfile("phemex", 300, inverse=6, prefix=True, funding=((8, 0.75), (4, 0.2), (1, 0.05)), share=0.02),
    VenueProfile("coindcx", 300, prefix=True, share=0.01),
    VenueProfile("hyperliquid", 200, group="USDC", prefix=True, funding=((1, 1.0),), share=0.06),
    VenueProfile("paradex", 100, group="USDC", prefix=True, share=0.01),
    VenueProfile("coinex", 250, inverse=4, funding=((8, 0.8), (4, 0.15), (1, 0.05)), share=0.01),
)
RELAYS = {"coindcx": "binance"}
"""CoinDCX lists a subset of Binance's perpetuals and relays Binance's funding (rate and interval)."""
BROADEST = ("mexc", "gate", "bybit")
"""Where a base listed on fewer than two venues of a group is added (they list almost everything)."""

_ONSETS = [
    "B", "BL", "BR", "C", "CR", "D", "DR", "F", "FL", "G", "GL", "GR", "H", "J", "K", "KR", "L",
    "M", "N", "P", "PL", "PR", "Q", "R", "S", "SK", "SN", "ST", "T", "TR", "V", "W", "X", "Z",
]  # fmt: skip
_VOWELS = ["A", "E", "I", "O", "U", "Y", "AI", "EO", "IA", "OU"]
_CODAS = ["", "", "", "N", "X", "R", "K", "S", "T", "M", "L", "Z"]
_FORBIDDEN = ("USD", "PERP", "SWAP", "XBT")
"""Fragments venue symbol grammars use (``BTCUSD``, ``BTCPERP``, ``-SWAP``, XBT=BTC): a tail name
containing one could be read back as another base."""


@dataclass
class MarketPlan:
    """The generated market before the venue simulators spell it: specs per venue."""

    seed: int
    bases: list[str]
    """Every base, most popular first (its index is its rank)."""
    reference_prices: dict[str, Decimal]
    specs: dict[str, list[ListingSpec]] = field(default_factory=dict)

    def venues_of(self, base: str, group: str | None = None) -> set[str]:
        return {v for v, specs in self.specs.items() for s in specs if s.base == base and group in (None, s.group)}


@dataclass
class GeneratedMarket:
    """What the simulator serves: instruments, their prices, volumes and where they came from."""

    instruments: list[Instrument]
    reference_prices: dict[str, Decimal]
    volumes: dict[str, Decimal]
    """24 h quote volume per instrument id (the spec's, whether or not the venue's listing carries it)."""
    sources: dict[str, str]
    """Per venue: ``generated`` or ``bundled`` (its simulator cannot generate listings yet)."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Counts of what the build left out and why (specs a venue refused, bases left on one venue)."""


def seed_bases() -> list[str]:
    lines = SEED_BASES_FILE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def tail_names(count: int, taken: Iterable[str], rng: random.Random) -> list[str]:
    """``count`` pronounceable uppercase tickers (3-7 letters) distinct from ``taken``.

    Letters only, so no multiplier prefix rule (``1000``, ``1M``, ``k``) can apply to them.
    """
    seen = set(taken)
    names: list[str] = []
    while len(names) < count:
        syllables = rng.choice((1, 2, 2, 2, 3))
        name = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(_CODAS)
        if 3 <= len(name) <= 7 and name not in seen and not any(bad in name for bad in _FORBIDDEN):
            seen.add(name)
            names.append(name)
    return names


def _tail_price(rng: random.Random) -> Decimal:
    """Heavy toward small prices, as the tail is: 8 % under PREFIX_BELOW, most between 0.01 and 5."""
    exponent = rng.uniform(-7.5, -3.2) if rng.random() < 0.08 else rng.uniform(-2.3, 1.8)
    return Decimal(f"{10**exponent:.4g}")


def _order_bases(count: int, rng: random.Random) -> tuple[list[str], dict[str, Decimal]]:
    """Majors first (fixed order), then the seed's other bases and generated tail names, shuffled."""
    majors = list(MAJORS)
    seeds = [b for b in seed_bases() if b not in MAJORS]
    tail = tail_names(max(0, count - len(majors) - len(seeds)), majors + seeds, rng)
    rest = seeds + tail
    rng.shuffle(rest)
    # Seed bases are listed widely in reality: pull them towards the front of the tail.
    rest.sort(key=lambda b: (b not in seeds) * rng.uniform(0.3, 1.0) + rng.uniform(0, 0.5))
    bases = majors + rest
    prices = dict(MAJORS) | {b: _tail_price(rng) for b in rest}
    return bases, prices


def _interval(profile: VenueProfile, rank: int, rng: random.Random) -> int:
    if len(profile.funding) == 1:
        return profile.funding[0][0]
    if rank < 20:
        return 8
    hours, shares = zip(*profile.funding, strict=True)
    return int(rng.choices(hours, weights=shares)[0])


def _volume(rank: int, profile: VenueProfile, rng: random.Random) -> Decimal:
    """Zipf in the base's rank with log-normal noise: BTC ~10^10 USD/day on Binance, tail ~10^4."""
    usd = 3.0e10 * profile.share / 0.3 * (rank + 1) ** -1.6 * rng.lognormvariate(0, 0.5)
    return Decimal(max(1000, int(usd)))


def _pick(profile: VenueProfile, pool: list[str], rank: dict[str, int], rng: random.Random) -> list[str]:
    """The venue's ``profile.bases`` picks, by rank with noise (a venue lists its own mix of the tail)."""
    if profile.bases >= len(pool):
        return list(pool)
    scored = sorted(pool, key=lambda b: (rank[b] + 1) * rng.lognormvariate(0, 0.8))
    return scored[: profile.bases]


def plan_market(seed: int = DEFAULT_SEED, n_bases: int = DEFAULT_BASES) -> MarketPlan:
    """Which venue lists what. Pure and deterministic: the same seed gives the same market."""
    rng = random.Random(seed)
    bases, prices = _order_bases(n_bases, rng)
    rank = {b: i for i, b in enumerate(bases)}
    plan = MarketPlan(seed, bases, prices)
    chosen: dict[str, list[str]] = {}
    for profile in PROFILES:
        relay = RELAYS.get(profile.name)
        pool = chosen[relay] if relay else bases
        chosen[profile.name] = sorted(_pick(profile, pool, rank, rng), key=rank.__getitem__)
    _ensure_seed_listings(chosen, set(bases))
    _ensure_two_venues(chosen, bases)
    intervals: dict[tuple[str, str], int] = {}
    for profile in PROFILES:
        specs: list[ListingSpec] = []
        for base in chosen[profile.name]:
            relay = RELAYS.get(profile.name)
            hours = intervals[relay, base] if relay else _interval(profile, rank[base], rng)
            intervals[profile.name, base] = hours
            specs.append(_spec(base, profile.group, profile, prices[base], hours, _volume(rank[base], profile, rng)))
        for group, top in ((INVERSE, profile.inverse), ("USDC", profile.usdc)):
            for base in bases[:top]:
                specs.append(_spec(base, group, profile, prices[base], 8, _volume(rank[base] + 3, profile, rng)))
        plan.specs[profile.name] = specs
    return plan


def _spec(base: str, group: str, profile: VenueProfile, price: Decimal, hours: int, volume: Decimal) -> ListingSpec:
    multiplier = 1000 if profile.prefix and group != INVERSE and price < PREFIX_BELOW else 1
    return ListingSpec(base, group, multiplier, hours, price, volume)


def seed_listings() -> list[tuple[str, str]]:
    """(venue, base) of every line of the seed's symbol file."""
    lines = SEED_LISTINGS_FILE.read_text().splitlines()
    pairs = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    return [(venue, base) for venue, base in pairs]


def _ensure_seed_listings(chosen: dict[str, list[str]], bases: set[str]) -> None:
    """Every venue lists the bases the seed's file tracked on it (where the plan has the base)."""
    for venue, base in seed_listings():
        if venue in chosen and base in bases and base not in chosen[venue]:
            chosen[venue].append(base)


def _ensure_two_venues(chosen: dict[str, list[str]], bases: list[str]) -> None:
    """Every base on at least two venues of one quote group, so it can be arbitraged at all."""
    groups = {p.name: p.group for p in PROFILES}
    for base in bases:
        usdt = [v for v, listed in chosen.items() if base in listed and groups[v] == "USDT"]
        for venue in BROADEST:
            if len(usdt) >= 2:
                break
            if venue not in usdt:
                chosen[venue].append(base)
                usdt.append(venue)


def build_market(plan: MarketPlan, venues: Iterable[str]) -> GeneratedMarket:
    """Ask each venue simulator to spell the plan's specs; bundled listings where it cannot yet."""
    instruments: list[Instrument] = []
    volumes: dict[str, Decimal] = {}
    sources: dict[str, str] = {}
    dropped: dict[str, int] = defaultdict(int)
    for venue in venues:
        generated = _generate(venue, plan.specs.get(venue, []), volumes, dropped)
        if generated is None:
            sources[venue] = "bundled"
            generated = load_venue_instruments(venue)
        else:
            sources[venue] = "generated"
        instruments += generated
    kept = _on_two_venues(instruments, dropped)
    prices = {b: plan.reference_prices.get(b, Decimal(10)) for b in {i.base for i in kept}}
    return GeneratedMarket(kept, prices, volumes, sources, dict(dropped))


def _generate(
    venue: str, specs: list[ListingSpec], volumes: dict[str, Decimal], dropped: dict[str, int]
) -> list[Instrument] | None:
    """The venue's contracts for ``specs``; None when its simulator cannot generate listings."""
    cls = sim_class(venue)
    out: list[Instrument] = []
    seen: set[str] = set()
    try:
        for spec in specs:
            inst = cls.list_instrument(spec)
            if inst is None and spec.multiplier != 1:
                # The venue trades this coin unprefixed (OKX, Gate: contract size instead).
                inst = cls.list_instrument(_with_multiplier(spec, 1))
            if inst is None or inst.instrument_id in seen:
                dropped[f"{venue}: not offered ({spec.group})"] += 1
                continue
            seen.add(inst.instrument_id)
            volumes[inst.instrument_id] = spec.volume_24h_quote or Decimal(0)
            out.append(inst)
    except NotImplementedError:
        return None
    return out


def _with_multiplier(spec: ListingSpec, multiplier: int) -> ListingSpec:
    return ListingSpec(
        spec.base, spec.group, multiplier, spec.funding_interval_h, spec.reference_price, spec.volume_24h_quote
    )


def _on_two_venues(instruments: list[Instrument], dropped: dict[str, int]) -> list[Instrument]:
    venues: dict[str, set[str]] = defaultdict(set)
    for inst in instruments:
        venues[inst.base].add(inst.venue)
    lonely = {base for base, listed in venues.items() if len(listed) < 2}
    if lonely:
        dropped["bases on fewer than two venues"] += len(lonely)
    return [i for i in instruments if i.base not in lonely]


def generated_market(
    venues: Iterable[str], bases: Iterable[str] | None = None, seed: int = DEFAULT_SEED
) -> GeneratedMarket:
    """The market ``arbstream simulate`` serves, optionally restricted to ``bases`` (``BTC,ETH``)."""
    return restrict(build_market(plan_market(seed), venues), bases)


def restrict(market: GeneratedMarket, bases: Iterable[str] | None) -> GeneratedMarket:
    """The part of ``market`` on ``bases`` (all of it for None)."""
    if bases is None:
        return market
    wanted = {b.upper() for b in bases}
    instruments = [i for i in market.instruments if i.base in wanted]
    return GeneratedMarket(instruments, market.reference_prices, market.volumes, market.sources, market.dropped)


def update_weights(market: GeneratedMarket) -> dict[str, float]:
    """Relative update rate per instrument: volume^0.5 (a float: it paces frames, never a price)."""
    volumes = market.volumes
    return {i.instrument_id: math.pow(float(volumes.get(i.instrument_id, 0)) + 1e4, 0.5) for i in market.instruments}
