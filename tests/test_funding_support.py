"""A funding scenario with hand-computed answers, shared by the funding API tests (no tests here).

ETH (USDT-linear): Hyperliquid hourly without a next-funding time, Bybit 4-hourly, Binance
8-hourly with a wide book, OKX 8-hourly on a disconnected venue; BTC on Binance and Bybit
without any history. History: one day of settlements on each ETH venue (Binance also one
older). Times are relative to the wall clock: the API's views use it.
"""

from __future__ import annotations

from decimal import Decimal

from api.funding_math import HOUR_NS, grid_next
from api.readmodel import Changes, ReadModel
from api.universe import Universe
from schemas.arbitrage import FundingEpisodeClosed, FundingLeg, FundingOpportunity, SymbolState
from schemas.funding import FundingSettlement
from schemas.market import ContractKind, Funding, Health, HealthState, Instrument, Quote, instrument_key

D = Decimal
S = 1_000_000_000


def funding(inst: str, rate: str, interval_h: int, next_ns: int | None, at: int) -> Funding:
    key = instrument_key(inst)  # the test's stand-in for the Instrument ingest copies the fields from
    return Funding(
        instrument_id=inst,
        venue=key.venue,
        native_symbol="X",
        base=key.base,
        quote=key.quote,
        kind=key.kind,
        rate=D(rate),
        interval_h=interval_h,
        next_funding_ts_ns=next_ns,
        exchange_ts_ns=at,
        receipt_ts_ns=at,
    )


def quote(inst: str, bid: str, ask: str, at: int) -> Quote:
    key = instrument_key(inst)
    return Quote(
        instrument_id=inst,
        venue=key.venue,
        native_symbol="X",
        base=key.base,
        quote=key.quote,
        kind=key.kind,
        bid=D(bid),
        bid_size=D(3),
        ask=D(ask),
        ask_size=D(3),
        exchange_ts_ns=at,
        receipt_ts_ns=at,
    )


def instrument(inst: str, volume: str | None, open_interest: str | None = None) -> Instrument:
    venue, base = inst.split("@")[1], inst.split("-")[0]
    return Instrument(
        instrument_id=inst,
        venue=venue,
        native_symbol="X",
        base=base,
        quote="USDT",
        settle="USDT",
        kind=ContractKind.LINEAR,
        volume_24h_quote=D(volume) if volume is not None else None,
        open_interest_quote=D(open_interest) if open_interest is not None else None,
    )


HL, BY, BN, OK = (f"ETH-USDT-PERP@{v}" for v in ("hyperliquid", "bybit", "binance", "okx"))
VOLUMES = {
    HL: "50000000",
    BY: "20000000",
    BN: "5000000",
    OK: None,
    "BTC-USDT-PERP@binance": "900000000",
    "BTC-USDT-PERP@bybit": None,
}
"""The universe of funding_model: every instrument it has funding for (the API shows only tracked ones)."""
OPEN_INTEREST = {HL: "12000000", BY: "30000000", OK: "8000000"}
"""Binance publishes no open interest in its all-symbol ticker: none here either."""


def funding_model(now: int) -> ReadModel:
    model, changes = ReadModel(), Changes()
    for venue in ("hyperliquid", "bybit", "binance"):
        model.apply_health(
            Health(venue=venue, connection="main", state=HealthState.STREAMING, exchange_ts_ns=now, receipt_ts_ns=now),
            changes,
        )
    model.apply_health(
        Health(venue="okx", connection="main", state=HealthState.DISCONNECTED, exchange_ts_ns=now, receipt_ts_ns=now),
        changes,
    )
    at = now - 2 * S
    eth = SymbolState(
        funding={
            HL: funding(HL, "-0.00001", 1, None, at),
            BY: funding(BY, "0.00018", 4, grid_next(now, 4), at),
            BN: funding(BN, "0.0001", 8, grid_next(now, 8), at),
            OK: funding(OK, "0.001", 8, grid_next(now, 8), at),
        },
        quotes={
            HL: quote(HL, "1999.5", "2000", at),
            BY: quote(BY, "1999.8", "2000.2", at),
            BN: quote(BN, "2000.1", "2500", at),
            OK: quote(OK, "2000", "2001", at),
        },
    )
    btc_bn, btc_by = "BTC-USDT-PERP@binance", "BTC-USDT-PERP@bybit"
    btc = SymbolState(
        funding={
            btc_bn: funding(btc_bn, "0.0001", 8, grid_next(now, 8), at),
            btc_by: funding(btc_by, "0.0001", 8, grid_next(now, 8), at),
        }
    )
    model.apply_state("ETH", eth, changes)
    model.apply_state("BTC", btc, changes)
    model.mark_complete()
    return model


def funding_universe() -> Universe:
    return Universe(instruments=[instrument(i, v, OPEN_INTEREST.get(i)) for i, v in VOLUMES.items()])


def settled(inst: str, rate: str, interval_h: int, at: int) -> FundingSettlement:
    return FundingSettlement(
        instrument_id=inst,
        venue=inst.split("@")[1],
        base=inst.split("-")[0],
        rate=D(rate),
        interval_h=interval_h,
        settled_ts_ns=at,
        observed_ts_ns=at - S,
    )


def funding_history(now: int) -> list[FundingSettlement]:
    """Within the last day: Binance 0.0001/0.0002/0.0003 (1d APR 21.9 %), Bybit six times 0.00005
    (10.95 %), Hyperliquid 24 times -0.00001 (-8.76 %); Binance 0.0009 25 h ago (3d: 41.0625 %)."""
    rows = [
        settled(BN, r, 8, now - HOUR_NS - k * 8 * HOUR_NS)
        for k, r in enumerate(("0.0001", "0.0002", "0.0003", "0.0009"))
    ]
    rows += [settled(BY, "0.00005", 4, now - HOUR_NS - k * 4 * HOUR_NS) for k in range(6)]
    rows += [settled(HL, "-0.00001", 1, now - HOUR_NS // 2 - k * HOUR_NS) for k in range(24)]
    return rows


def funding_alert(symbol: str, detected_ms: int) -> FundingOpportunity:
    """A worker alert: long Hyperliquid at -8.76 %, short Bybit at 39.42 % (48.18 % apart); entry at
    2000 on both legs (cost: the fees, 0.1 %), net 43 % a year (the worker's figures, as recorded)."""

    def leg(venue: str, rate: str, interval_h: int, apr: str) -> FundingLeg:
        inst = f"{symbol}-USDT-PERP@{venue}"
        at = detected_ms * 1_000_000
        return FundingLeg(
            venue=venue,
            instrument_id=inst,
            rate=D(rate),
            interval_h=interval_h,
            apr=D(apr),
            next_funding_ts_ns=None,
            age_ms=0,
            exchange_ts_ns=at,
            receipt_ts_ns=at,
            price=D(2000),
            fee=D("0.0005"),
        )

    at = detected_ms * 1_000_000
    return FundingOpportunity(
        event_id=f"{symbol}:funding:hyperliquid/bybit:{at}",
        symbol=symbol,
        long=leg("hyperliquid", "-0.00001", 1, "-0.0876"),
        short=leg("bybit", "0.00018", 4, "0.3942"),
        spread_apr=D("0.4818"),
        exchange_ts_ns=at,
        receipt_ts_ns=at,
        detected_ts_ns=at,
        entry_cost=D("0.001"),
        priced=True,
        net_apr=D("0.43"),
        episode_start_ts_ns=at,
    )


def funding_closed(symbol: str, start_ms: int, end_ms: int) -> FundingEpisodeClosed:
    """The end of :func:`funding_alert`'s episode: Bybit's rate went stale."""
    return FundingEpisodeClosed(
        event_id=f"{symbol}:funding:hyperliquid/bybit:{start_ms * 1_000_000}",
        symbol=symbol,
        long_venue="hyperliquid",
        short_venue="bybit",
        long_instrument_id=f"{symbol}-USDT-PERP@hyperliquid",
        short_instrument_id=f"{symbol}-USDT-PERP@bybit",
        start_ts_ns=start_ms * 1_000_000,
        end_ts_ns=end_ms * 1_000_000,
        duration_ms=end_ms - start_ms,
        peak_net_apr=D("0.43"),
        last_net_apr=D("0.43"),
        evaluations=1,
        close_reason="stale funding rate",
        alerted=True,
        exchange_ts_ns=start_ms * 1_000_000,
        receipt_ts_ns=start_ms * 1_000_000,
    )
