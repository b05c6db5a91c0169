"""`arbstream up` restarts a service that dies, and stops everything when one keeps dying."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest

from arbstream import services


class FakeProcess:
    def __init__(self, exit_code: int | None) -> None:
        self.returncode = exit_code

    def poll(self) -> int | None:
        return self.returncode


def run(monkeypatch: pytest.MonkeyPatch, deaths: int, stop_after_spawns: int = 99) -> tuple[int, list[str]]:
    """The worker dies ``deaths`` times (each replacement dies again until then)."""
    spawned: list[str] = []
    stop = SimpleNamespace(event=threading.Event())

    def spawn(name: str, args: list[str], env: dict[str, str]) -> services._Child:
        spawned.append(name)
        if len(spawned) >= stop_after_spawns:
            stop.event.set()
        alive = len(spawned) >= deaths
        return services._Child(name, cast(Any, FakeProcess(None if alive else 1)))

    monkeypatch.setattr(services, "_spawn", spawn)
    monkeypatch.setattr(services, "RESTART_BACKOFF_S", (0.0,))
    children = [
        services._Child("api", cast(Any, FakeProcess(None))),
        services._Child("worker", cast(Any, FakeProcess(1))),
    ]
    code = services._supervise(children, {"api": ["api"], "worker": ["worker"]}, {}, cast(Any, stop))
    return code, spawned


def test_a_dead_service_is_restarted_and_the_rest_keep_running(monkeypatch: pytest.MonkeyPatch) -> None:
    code, spawned = run(monkeypatch, deaths=2, stop_after_spawns=2)
    assert (code, spawned) == (0, ["worker", "worker"])


def test_a_service_that_keeps_dying_stops_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    code, spawned = run(monkeypatch, deaths=99)
    assert (code, spawned) == (1, ["worker"] * services.MAX_RESTARTS)
