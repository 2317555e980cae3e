"""DefaultGuards: green judged against blue over the same seconds; a FAIL must hold for half a
second over more requests before it rolls back; no verdict holds a step."""

from __future__ import annotations

import asyncio

from sluicegate.clock import ManualClock
from sluicegate.monitor.canary import Outcome
from sluicegate.monitor.guards import DefaultGuards, paired_counts
from sluicegate.monitor.sources import Second
from sluicegate.store import Deployment

HIST = {80: 10}


class FakeSource:
    """Stands in for the router's admin API: the test decides what each second held."""

    def __init__(self) -> None:
        self.series: dict[str, list[Second]] = {"shop.v1": [], "shop.v2": []}

    def add(self, t: int, green_errors: int, green: int = 200, blue: int = 800) -> None:
        self.series["shop.v2"].append(Second(t, green, green_errors, 0, {80: green}))
        self.series["shop.v1"].append(Second(t, blue, 0, 0, {80: blue}))

    async def seconds(self, listener: str, window: int) -> dict[str, list[Second]]:
        return {k: v[-window:] for k, v in self.series.items()}


def deployment(from_revision: str | None = "v1") -> Deployment:
    return Deployment(
        "d-1", "shop", "v2", from_revision, {}, {}, "shifting", "in_progress", True, 0.0, 0.0, 1
    )


def test_only_seconds_in_which_green_served_are_compared() -> None:
    green = [Second(1, 0, 0, 0, {}), Second(2, 10, 1, 0, HIST)]
    blue = [Second(1, 50, 5, 0, HIST), Second(2, 90, 0, 0, HIST)]
    g, b = paired_counts(green, blue)
    assert (g.errors, g.total, b.errors, b.total) == (1, 10, 0, 90)


def test_a_clearly_worse_green_fires_once_the_fail_held_half_a_second_over_more_requests() -> None:
    source, clock = FakeSource(), ManualClock()
    guards = DefaultGuards(source, clock=clock, sequential_alpha=None)
    source.add(100, green_errors=0)
    assert asyncio.run(guards(deployment())) is None
    source.add(101, green_errors=120)
    assert asyncio.run(guards(deployment())) is None  # a first FAIL verdict: not yet
    clock.advance(0.6)
    assert asyncio.run(guards(deployment())) is None  # later, but on the same requests
    source.add(102, green_errors=120)
    clock.advance(0.25)
    fired = asyncio.run(guards(deployment()))
    assert fired is not None and "5xx" in fired


def test_a_fail_that_does_not_hold_starts_the_half_second_again() -> None:
    source, clock = FakeSource(), ManualClock()
    guards = DefaultGuards(source, clock=clock, sequential_alpha=None)
    source.add(100, green_errors=30)
    assert asyncio.run(guards(deployment())) is None  # FAIL at t
    source.series["shop.v2"][-1] = Second(100, 200, 0, 0, {80: 200})  # the open second grew
    clock.advance(0.3)
    assert asyncio.run(guards(deployment())) is None  # not FAIL any more: reset
    source.add(101, green_errors=60)
    clock.advance(0.3)
    assert asyncio.run(guards(deployment())) is None  # FAIL again, a new half second starts
    source.add(102, green_errors=60)
    clock.advance(0.3)
    assert asyncio.run(guards(deployment())) is None
    source.add(103, green_errors=60)
    clock.advance(0.3)
    assert asyncio.run(guards(deployment())) is not None


def test_no_verdict_holds_the_step_and_a_pass_releases_it() -> None:
    source, clock = FakeSource(), ManualClock()
    guards = DefaultGuards(source, clock=clock)
    source.add(100, green_errors=0, green=5, blue=50)
    asyncio.run(guards(deployment()))
    held = guards.hold(deployment())
    assert held is not None and "no verdict yet" in held and "not enough data" in held
    for t in range(101, 104):
        source.add(t, green_errors=0, green=100, blue=400)
    asyncio.run(guards(deployment()))
    assert guards.hold(deployment()) is None
    assert guards.hold(deployment(from_revision=None)) is None


def test_a_healthy_green_and_a_first_deployment_never_fire() -> None:
    source = FakeSource()
    guards = DefaultGuards(source)
    for t in range(100, 130):
        source.add(t, green_errors=2)  # 1 % errors, and blue has none: within tolerance
        assert asyncio.run(guards(deployment())) is None
    assert asyncio.run(guards(deployment(from_revision=None))) is None


def test_a_green_failing_most_of_its_first_requests_fires_at_once_on_the_sequential_test() -> None:
    source, clock = FakeSource(), ManualClock()
    guards = DefaultGuards(source, clock=clock)
    source.add(100, green_errors=0, green=0, blue=800)
    assert asyncio.run(guards(deployment())) is None
    source.add(101, green_errors=3, green=4, blue=800)  # 3 of green's first 4 requests
    fired = asyncio.run(guards(deployment()))
    assert fired is not None
    assert fired.startswith("default canary guard, sequential test (green 5xx 3/4 vs blue 0/800")


def test_the_sequential_test_waits_for_a_second_error_and_leaves_a_healthy_green_alone() -> None:
    source, clock = FakeSource(), ManualClock()
    guards = DefaultGuards(source, clock=clock)
    source.add(100, green_errors=1, green=1, blue=800)  # one failure proves nothing
    assert asyncio.run(guards(deployment())) is None
    for t in range(101, 160):  # then 1 % on green, 1 % on blue
        source.series["shop.v2"].append(Second(t, 100, 1, 0, {80: 100}))
        source.series["shop.v1"].append(Second(t, 900, 9, 0, {80: 900}))
        clock.advance(1)
        assert asyncio.run(guards(deployment())) is None


def test_the_sequential_test_stops_once_greens_first_seconds_left_the_window() -> None:
    source, clock = FakeSource(), ManualClock()
    guards = DefaultGuards(source, clock=clock, window=3)
    source.add(100, green_errors=0, green=5)
    assert asyncio.run(guards(deployment())) is None
    for t in (101, 102, 103):
        source.add(t, green_errors=0, green=5)
    source.add(104, green_errors=4, green=5)  # second 100 is out of the 3 s window now
    assert asyncio.run(guards(deployment())) is None  # only the held fixed test may fire
    assert guards.last["d-1"].outcome is Outcome.FAIL
