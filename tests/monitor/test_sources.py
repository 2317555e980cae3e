"""RouterSource: the router's per-second counts and histograms, read over its admin API."""

from __future__ import annotations

import asyncio
import time

from sluicegate.monitor.sources import RouterSource
from sluicegate.router import RouterClient
from tests._support import router_config
from tests._support.rawhttp import get_many
from tests.conftest import AppFactory, RouterFactory


def test_router_source_returns_closed_seconds_per_target_group(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    good, bad = app_factory(version="v1"), app_factory(version="v2")
    bad.set_fail(500)
    router = router_factory(
        router_config({"blue": [good], "green": [bad]}, {"blue": 50, "green": 50})
    )
    replies = get_many(router.listener_port(), 400)
    time.sleep(1.2)  # let the second close

    async def read() -> dict[str, list]:  # type: ignore[type-arg]
        async with RouterClient(router.admin_url, router.token) as client:
            return await RouterSource(client).seconds("web", 30)

    series = asyncio.run(read())
    assert set(series) == {"blue", "green"}
    blue = sum(s.requests for s in series["blue"])
    green = sum(s.requests for s in series["green"])
    assert blue + green == 400
    assert (
        sum(s.errors for s in series["green"])
        == green
        == sum(1 for r in replies if r.status == 500)
    )
    assert sum(s.errors for s in series["blue"]) == 0
    assert all(sum(s.hist.values()) == s.requests for s in series["blue"])
    assert [s.t for s in series["blue"]] == sorted(s.t for s in series["blue"])


def test_recent_seconds_reads_incrementally_and_ends_with_the_open_second(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    from sluicegate.clock import SystemClock
    from sluicegate.monitor._recent import RecentSeconds

    good = app_factory(version="v1")
    router = router_factory(router_config({"blue": [good]}, {"blue": 100}))

    async def run() -> tuple[int, int, bool, int]:
        async with RouterClient(router.admin_url, router.token) as client:
            recent = RecentSeconds(RouterSource(client), SystemClock())
            await asyncio.to_thread(get_many, router.listener_port(), 100)
            first = await recent.seconds("web", 30)
            await asyncio.sleep(1.2)  # that second closes; a new read asks for little
            await asyncio.to_thread(get_many, router.listener_port(), 50)
            second = await recent.seconds("web", 30)
            closed = sum(s.requests for s in second["blue"] if not s.open)
            return (
                sum(s.requests for s in first["blue"]),
                closed + second["blue"][-1].requests if second["blue"][-1].open else closed,
                second["blue"][-1].open,
                len({s.t for s in second["blue"]}),
            )

    seen_first, seen_total, last_open, distinct = asyncio.run(run())
    assert seen_first == 100  # the open second counts too: nothing waits for a second to close
    assert seen_total == 150 and last_open
    assert distinct == len(asyncio.run(_seconds_of(router)))  # no second twice


async def _seconds_of(router: object) -> list[int]:
    async with RouterClient(router.admin_url, router.token) as client:  # type: ignore[attr-defined]
        series = await RouterSource(client).seconds("web", 30, include_open=True)
        return [s.t for s in series["blue"]]
