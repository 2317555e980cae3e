"""Router metrics as alarm datapoints: counters, ratios and latency from the admin API."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from sluicegate.errors import SpecError
from sluicegate.monitor import Datapoint, combine
from sluicegate.monitor._router_datapoints import (
    RouterDatapoints,
    histogram_ms,
    percentile_ms,
    router_seconds,
)
from sluicegate.router import RouterClient, bucket_index
from sluicegate.spec import AlarmSpec, MetricSpec
from tests._support import router_config
from tests._support.rawhttp import get_many
from tests.conftest import AppFactory, RouterFactory


def _point(t: int, requests: int, e5: int = 0, latency_ms: float = 2.0) -> dict[str, Any]:
    index = bucket_index(int(latency_ms * 1000))
    return {
        "t": t,
        "requests": requests,
        "1xx": 0,
        "2xx": requests - e5,
        "3xx": 0,
        "4xx": 0,
        "5xx": e5,
        "router_502": 0,
        "router_504": 0,
        "latency_sum": requests * latency_ms / 1000,
        "hist": {str(index): requests},
    }


SNAPSHOT = {
    "series": [
        {
            "listener": "shop",
            "target_group": "shop.v1",
            "seconds": [_point(100, 10), _point(101, 10), _point(103, 4)],
        },
        {
            "listener": "shop",
            "target_group": "shop.v2",
            "seconds": [_point(100, 5, e5=5, latency_ms=50.0), _point(101, 5, e5=0)],
        },
        {"listener": "other", "target_group": "other.v1", "seconds": [_point(100, 99)]},
    ]
}


def test_a_listener_without_target_group_sums_its_groups_and_skips_other_listeners() -> None:
    seconds = router_seconds(SNAPSHOT, "shop", None)
    assert sorted(seconds) == [100, 101, 103]
    assert [seconds[t]["requests"] for t in (100, 101, 103)] == [15, 15, 4]
    assert seconds[100]["5xx"] == 5
    assert sum(seconds[100]["hist"].values()) == 15


def test_a_second_without_traffic_on_the_series_is_absent() -> None:
    assert sorted(router_seconds(SNAPSHOT, "shop", "shop.v2")) == [100, 101]


def test_latency_statset_is_in_milliseconds_with_an_exact_average() -> None:
    s = router_seconds(SNAPSHOT, "shop", None)[100]
    stat = histogram_ms(s)
    assert stat.count == 15
    assert math.isclose(stat.total / stat.count, (10 * 2.0 + 5 * 50.0) / 15)
    assert 2.0 * 0.93 <= stat.minimum <= 2.0 * 1.07
    assert 50.0 * 0.93 <= stat.maximum <= 50.0 * 1.07


def test_percentile_ms_takes_the_bucket_midpoint_of_the_rank() -> None:
    hist = {bucket_index(1000): 98, bucket_index(200_000): 2}
    p50, p99 = percentile_ms(hist, 0.5), percentile_ms(hist, 0.99)
    assert p50 is not None and p99 is not None
    assert 0.93 <= p50 <= 1.07
    assert 200 * 0.93 <= p99 <= 200 * 1.07
    assert percentile_ms({}, 0.99) is None


def test_a_percentile_of_a_counter_is_refused() -> None:
    source = RouterDatapoints(RouterClient("http://127.0.0.1:9", None))
    metric = MetricSpec(source="router", name="5xx", dimensions={"listener": "web"})
    with pytest.raises(SpecError, match="needs a distribution"):
        asyncio.run(source.datapoints(metric, "p99", end=100, period=1, count=3))


def _ratio_alarm(group: str) -> AlarmSpec:
    dims = {"listener": "web", "target_group": group}
    return AlarmSpec.model_validate(
        {
            "name": "green-5xx-rate",
            "metrics": {
                "e": {"source": "router", "name": "5xx", "dimensions": dims},
                "r": {"source": "router", "name": "requests", "dimensions": dims},
            },
            "expression": "e / r",
            "statistic": "Sum",
            "period": 1,
            "evaluation_periods": 3,
            "threshold": 0.05,
            "comparison": "GreaterThanThreshold",
        }
    )


def test_router_datapoints_count_a_failing_group_from_a_real_router(
    app_factory: AppFactory, router_factory: RouterFactory
) -> None:
    good, bad = app_factory(version="v1"), app_factory(version="v2")
    bad.set_fail(500)
    router = router_factory(
        router_config({"blue": [good], "green": [bad]}, {"blue": 50, "green": 50})
    )
    first = int(time.time())
    replies = get_many(router.listener_port(), 400)
    time.sleep(1.3)  # let the last second close
    end = int(time.time())
    count = end - first + 1
    failed = sum(1 for r in replies if r.status == 500)

    async def read() -> dict[str, list[Datapoint]]:
        async with RouterClient(router.admin_url, router.token) as client:
            source = RouterDatapoints(client)

            async def one(name: str, stat: str, group: str | None = None) -> list[Datapoint]:
                dims = {"listener": "web", **({"target_group": group} if group else {})}
                metric = MetricSpec(source="router", name=name, dimensions=dims)
                return await source.datapoints(metric, stat, end=end, period=1, count=count)

            return {
                "all": await one("requests", "Sum"),
                "green_5xx": await one("5xx", "Sum", "green"),
                "green_req": await one("requests", "Sum", "green"),
                "blue_5xx": await one("5xx", "Sum", "blue"),
                "latency_avg": await one("latency", "Average"),
                "latency_p99": await one("latency", "p99"),
                "latency_max": await one("latency", "Maximum", "blue"),
            }

    got = asyncio.run(read())
    total = sum(p.value or 0 for p in got["all"])
    assert total == 400
    assert sum(p.value or 0 for p in got["green_5xx"]) == failed > 0
    assert sum(p.value or 0 for p in got["green_req"]) == failed
    # Blue had traffic but no 5xx: present as 0, not missing.
    present = [p for p in got["blue_5xx"] if p.value is not None]
    assert present and all(p.value == 0 for p in present)
    # Seconds before the burst had no traffic: missing.
    assert all(p.value is None for p in got["all"] if p.samples == 0)
    lat = [p for p in got["latency_avg"] if p.value is not None]
    assert lat and all(0 < (p.value or 0) < 5000 for p in lat)
    assert sum(p.samples for p in lat) == 400
    p99 = [p for p in got["latency_p99"] if p.value is not None]
    assert p99 and all(0 < (p.value or 0) < 5000 for p in p99)
    assert all(p.value is not None and p.value > 0 for p in got["latency_max"] if p.samples)

    ratio = combine(_ratio_alarm("green"), {"e": got["green_5xx"], "r": got["green_req"]})
    real = [p for p in ratio if p.value is not None]
    assert real and all(p.value == 1.0 for p in real)
    assert sum(p.samples for p in real) == failed


def test_the_admin_api_shows_each_seconds_latency_sum() -> None:
    from sluicegate.router import MetricsRegistry
    from sluicegate.router._exposition import summarize

    reg = MetricsRegistry(window_seconds=60)
    reg.rotate(10)
    for latency in (0.002, 0.004):
        reg.get("web", "green").record(200, latency)
    reg.rotate(11)
    [series] = summarize(reg.snapshot(60), 60)["series"]
    [point] = series["seconds"]
    assert point["latency_sum"] == pytest.approx(0.006)
