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
    router = router_factory(router_config({"blue": [good], "green": [bad]},
                                          {"blue": 50, "green": 50}))
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
    assert sum(s.errors for s in series["green"]) == green == sum(
        1 for r in replies if r.status == 500)
    assert sum(s.errors for s in series["blue"]) == 0
    assert all(sum(s.hist.values()) == s.requests for s in series["blue"])
    assert [s.t for s in series["blue"]] == sorted(s.t for s in series["blue"])
