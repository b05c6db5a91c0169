"""Recordings and their replay without a broker: streaming merge, health, listings, pacing."""

from __future__ import annotations

import asyncio
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from ingest.instruments import load_venue_instruments
from ingest.recorder import Recorder, iter_health, iter_recording, write_instruments
from ingest.replay import PACE_TOLERANCE_P99_S, Pacer, Replayer, Speed, pacing_start, parse_time
from plumbing.errors import ConfigError
from schemas.market import Health, HealthState, Quote

BOOK = (
    '{{"stream":"btcusdt@bookTicker","data":{{"e":"bookTicker","u":{u},"s":"BTCUSDT","b":"{bid}","B":"2",'
    '"a":"{ask}","A":"3","T":1,"E":2}}}}'
)


def book(u: int, bid: str, ask: str) -> str:
    return BOOK.format(u=u, bid=bid, ask=ask)


def health(ts: int, state: HealthState) -> Health:
    return Health(venue="binance", connection="binance-public-0", state=state, exchange_ts_ns=ts, receipt_ts_ns=ts)


def record(directory: Path, venue: str, rows: list[tuple[int, str]], rotate_bytes: int = 1 << 20) -> Recorder:
    recorder = Recorder(directory, venue, rotate_bytes)
    for ts, frame in rows:
        recorder.write(f"{venue}-public-0", ts, frame)
    return recorder


def test_recorder_writes_from_a_thread_and_close_flushes_everything(tmp_path: Path) -> None:
    recorder = record(tmp_path, "binance", [(i, book(i, "1", "2")) for i in range(1, 2001)], rotate_bytes=50_000)
    recorder.write("binance-public-0", 3000, b"\x00\x01binary")
    recorder.close()
    recorder.close()  # idempotent
    files = sorted(tmp_path.glob("binance-*.jsonl.gz"))
    assert len(files) > 2  # rotated
    rows = [row for path in files for row in iter_recording(path)]
    assert [ts for ts, _, _, _ in rows] == [*range(1, 2001), 3000]
    assert rows[-1] == (3000, "binance", "binance-public-0", b"\x00\x01binary")
    assert recorder.lines_written == 2001


def test_a_killed_recorder_leaves_a_file_readable_to_its_last_flush(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "live", "binance", 1 << 30, flush_every_s=0.05)
    for i in range(100):
        recorder.write("c", i, book(i, "1", "2"))
    deadline = asyncio.run(_wait_flushed(recorder))
    assert deadline
    # Copy the file while the writer still holds it open: no gzip trailer, as after SIGKILL.
    live_file = next((tmp_path / "live").glob("*.jsonl.gz"))
    copy = tmp_path / live_file.name
    shutil.copy(live_file, copy)
    assert [ts for ts, _, _, _ in iter_recording(copy)] == list(range(100))
    recorder.close()


async def _wait_flushed(recorder: Recorder) -> bool:
    for _ in range(100):
        if recorder.lines_written == 100:
            await asyncio.sleep(0.2)  # > flush_every_s: the next idle wake-up flushes
            return True
        await asyncio.sleep(0.02)
    return False


def test_replay_merges_files_in_receipt_order_with_health_and_the_recorded_listing(tmp_path: Path) -> None:
    binance = load_venue_instruments("binance")
    write_instruments(tmp_path, binance, ts_ns=5)
    first = record(tmp_path, "binance", [(10, book(1, "100.5", "100.6")), (30, book(2, "100.7", "100.8"))])
    first.write_health(health(20, HealthState.STALE))
    first.close()
    second = Recorder(tmp_path, "okx", 1 << 20)
    second.write("okx-0", 25, "not json")
    second.close()
    replayer = Replayer([tmp_path])
    events = list(replayer.events())
    assert [(type(e).__name__, e.receipt_ts_ns) for e in events] == [("Quote", 10), ("Health", 20), ("Quote", 30)]
    quotes = [e for e in events if isinstance(e, Quote)]
    assert [(q.bid, q.ask, q.instrument_id) for q in quotes] == [
        (Decimal("100.5"), Decimal("100.6"), "BTC-USDT-PERP@binance"),
        (Decimal("100.7"), Decimal("100.8"), "BTC-USDT-PERP@binance"),
    ]
    assert (replayer.counts.frames, replayer.counts.events, replayer.counts.health, replayer.counts.malformed) == (
        3,
        2,
        1,
        1,
    )
    assert [h.state for path in tmp_path.glob("binance-*") for h in iter_health(path)] == [HealthState.STALE]


def test_replay_selects_a_time_range(tmp_path: Path) -> None:
    record(tmp_path, "binance", [(ts, book(ts, "1", "2")) for ts in (10, 20, 30, 40)]).close()
    replayer = Replayer([tmp_path], start_ns=20, end_ns=40)
    assert [e.receipt_ts_ns for e in replayer.events()] == [20, 30]
    assert replayer.counts.skipped_out_of_range == 1
    with pytest.raises(ConfigError, match="no such recording"):
        list(Replayer([tmp_path / "missing"]).events())


def test_speed_and_time_arguments() -> None:
    assert [Speed.parse(s).factor for s in ("max", "1x", "10X", "0.5x", "2")] == [0, 1, 10, 0.5, 2]
    assert str(Speed.parse("10x")) == "10x" and str(Speed.parse("max")) == "max"
    for bad in ("fast", "-1x", "0x"):
        with pytest.raises(ConfigError, match="use max, 1x"):
            Speed.parse(bad)
    assert parse_time("2026-12-06T10:00:00.5Z") == 1_796_551_200_500_000_000
    assert parse_time("2026-12-06T10:00:00") == 1_796_551_200_000_000_000
    assert parse_time("123") == 123 and parse_time(None) is None
    with pytest.raises(ConfigError, match="neither ISO-8601"):
        parse_time("yesterday")


def test_pacer_keeps_recorded_spacing_scaled_by_speed_without_drift() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 9))
        now[0] += seconds + 0.003  # every sleep overshoots by 3 ms

    async def run(factor: str, stamps: list[int]) -> None:
        pacer = Pacer(Speed.parse(factor), clock=lambda: now[0], sleep=sleep)
        for ts in stamps:
            await pacer.wait(ts)

    asyncio.run(run("2x", [0, 1_000_000_000, 1_500_000_000, 1_500_000_000, 3_000_000_000]))
    # Due at +0.5, +0.75, +0.75, +1.5 s; each sleep is shortened by the previous overshoot.
    assert slept == [0.5, 0.247, 0.747]
    slept.clear()
    asyncio.run(run("max", [0, 10**12]))
    assert slept == []


def test_normalised_tick_files_merge_with_recorded_frames(tmp_path: Path) -> None:
    from schemas.market import encode

    record(tmp_path, "binance", [(10, book(1, "100.5", "100.6")), (30, book(2, "100.7", "100.8"))]).close()
    okx = Quote(
        instrument_id="BTC-USDT-PERP@okx", venue="okx", native_symbol="BTC-USDT-SWAP", base="BTC",
        bid=Decimal("101"), bid_size=Decimal(1), ask=Decimal("101.1"), ask_size=Decimal(1),
        exchange_ts_ns=19, receipt_ts_ns=20,
    )  # fmt: skip
    (tmp_path / "okx.ticks.jsonl").write_bytes(encode(okx) + b"\n\n")
    replayer = Replayer([tmp_path])
    events = list(replayer.events())
    assert [(e.venue, e.receipt_ts_ns) for e in events] == [("binance", 10), ("okx", 20), ("binance", 30)]
    assert events[1] == okx
    assert (replayer.counts.frames, replayer.counts.events) == (2, 3)
    (tmp_path / "bad.ticks.jsonl").write_text('{"type":"nonsense"}\n')
    with pytest.raises(ConfigError, match=r"bad.ticks.jsonl: line 1 is not a normalised tick"):
        list(Replayer([tmp_path]).events())


BYBIT_BOOK = (
    '{{"topic":"orderbook.1.BTCUSDT","type":"{kind}","ts":1790516465061,'
    '"data":{{"s":"BTCUSDT","b":{bids},"a":{asks},"u":{u},"seq":1}}}}'
)


def test_a_time_range_starts_with_the_books_and_health_of_before_it(tmp_path: Path) -> None:
    """--from parses the frames before it (a delta needs its snapshot) and carries each
    connection's last health report in, but emits nothing of its own from before the range."""
    recorder = record(
        tmp_path,
        "bybit",
        [
            (10, BYBIT_BOOK.format(kind="snapshot", bids='[["100","1"]]', asks='[["101","2"]]', u=1)),
            (20, BYBIT_BOOK.format(kind="delta", bids='[["100.5","1"]]', asks="[]", u=2)),
            (30, BYBIT_BOOK.format(kind="delta", bids="[]", asks='[["100.9","4"]]', u=3)),
        ],
    )
    for ts, state in ((5, HealthState.STREAMING), (12, HealthState.STALE)):
        recorder.write_health(
            Health(venue="bybit", connection="bybit-public-0", state=state, exchange_ts_ns=ts, receipt_ts_ns=ts)
        )
    recorder.close()
    replayer = Replayer([tmp_path], start_ns=15)
    events = list(replayer.events())
    # The newest pre-range report of the connection (STALE at 12, not STREAMING at 5), then the
    # range's quotes, whose unchanged sides come from the snapshot at 10.
    assert [(type(e).__name__, e.receipt_ts_ns) for e in events] == [("Health", 12), ("Quote", 20), ("Quote", 30)]
    assert isinstance(events[0], Health) and events[0].state is HealthState.STALE
    quotes = [(e.bid, e.ask, e.ask_size) for e in events if isinstance(e, Quote)]
    assert quotes == [(Decimal("100.5"), Decimal(101), Decimal(2)), (Decimal("100.5"), Decimal("100.9"), Decimal(4))]
    counts = replayer.counts
    assert (counts.frames, counts.events, counts.health, counts.skipped_out_of_range) == (3, 2, 1, 1)
    assert (counts.first_ts_ns, counts.last_ts_ns) == (20, 30)


def test_the_pacer_does_not_pace_what_precedes_the_range() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 9))
        now[0] += seconds

    async def run() -> None:
        pacer = Pacer(Speed.parse("1x"), clock=lambda: now[0], sleep=sleep, start_ns=3_600_000_000_000)
        for ts in (1_000_000_000, 3_600_000_000_000, 3_600_500_000_000):
            await pacer.wait(ts)

    asyncio.run(run())
    # The health from an hour before the range leaves at once; the range is paced from its start.
    assert slept == [0.5]


def test_a_range_in_offsets_is_paced_from_its_first_tick_not_the_health_carried_in() -> None:
    hour_old_health, first_tick = 1_000_000_000, 3_600_000_000_000
    assert pacing_start(None, [first_tick, first_tick + 5]) == first_tick
    assert pacing_start(hour_old_health, [first_tick]) == hour_old_health  # --from given: it is the start
    assert pacing_start(None, []) is None


def test_the_pacer_at_1x_on_the_real_clock_keeps_recorded_gaps_within_the_stated_tolerance() -> None:
    """200 recorded gaps of the sample (0.1 ms median, up to 50 ms) paced by the real clock and sleep."""
    import itertools
    import time

    from arbstream.backtest import SAMPLE_DIR

    stamps = [e.receipt_ts_ns for e in Replayer([SAMPLE_DIR]).events()][1000:1201]
    recorded = [(b - a) / 1e9 for a, b in itertools.pairwise(stamps)]
    assert len(recorded) == 200 and sum(recorded) > 1.0  # long enough that pacing shows

    async def released() -> list[float]:
        pacer, times = Pacer(Speed.parse("1x")), []
        for ts in stamps:
            await pacer.wait(ts)
            times.append(time.monotonic())
        return times

    def p99_error_and_drift() -> tuple[float, float]:
        times = asyncio.run(released())
        errors = sorted(abs((b - a) - gap) for (a, b), gap in zip(itertools.pairwise(times), recorded, strict=True))
        drift = (times[-1] - times[0]) - (stamps[-1] - stamps[0]) / 1e9
        return errors[-(-99 * len(errors) // 100) - 1], drift

    # A shared machine's busy moment is not the pacer's doing: the best of three runs is judged.
    attempts = []
    for _ in range(3):
        attempts.append(p99_error_and_drift())
        if attempts[-1][0] <= PACE_TOLERANCE_P99_S:
            break
    p99, drift = min(attempts)
    assert p99 <= PACE_TOLERANCE_P99_S, attempts
    # Never early (the loop's timer may fire a clock tick before due), and the schedule does not drift.
    assert -1e-6 <= drift <= PACE_TOLERANCE_P99_S, attempts
