"""Injected time: the system clock for real runs, a manual clock for tests."""

from __future__ import annotations

import time

import pytest

from sluicegate.clock import Clock, ManualClock, SystemClock


def test_the_system_clock_reads_wall_and_monotonic_time() -> None:
    clock = SystemClock()
    before_wall, before_mono = time.time(), time.monotonic()
    now, mono = clock.now(), clock.monotonic()
    assert before_wall <= now <= time.time()
    assert before_mono <= mono <= time.monotonic()


def test_the_system_clocks_monotonic_time_never_goes_back() -> None:
    clock = SystemClock()
    readings = [clock.monotonic() for _ in range(1000)]
    assert readings == sorted(readings)


def test_a_manual_clock_starts_where_told_and_stands_still() -> None:
    clock = ManualClock(start=1000.0)
    assert (clock.now(), clock.monotonic()) == (1000.0, 0.0)
    assert (clock.now(), clock.monotonic()) == (1000.0, 0.0)


def test_a_manual_clock_has_a_fixed_default_start() -> None:
    assert ManualClock().now() == 1_700_000_000.0


def test_advancing_a_manual_clock_moves_wall_and_monotonic_time_together() -> None:
    clock = ManualClock(start=1000.0)
    clock.advance(1.5)
    clock.advance(0)
    clock.advance(60)
    assert (clock.now(), clock.monotonic()) == (1061.5, 61.5)


def test_a_manual_clock_refuses_to_go_back() -> None:
    clock = ManualClock(start=1000.0)
    with pytest.raises(ValueError, match="a clock never goes back"):
        clock.advance(-1)
    assert (clock.now(), clock.monotonic()) == (1000.0, 0.0)


def test_both_clocks_satisfy_the_clock_protocol() -> None:
    clocks: list[Clock] = [SystemClock(), ManualClock()]
    assert all(isinstance(c.now(), float) and isinstance(c.monotonic(), float) for c in clocks)
