"""The replay/backtest progress bar: what it measures and what it draws (rich, no terminal needed)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from ingest import replay_progress
from ingest.replay import Replayer
from ingest.replay_progress import ReplayProgress
from schemas.market import Health, HealthState, Quote
from tests.test_backtest import MS, T0, S, market, write_recording


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=160, color_system=None, record=True)


def test_the_bar_follows_the_replayed_clock_across_the_range_with_ticks_per_second() -> None:
    now = [0.0]
    console = terminal()
    stale_before = Health(venue="okx", connection="okx-0", state=HealthState.STALE, exchange_ts_ns=T0 - S,
                          receipt_ts_ns=T0 - S)  # fmt: skip
    events: list[Quote | Health] = [stale_before, *market([(5, 8)], seconds=10)]
    with ReplayProgress("replay 1x", T0, T0 + 10 * S, console=console, clock=lambda: now[0]) as bar:
        passed = []
        for event in bar.track(events):
            passed.append(event)
            now[0] += 0.01
            if len(passed) == 101:
                break
        bar.update()
        task = bar.progress.tasks[0]
        # 100 ticks (the carried-in health is no tick and does not move the clock back) in 1.01 s;
        # the 100th is okx at 4.901 s of the 10 s range.
        assert passed[:2] == events[:2] and bar.ticks == 100
        assert (task.total, task.completed) == (10 * S, 4 * S + 901 * MS)
        assert task.fields == {"ticks": "100", "rate": "99", "clock": "2026-09-21T14:13:24Z"}
    drawn = console.export_text()
    assert "replay 1x" in drawn and " 49% 100 ticks · 99 ticks/s · 2026-09-21T14:13:24Z" in drawn


def test_refreshes_are_throttled_to_the_refresh_period() -> None:
    now = [0.0]
    bar = ReplayProgress("x", T0, T0 + S, console=terminal(), clock=lambda: now[0])
    events = market([], seconds=1)
    for event in events[:10]:  # no time passes: no refresh yet
        bar.tick(event)
    assert bar.progress.tasks[0].fields["ticks"] == "0"
    now[0] = 0.3
    bar.tick(events[10])
    assert bar.progress.tasks[0].fields["ticks"] == "11"


def test_without_an_end_time_the_bar_measures_the_recording_bytes_read(tmp_path: Path) -> None:
    write_recording(tmp_path, market([(5, 8)], seconds=300))  # 18 kB a venue: read in several chunks
    size = sum(p.stat().st_size for p in tmp_path.glob("*.jsonl.gz"))
    replayer = Replayer([tmp_path], start_ns=T0 + 5 * S)
    bar = replayer.progress("backtest base")
    assert bar.measure() == (float(size), 0.0)
    halfway = 0
    for number, _ in enumerate(replayer.events()):
        if number == 3_000:
            halfway = int(bar.measure()[1])
    assert 0 < halfway < size  # read as it goes, in compressed bytes
    assert bar.measure() == (float(size), float(size))


def test_off_a_terminal_nothing_is_drawn() -> None:
    out = io.StringIO()
    quiet = Console(file=out, force_terminal=False)
    with ReplayProgress("replay max", T0, T0 + S, console=quiet) as bar:
        assert list(bar.track(market([], seconds=1))) == market([], seconds=1)
    assert not bar.enabled and out.getvalue() == ""


def test_backtest_draws_a_bar_per_run_on_stderr_and_keeps_stdout_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from arbstream.backtest import FileSource, backtest

    drawn_on = terminal()

    def stderr_console(stderr: bool = False) -> Console:
        assert stderr  # the bar never goes to stdout
        return drawn_on

    monkeypatch.setattr(replay_progress, "Console", stderr_console)

    write_recording(tmp_path / "rec", market([(5, 8)], seconds=20))
    variants = [("base", {"min_ticks": "2"}), ("compare", {"min_ticks": "3"})]
    backtest(FileSource([tmp_path / "rec"], start=str(T0), end=str(T0 + 20 * S)), variants, tmp_path / "out")
    drawn = drawn_on.export_text()
    # 400 ticks, up to okx's at 19.901 s of the 20 s range (99.5 %, drawn rounded).
    for name in ("base", "compare"):
        assert f"backtest {name}" in drawn
    assert drawn.count(" 100% 400 ticks") >= 2 and "400 ticks · " in drawn and "/s · 2026-09-21T14:13:39Z" in drawn
    assert capsys.readouterr().out == ""
