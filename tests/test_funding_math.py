"""Funding-carry math with hand-computed values: 1 h, 4 h and 8 h venues, missing next-funding
times, unhealthy venues, the liquidity floor, common settlements and ranking."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from api.funding_math import (
    HOUR_NS,
    Floors,
    LegInput,
    PairRules,
    apr,
    average_apr,
    candidates,
    first_common_settlement,
    grid_next,
    per_hour,
    rank,
    ranked_page,
    settlements_until,
    symbol_pairs,
)
from processors.arbitrage import ArbConfig
from processors.settings import DEFAULT_TAKER_FEES
from schemas.market import ContractKind, Funding, Health, HealthState, Quote, instrument_key

D = Decimal
S = 1_000_000_000
NOW = 1_790_000_000 * S
"""Not on any grid: the next 1 h settlement is 1_790_002_800 s, the next 4 h and 8 h 1_790_006_400 s."""
NEXT_1H, NEXT_8H = 1_790_002_800 * S, 1_790_006_400 * S
ARB = ArbConfig(taker_fees=dict(DEFAULT_TAKER_FEES), max_age_ms=3_000)


def funding(venue: str, rate: str | None, interval_h: int, next_ns: int | None, *, inst: str = "") -> Funding:
    instrument_id = inst or f"ETH-USDT-PERP@{venue}"
    key = instrument_key(instrument_id)  # the test's stand-in for the Instrument ingest copies them from
    return Funding(
        instrument_id=instrument_id,
        venue=venue,
        native_symbol="X",
        base="ETH",
        quote=key.quote,
        kind=key.kind,
        rate=D(rate) if rate is not None else None,
        interval_h=interval_h,
        next_funding_ts_ns=next_ns,
        exchange_ts_ns=NOW - S,
        receipt_ts_ns=NOW - S,
    )


def quote(venue: str, bid: str, ask: str) -> Quote:
    return Quote(
        instrument_id=f"ETH-USDT-PERP@{venue}",
        venue=venue,
        native_symbol="X",
        base="ETH",
        quote="USDT",
        kind=ContractKind.LINEAR,
        bid=D(bid),
        bid_size=D(1),
        ask=D(ask),
        ask_size=D(1),
        exchange_ts_ns=NOW,
        receipt_ts_ns=NOW,
    )


def health(venue: str, state: HealthState) -> Health:
    return Health(venue=venue, connection="main", state=state, exchange_ts_ns=NOW, receipt_ts_ns=NOW)


def legs() -> list[LegInput]:
    """Hyperliquid hourly without a next-funding time, Bybit 4-hourly, Binance 8-hourly, OKX down."""
    ok = HealthState.STREAMING
    return [
        LegInput(funding("hyperliquid", "-0.00001", 1, None), quote("hyperliquid", "1999.5", "2000"), health("x", ok)),
        LegInput(funding("bybit", "0.00018", 4, NEXT_8H), quote("bybit", "1999.8", "2000.2"), health("bybit", ok)),
        LegInput(funding("binance", "0.0001", 8, NEXT_8H), quote("binance", "2000.1", "2500"), None, D(5_000_000)),
        LegInput(
            funding("okx", "0.001", 8, NEXT_8H), quote("okx", "2000", "2001"), health("okx", HealthState.DISCONNECTED)
        ),
        LegInput(funding("bitmex", "0.002", 8, NEXT_8H, inst="ETH-USD-INV-PERP@bitmex"), None, None),
    ]


def test_apr_and_hourly_funding_by_interval() -> None:
    assert apr(D("0.0001"), 1) == D("0.876")  # 0.01 % hourly
    assert apr(D("0.0001"), 8) == D("0.1095")  # 0.01 % 8-hourly: an eighth of it
    assert apr(D("0.00018"), 4) == D("0.3942")
    assert per_hour(D("0.0001"), 8) == D("0.0000125")
    assert per_hour(D("0.00018"), 4) == D("0.000045")


def test_average_apr_weighs_each_rate_by_its_hours() -> None:
    assert average_apr([(D("0.0001"), 8), (D("0.0002"), 8), (D("0.0003"), 8)]) == D("0.219")
    # An 8 h rate then a 4 h one (an interval change): 0.00015 over 12 hours.
    assert average_apr([(D("0.0001"), 8), (D("0.00005"), 4)]) == D("0.1095")
    assert average_apr([]) is None


def test_schedules_and_common_settlements() -> None:
    assert grid_next(NOW, 1) == NEXT_1H and grid_next(NOW, 8) == NEXT_8H and grid_next(NOW, 4) == NEXT_8H
    assert grid_next(NEXT_8H, 8) == NEXT_8H + 8 * HOUR_NS  # exactly on the grid: that one has settled
    assert first_common_settlement(NEXT_1H, 1, NEXT_8H, 8) == NEXT_8H
    assert first_common_settlement(NEXT_8H, 8, NEXT_1H, 1) == NEXT_8H
    assert first_common_settlement(NEXT_8H + 4 * HOUR_NS, 8, NEXT_8H, 4) == NEXT_8H + 4 * HOUR_NS
    assert first_common_settlement(NEXT_8H, 8, NEXT_8H + HOUR_NS, 8) is None  # grids an hour apart never meet
    assert first_common_settlement(NEXT_8H + 300_000_000, 8, NEXT_8H, 8) == NEXT_8H + 300_000_000  # 0.3 s apart
    assert settlements_until(NEXT_1H, 1, NEXT_8H) == 2
    assert settlements_until(NEXT_8H, 8, NEXT_1H) == 0


def test_pairs_mix_1h_4h_8h_venues_with_exact_costs_and_break_even() -> None:
    pairs = rank(symbol_pairs("ETH", legs(), NOW, PairRules(ARB)))
    order = [(p.long.venue, p.short.venue) for p in pairs]
    # OKX is disconnected and BitMEX inverse: neither forms a pair. Only positive carries are listed.
    assert order == [("hyperliquid", "bybit"), ("binance", "bybit"), ("hyperliquid", "binance")]
    best = pairs[0]
    assert (best.long.apr, best.short.apr, best.apr_spread) == (D("-0.0876"), D("0.3942"), D("0.4818"))
    assert (best.long.funding_per_h, best.short.funding_per_h, best.carry_per_h) == (
        D("-0.00001"),
        D("0.000045"),
        D("0.000055"),
    )
    assert (best.long.price, best.short.price, best.price_spread) == (D("2000"), D("1999.8"), D("0.2"))
    assert best.entry_cost == D("0.0011")  # 0.2 / 2000 + 0.00045 + 0.00055
    assert best.break_even_h == D("20")
    # Hyperliquid sent no next-funding time: the hourly UTC grid. Both settle at NEXT_8H first.
    assert (best.long.next_funding_ts_ns, best.long.next_funding_estimated) == (NEXT_1H, True)
    assert best.common_settlement_ts_ns == NEXT_8H
    assert best.carry_to_common == D("0.0002")  # 0.00018 once on bybit + 0.00001 twice on hyperliquid
    third = pairs[2]
    assert (third.apr_spread, third.price_spread, third.entry_cost) == (D("0.1971"), D("-0.1"), D("0.0009"))
    assert third.break_even_h == D("40")  # a negative price spread pays part of the fees
    assert third.carry_to_common == D("0.00012")
    wide = pairs[1]
    assert (wide.apr_spread, wide.entry_cost) == (D("0.2847"), D("0.20113"))  # 500.2 / 2500 + 0.0005 + 0.00055


def test_stale_funding_stale_quote_and_liquidity_floor() -> None:
    later = NOW + 181 * S  # every funding rate is now older than the worker's 180 s
    assert symbol_pairs("ETH", legs(), later, PairRules(ARB)) == []
    fresh_quotes_only = PairRules(ARB, max_funding_age_ms=600_000)
    pairs = symbol_pairs("ETH", legs(), later, fresh_quotes_only)
    assert len(pairs) == 3 and all(p.entry_cost is None and p.break_even_h is None for p in pairs)
    # Only binance has a known 24 h volume: a floor leaves nothing to pair it with.
    assert symbol_pairs("ETH", legs(), NOW, PairRules(ARB, min_volume_24h=D(1_000_000))) == []


def test_open_interest_floor_keeps_known_deep_legs_only() -> None:
    depths = (D(9), D(10), None, D(10), D(10))
    deep = [replace(leg, open_interest_quote=oi) for leg, oi in zip(legs(), depths, strict=True)]
    # hyperliquid (9) is under the floor, binance publishes none: bybit is left with no partner but okx (down).
    assert symbol_pairs("ETH", deep, NOW, PairRules(ARB, min_open_interest=D(10))) == []
    kept = symbol_pairs("ETH", deep, NOW, PairRules(ARB, min_open_interest=D(9)))
    assert [(p.long.venue, p.short.venue, p.long.open_interest_quote) for p in kept] == [("hyperliquid", "bybit", D(9))]
    assert [Floors(open_interest=D(10)).admit(D(5), v) for v in (None, D(9), D(10))] == [False, False, True]
    assert Floors().admit(None, None) and not Floors(volume_24h=D(1)).admit(None, D(10))


def test_missing_rate_and_averages_rank_on_the_period() -> None:
    with_avgs = [
        LegInput(funding("bybit", "0.00018", 4, NEXT_8H), None, None, avg_apr=D("0.05")),
        LegInput(funding("binance", "0.0001", 8, NEXT_8H), None, None, avg_apr=D("0.20")),
        LegInput(funding("gate", None, 8, NEXT_8H), None, None),
    ]
    (pair,) = symbol_pairs("ETH", with_avgs, NOW, PairRules(ARB))
    assert (pair.long.venue, pair.short.venue, pair.apr_spread) == ("binance", "bybit", D("0.2847"))
    assert pair.avg_apr_spread == D("-0.15")  # on the averages the carry ran the other way
    assert pair.avg_break_even_h is None and rank([pair], use_average=True) == [pair]


def test_a_page_is_the_full_ranking_sliced_ties_decided_by_break_even() -> None:
    # Bybit and OKX both pay 0.0003 every 8 h: longing binance against either ties on the spread;
    # the cheaper entry (okx's higher bid) must rank first, on every page size.
    ok = health("x", HealthState.STREAMING)
    tied = [
        LegInput(funding("binance", "0.0001", 8, NEXT_8H), quote("binance", "1999.9", "2000"), ok),
        LegInput(funding("bybit", "0.0003", 8, NEXT_8H), quote("bybit", "1999", "2001"), ok),
        LegInput(funding("okx", "0.0003", 8, NEXT_8H), quote("okx", "2000", "2001"), ok),
        LegInput(funding("gate", "0.0002", 8, NEXT_8H), quote("gate", "1999", "2001"), ok),
    ]
    rules = PairRules(ARB)
    full = rank(symbol_pairs("ETH", tied, NOW, rules))
    assert [(p.long.venue, p.short.venue) for p in full[:2]] == [("binance", "okx"), ("binance", "bybit")]
    found = candidates("ETH", tied, NOW, rules)
    for size in (1, 2, 3):
        pages = [ranked_page(found, start, start + size, NOW, ARB) for start in range(0, len(full), size)]
        assert [p for page in pages for p in page] == full
    assert ranked_page(found, 10, 20, NOW, ARB) == []
