"""plumbing.gc_tuning: what the services do to the cyclic garbage collector once started."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from plumbing import gc_tuning


class Cycle:
    """An object that refcounting alone never frees: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()  # the test process must keep collecting what it froze
        gc.set_threshold(*threshold)


def test_young_collections_wait_for_ten_thousand_allocations(restored_collector: None) -> None:
    gc.set_threshold(700, 10, 10)
    gc_tuning.tune()
    assert gc.get_threshold() == (10_000, 10, 10)


def test_frozen_startup_objects_are_exempt_and_later_garbage_is_still_collected(restored_collector: None) -> None:
    before = Cycle()
    before_alive = weakref.ref(before)
    assert gc_tuning.freeze_startup_objects() >= 1
    del before
    gc.collect()
    assert before_alive() is not None, "alive at the freeze: never collected"
    after = Cycle()
    after_alive = weakref.ref(after)
    del after
    gc.collect()
    assert after_alive() is None, "garbage made after the freeze is collected as before"
