"""Funding terminal types: settled rates (``funding-settlements``) and ranked carry pairs.

Rates are fractions per funding interval, as on ``Funding`` (0.0001 = 1 bp per interval);
APRs here are fractions a year (0.1095 = 10.95 %); the API shows them in percent, as the
seed did. Numbers are Decimal, serialised as strings on topics (decision 0003).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec


class FundingSettlement(msgspec.Struct, frozen=True, kw_only=True, tag="funding_settlement", tag_field="type"):
    """One settled funding rate of one instrument, on ``funding-settlements`` keyed by :attr:`key`.

    The settled rate is the last ``Funding.rate`` seen before the settlement time with that
    time as its ``next_funding_ts_ns`` (decision 0018). Replicas that see the same settlement
    write the same key, so compaction and the readers' upsert keep one.
    """

    instrument_id: str
    venue: str
    base: str
    rate: Decimal
    interval_h: int
    settled_ts_ns: int
    """The settlement time (the venue's next-funding time the rate was quoted for)."""
    observed_ts_ns: int
    """Receipt time of the rate used: the last one seen before ``settled_ts_ns``."""
    time_estimated: bool = False
    """The venue sent no next-funding time: settlement on the UTC grid of ``interval_h`` hours."""

    @property
    def key(self) -> str:
        return f"{self.instrument_id}|{self.settled_ts_ns}"


class FundingPairLeg(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    instrument_id: str
    rate: Decimal
    interval_h: int
    apr: Decimal
    """rate x 24 / interval_h x 365, fraction."""
    funding_per_h: Decimal
    """rate / interval_h: what one unit of notional pays (long) or earns (short) per hour."""
    next_funding_ts_ns: int
    next_funding_estimated: bool
    price: Decimal | None
    """Executable price per base unit now: the ask on the long leg, the bid on the short leg;
    None when the quote is missing or unusable (stale, one-sided, crossed)."""
    fee: Decimal
    volume_24h_quote: Decimal | None
    open_interest_quote: Decimal | None = None
    """Open interest in quote currency (``Instrument.open_interest_quote``; None: not published)."""
    avg_apr: Decimal | None = None
    """Average APR over the requested period from settled rates (None: no settlement in it)."""


class FundingPair(msgspec.Struct, frozen=True, kw_only=True):
    """Long ``long`` and short ``short``: same base, same quote group, different venues."""

    symbol: str
    long: FundingPairLeg
    short: FundingPairLeg
    apr_spread: Decimal
    """short APR - long APR (fraction a year): the carry of the pair at today's rates."""
    carry_per_h: Decimal
    """short funding per hour - long funding per hour (fraction of notional)."""
    price_spread: Decimal | None
    """Long ask - short bid per base unit (positive: entering costs that much per unit)."""
    entry_cost: Decimal | None
    """price_spread / long ask + both taker fees (fraction of notional)."""
    break_even_h: Decimal | None
    """entry_cost / carry_per_h: hours of carry that pay the entry (0 if entry is free; None if
    the carry is not positive or no executable prices)."""
    common_settlement_ts_ns: int | None
    """First time both legs settle together (None: none within the horizon)."""
    carry_to_common: Decimal | None
    """Funding collected minus paid from now to that time at today's rates (fraction of notional)."""
    avg_apr_spread: Decimal | None = None
    """short avg APR - long avg APR over the requested period."""
    avg_break_even_h: Decimal | None = None
    """entry_cost over the carry per hour implied by the averages."""


_encoder = msgspec.json.Encoder(decimal_format="string")
_settlement_decoder = msgspec.json.Decoder(FundingSettlement)


def encode(value: FundingSettlement | FundingPair) -> bytes:
    return _encoder.encode(value)


def decode_settlement(payload: bytes) -> FundingSettlement:
    settlement: FundingSettlement = _settlement_decoder.decode(payload)
    return settlement
