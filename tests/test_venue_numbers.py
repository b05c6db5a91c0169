"""``ingest.venues.base.dec``: the one door venue numbers come through (issue 13 item 1)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingest.venues.base import FrameError, dec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64012.5", Decimal("64012.5")),
        ("0", Decimal(0)),
        ("-0.00000001", Decimal("-0.00000001")),
        ("1790516465130000000", Decimal(1790516465130000000)),  # a ns timestamp
        ("1E-30", Decimal("1E-30")),
        ("9.99E+24", Decimal("9.99E+24")),
        (12, Decimal(12)),
        (Decimal("64012.5"), Decimal("64012.5")),
        ("", None),
        (None, None),
    ],
)
def test_sane_numbers_pass_exactly(text: object, expected: Decimal | None) -> None:
    assert dec(text) == expected


NOT_NUMBERS = ["NaN", "sNaN", "Infinity", "-inf", "1E+999999999", "1E+25", "1E-31", "abc", 1.5, True, [1], {"px": "1"}]
INSANE_DECIMALS = [Decimal("NaN"), Decimal("1E+25")]


@pytest.mark.parametrize("text", [*NOT_NUMBERS, *INSANE_DECIMALS])
def test_anything_else_is_a_frame_error_naming_the_value(text: object) -> None:
    with pytest.raises(FrameError, match=r"decimal|float"):
        dec(text)
