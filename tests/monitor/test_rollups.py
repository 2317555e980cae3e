"""One-minute rollups of pushed and router series, and datapoints read back from them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sluicegate.clock import ManualClock
from sluicegate.monitor._push_batch import Observation
from sluicegate.monitor.rollups import RollupWriter, rollup_datapoints
from sluicegate.monitor.series import SeriesStore
from sluicegate.router import RouterClient
from sluicegate.store import MetricRollup, Store
from tests._support import router_config
from tests._support.rawhttp import get_many
from tests.conftest import AppFactory, RouterFactory

M0 = 1_700_000_040


def test_datapoints_from_minutes_cover_any_whole_minute_period() -> None:
    rows = [
        MetricRollup("push", "x", {}, M0 + 60 * i, 2, 2.0 * (i + 1), 1.0, float(i + 1), {})
        for i in range(4)
    ]
    five = rollup_datapoints(rows, "Sum", end=M0 + 240, period=120, count=2)
    assert [(p.timestamp, p.value, p.samples) for p in five] == [(M0, 6.0, 4), (M0 + 120, 14.0, 4)]
    maxima = rollup_datapoints(rows, "Maximum", end=M0 + 300, period=60, count=5)
    assert [p.value for p in maxima] == [1.0, 2.0, 3.0, 4.0, None]


def test_a_minute_of_pushed_series_is_written_and_read_back(tmp_path: Path) -> None:
    clock = ManualClock(M0 + 65)
    series = SeriesStore()
    series.put(
        [Observation("lat", {"route": "/"}, M0 + s, [float(s)]) for s in range(60)]
        + [Observation("lat", {"route": "/"}, M0 + 60, [999.0])],
        now=M0 + 61,
    )
    with Store.open(tmp_path, clock=clock) as store:
        writer = RollupWriter(store, series, None, clock)
        assert asyncio.run(writer.roll(M0)) == 1
        rows = store.metric_rollups.query("push", "lat", {"route": "/"}, M0, M0 + 120)
        assert [(r.count, r.total, r.minimum, r.maximum) for r in rows] == [
            (60, float(sum(range(60))), 0.0, 59.0)
        ]
        [p50] = rollup_datapoints(rows, "p50", end=M0 + 60, period=60, count=1)
        assert p50.value is not None and abs(p50.value - 29.5) <= 0.0625 * 29.5 + 1


def test_flag_exposure_minutes_past_the_retention_go_with_the_rollups(tmp_path: Path) -> None:
    clock = ManualClock(M0 + 65)
    with Store.open(tmp_path, clock=clock) as store:
        store.flag_exposures.add("prod", M0 - 3660, [("checkout", "new", 1)])
        store.flag_exposures.add("prod", M0 - 60, [("checkout", "new", 2)])
        writer = RollupWriter(store, SeriesStore(), None, clock, retention=3600)
        asyncio.run(writer.roll(M0))
        assert store.flag_exposures.minutes("prod", 0, M0 * 2) == {M0 - 60: 2}


def test_the_routers_minute_is_rolled_up_per_target_group(
    app_factory: AppFactory, router_factory: RouterFactory, tmp_path: Path
) -> None:
    good, bad = app_factory(version="v1"), app_factory(version="v2")
    bad.set_fail(503)
    router = router_factory(
        router_config({"blue": [good], "green": [bad]}, {"blue": 1, "green": 1})
    )
    minute = int(time.time()) // 60 * 60
    replies = get_many(router.listener_port(), 200)
    time.sleep(1.3)
    failed = sum(1 for r in replies if r.status == 503)
    clock = ManualClock(time.time())

    async def roll(store: Store) -> int:
        async with RouterClient(router.admin_url, router.token) as client:
            writer = RollupWriter(store, SeriesStore(), client, clock)
            return await writer.roll(minute) + await writer.roll(minute + 60)

    with Store.open(tmp_path, clock=clock) as store:
        assert asyncio.run(roll(store)) >= 6  # 3 rows per group
        total = errors = 0
        for group in ("blue", "green"):
            dims = {"listener": "web", "target_group": group}
            for name in ("requests", "5xx", "latency"):
                rows = store.metric_rollups.query("router", name, dims, minute, minute + 120)
                assert rows, (group, name)
                if name == "requests":
                    total += sum(r.count for r in rows)
                if name == "5xx":
                    errors += sum(r.count for r in rows)
                if name == "latency":
                    assert all(r.total > 0 and sum(r.hist.values()) == r.count for r in rows)
        assert (total, errors) == (200, failed)
