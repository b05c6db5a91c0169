"""Small helpers the venue simulators share to build generated REST listings.

A generated listing needs numbers a venue would plausibly publish (tick sizes,
contract sizes, a price for informational fields) from a reference price, all
exactly in Decimal so ``parse_instruments(listing(x)) == x`` holds.
"""

from __future__ import annotations

import time
from decimal import Decimal

import msgspec

from ingest.venues.base import canonical_base, open_interest_notional
from schemas.market import Instrument

HOUR_MS = 3_600_000


def tick_for(price: Decimal, significant: int = 6) -> Decimal:
    """A power-of-ten tick that quotes ``price`` to about ``significant`` digits (86412 -> 0.1)."""
    return Decimal(1).scaleb(price.adjusted() - significant + 1)


def nominal_price(tick: Decimal | None, significant: int = 6) -> Decimal:
    """A price consistent with ``tick`` (inverse of :func:`tick_for`), for informational fields."""
    if tick is None:
        return Decimal(1)
    return number(Decimal(3) * tick.scaleb(significant - 1))


def plain(value: Decimal) -> str:
    """Decimal as venue text without an exponent: 1E-7 -> "0.0000001", 1E+2 -> "100"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def number(value: Decimal) -> Decimal:
    """Decimal that JSON-encodes as a plain number (no exponent), as venues send them."""
    return Decimal(plain(value))


def prefixed(base: str, multiplier: int, *, prefix_k: bool = False) -> str | None:
    """The venue asset name for ``multiplier`` base units (``1000PEPE``, ``kPEPE``), or None when
    :func:`canonical_base` would not read it back as (base, multiplier)."""
    if multiplier == 1:
        name = base
    elif prefix_k and multiplier == 1000:
        name = f"k{base}"
    else:
        name = f"{multiplier}{base}"
    return name if canonical_base(name) == (base, Decimal(multiplier)) else None


def next_funding_ms(interval_h: int | None, now_ms: int | None = None) -> int:
    """Next funding time on an epoch-aligned ``interval_h`` grid (00:00, 08:00, 16:00 UTC for 8 h)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    step = (interval_h or 8) * HOUR_MS
    return (now // step + 1) * step


def with_funding_limits(inst: Instrument, cap: Decimal) -> Instrument:
    """The instrument with the symmetric funding-rate bounds its generated listing publishes."""
    return msgspec.structs.replace(inst, funding_cap=cap, funding_floor=-cap)


def funding_limits(inst: Instrument, default: Decimal) -> tuple[Decimal, Decimal]:
    """(cap, floor) a listing row publishes for ``inst``: its own, else the venue's default bound."""
    cap = inst.funding_cap if inst.funding_cap is not None else default
    return cap, inst.funding_floor if inst.funding_floor is not None else -cap


def open_contracts(inst: Instrument, price: Decimal) -> Decimal:
    """Whole contracts open on a generated instrument: about a quarter of its day's volume (at
    least one), in the venue's size unit, at ``price`` (the venue's quoted price of its ticker row)."""
    per_contract = open_interest_notional(inst, Decimal(1), price)
    assert per_contract is not None and per_contract > 0
    return Decimal(max(1, int((inst.volume_24h_quote or Decimal(0)) / 4 / per_contract)))


def with_open_interest(inst: Instrument, price: Decimal) -> Instrument:
    """``inst`` with the open interest its generated ticker row publishes: :func:`open_contracts`
    valued as ingest values them. Unchanged without a volume (the simulators list no ticker row)."""
    if inst.volume_24h_quote is None:
        return inst
    value = open_interest_notional(inst, open_contracts(inst, price), price)
    return msgspec.structs.replace(inst, open_interest_quote=value)


def open_units(inst: Instrument, price: Decimal) -> Decimal:
    """For venues that state open interest as a quantity of the named asset (``1000BONK`` units)
    priced at ``price`` each: whole units worth about a quarter of the day's volume (at least one)."""
    return Decimal(max(1, int((inst.volume_24h_quote or Decimal(0)) / 4 / price)))


def with_unit_open_interest(inst: Instrument, price: Decimal) -> Instrument:
    """``inst`` with the open interest :func:`open_units` x ``price`` (unchanged without a volume)."""
    if inst.volume_24h_quote is None:
        return inst
    return msgspec.structs.replace(inst, open_interest_quote=open_units(inst, price) * price)
