"""pytest plugin loaded only by ``make mutation`` (``pytest_add_cli_args`` in ``[tool.mutmut]``).

mutmut 3.7 (the newest release whose click pin agrees with faust-streaming's) reads
``item._nodeid``, which pytest 9 no longer has: give every collected item one.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item._nodeid = str(item.nodeid)  # type: ignore[attr-defined]
