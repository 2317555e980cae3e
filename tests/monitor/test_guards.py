"""DefaultGuards: green judged against blue over the same seconds; one FAIL is not enough."""

from __future__ import annotations

import asyncio

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
    return Deployment("d-1", "shop", "v2", from_revision, {}, {}, "shifting", "in_progress",
                      True, 0.0, 0.0, 1)


def test_only_seconds_in_which_green_served_are_compared() -> None:
    green = [Second(1, 0, 0, 0, {}), Second(2, 10, 1, 0, HIST)]
    blue = [Second(1, 50, 5, 0, HIST), Second(2, 90, 0, 0, HIST)]
    g, b = paired_counts(green, blue)
    assert (g.errors, g.total, b.errors, b.total) == (1, 10, 0, 90)


def test_a_clearly_worse_green_fires_at_the_second_failing_second_not_the_first() -> None:
    source = FakeSource()
    guards = DefaultGuards(source)
    source.add(100, green_errors=0)
    assert asyncio.run(guards(deployment())) is None
    source.add(101, green_errors=120)
    assert asyncio.run(guards(deployment())) is None  # one FAIL verdict: not yet
    assert asyncio.run(guards(deployment())) is None  # the same newest second again
    source.add(102, green_errors=120)
    fired = asyncio.run(guards(deployment()))
    assert fired is not None and "5xx" in fired


def test_a_healthy_green_and_a_first_deployment_never_fire() -> None:
    source = FakeSource()
    guards = DefaultGuards(source)
    for t in range(100, 130):
        source.add(t, green_errors=2)  # 1 % errors, and blue has none: within tolerance
        assert asyncio.run(guards(deployment())) is None
    assert asyncio.run(guards(deployment(from_revision=None))) is None
