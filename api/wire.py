"""How the API's numbers go on the wire: JSON numbers carrying the Decimal's own digits.

The seed's clients call ``.toFixed()`` on prices and profits, so REST and WebSocket
answers carry JSON *numbers* (decision 0020), while Kafka topics keep decimal
strings (decision 0003). A Decimal is written as a number literal from its own
text (msgspec ``decimal_format="number"``), never through a binary float: the
server never rounds ``86412.30`` to the nearest double; the client's parser does,
if it parses into doubles.

A value computed by a division carries 28 significant digits; each field family
is rounded to a precision no client needs more of (``Num``, ``Pct``). Values with
fewer digits (every price and size as the venue sent it) go out untouched.

pydantic cannot write a Decimal as a JSON number, so responses are dumped to
Python objects (Decimals kept) and encoded here; routes return :func:`wire`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Annotated, Any

import msgspec
from fastapi import Response
from pydantic import BaseModel, PlainSerializer, WithJsonSchema

NUM_PLACES = 12
"""Prices, sizes, money and fractions: at most 12 decimal places (a 28-digit quotient of an
inverse contract's size is rounded; a PEPE price of 0.00001234 keeps every digit)."""
PCT_PLACES = 6
"""Percentages: 0.000001 % is a millionth of a basis point, far below any fee."""

_CONTEXT = Context(prec=60)
"""Wide enough that quantising a large value to 12 places never overflows the precision."""


def capped(places: int) -> Callable[[Decimal], Decimal]:
    """Round to ``places`` decimals only when the value has more (half-even); else keep it as is."""
    quantum = Decimal(1).scaleb(-places)

    def cap(value: Decimal) -> Decimal:
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -places:
            return value.quantize(quantum, rounding=ROUND_HALF_EVEN, context=_CONTEXT)
        return value

    return cap


def _number_schema(description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "number", "description": description})


Num = Annotated[
    Decimal,
    PlainSerializer(capped(NUM_PLACES), return_type=Decimal, when_used="always"),
    _number_schema(f"decimal JSON number, the source's digits, at most {NUM_PLACES} decimal places"),
]
"""A price, size, amount or fraction: a JSON number with the Decimal's digits."""

Pct = Annotated[
    Decimal,
    PlainSerializer(capped(PCT_PLACES), return_type=Decimal, when_used="always"),
    _number_schema(f"percent (0.12 = 0.12 %), JSON number, at most {PCT_PLACES} decimal places"),
]
"""A percentage: a JSON number, in percent."""

_encoder = msgspec.json.Encoder(decimal_format="number")


def plain(value: Any) -> Any:
    """Models become dicts with their Decimals kept (serialisers applied); the rest is left as is."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def to_json(value: Any) -> bytes:
    """JSON bytes of a model (or lists/dicts of them) with Decimals as number literals."""
    return _encoder.encode(plain(value))


def to_text(value: Any) -> str:
    return to_json(value).decode()


def wire(value: Any, status_code: int = 200) -> Response:
    """The HTTP response of a route: see the module docstring for why not FastAPI's own encoding."""
    return Response(to_json(value), status_code=status_code, media_type="application/json")
