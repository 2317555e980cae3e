"""Flag exposures as an alarm source: per-minute evaluation counts as datapoints, alarm
specs checked for whole-minute periods, and an alarm over a real store going to ALARM when
a flag's error share grows."""

from __future__ import annotations

import asyncio
import copy
import sys
from pathlib import Path
from typing import Any

import pytest

from sluicegate.clock import ManualClock
from sluicegate.errors import SpecError
from sluicegate.monitor import Datapoint
from sluicegate.monitor._alarm_records import sync_alarms
from sluicegate.monitor._exposure_datapoints import ExposureDatapoints, exposure_datapoints
from sluicegate.monitor.engine import AlarmEngine
from sluicegate.monitor.sources import Sources
from sluicegate.spec import AlarmSpec, MetricSpec, ServiceSpec, parse_document
from sluicegate.store import Store

M0 = 1_700_000_040  # a minute's start


def test_each_minute_is_its_count_and_a_minute_without_reports_is_missing() -> None:
    minutes = {M0: 5, M0 + 60: 7, M0 + 180: 1}
    assert exposure_datapoints(minutes, "Sum", end=M0 + 240, period=60, count=4) == [
        Datapoint(M0, 5.0, 5),
        Datapoint(M0 + 60, 7.0, 7),
        Datapoint(M0 + 120, None, 0),
        Datapoint(M0 + 180, 1.0, 1),
    ]
    assert exposure_datapoints(minutes, "Sum", end=M0 + 240, period=120, count=2) == [
        Datapoint(M0, 12.0, 12),
        Datapoint(M0 + 120, 1.0, 1),
    ]
    assert exposure_datapoints(minutes, "SampleCount", end=M0 + 120, period=60, count=1) == [
        Datapoint(M0 + 60, 7.0, 7)
    ]


def test_a_period_that_is_not_whole_minutes_or_a_percentile_is_refused() -> None:
    with pytest.raises(SpecError) as exc:
        exposure_datapoints({M0: 1}, "Sum", end=M0 + 60, period=30, count=2)
    assert [p.path for p in exc.value.problems] == ["period"]
    with pytest.raises(SpecError) as exc:
        exposure_datapoints({M0: 1}, "p99", end=M0 + 60, period=60, count=1)
    assert [p.path for p in exc.value.problems] == ["statistic"]


def test_the_source_reads_the_store_summing_what_the_dimensions_leave_open(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.flag_exposures.add(
            "prod", M0, [("checkout", "new", 3), ("checkout", "old", 4), ("search", "on", 100)]
        )
        store.flag_exposures.add("prod", M0 + 60, [("checkout", "new", 2)])
        store.flag_exposures.add("staging", M0, [("checkout", "new", 50)])
        source = ExposureDatapoints(store)

        def sums(**dims: str) -> list[float | None]:
            metric = MetricSpec(source="exposures", name="evaluations", dimensions=dims)
            points = asyncio.run(source.datapoints(metric, "Sum", end=M0 + 120, period=60, count=2))
            return [p.value for p in points]

        assert sums(env="prod", flag="checkout", variant="new") == [3.0, 2.0]
        assert sums(env="prod", flag="checkout") == [7.0, 2.0]
        assert sums(env="prod") == [107.0, 2.0]
        assert sums(env="prod", flag="search", variant="off") == [0.0, None]
        assert sums(env="staging", variant="old") == [0.0, None]
        assert sums(env="dev") == [None, None]


@pytest.mark.parametrize(
    ("metric", "path"),
    [
        (
            {"source": "exposures", "name": "evaluations", "dimensions": {"flag": "x"}},
            "metric.dimensions.env",
        ),
        (
            {
                "source": "exposures",
                "name": "evaluations",
                "dimensions": {"env": "prod", "listener": "shop"},
            },
            "metric.dimensions.listener",
        ),
        ({"source": "exposures", "name": "requests", "dimensions": {"env": "prod"}}, "metric.name"),
    ],
)
def test_an_exposures_metric_names_evaluations_and_its_env(
    metric: dict[str, Any], path: str
) -> None:
    single = {k: v for k, v in ERROR_SHARE.items() if k not in ("metrics", "expression")}
    assert path in [p for p, _ in problems_of({**single, "metric": metric})]


def test_an_alarm_on_exposures_needs_a_whole_minute_period() -> None:
    [(path, message)] = problems_of({**ERROR_SHARE, "period": "30s"})
    assert path == "period" and "whole number of minutes" in message
    assert (
        "statistic",
        "exposure counts have no distribution: use Sum (or SampleCount)",
    ) in problems_of({**ERROR_SHARE, "statistic": "p99"})
    assert parse_document(AlarmSpec, {**ERROR_SHARE, "period": "5m"}).period == 300


def problems_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse_document(AlarmSpec, data, source="alarm.yaml")
    return [(p.path, p.message) for p in info.value.problems]


ERROR_SHARE: dict[str, Any] = {
    "name": "checkout-errors",
    "metrics": {
        "e": {
            "source": "exposures",
            "name": "evaluations",
            "dimensions": {"env": "prod", "flag": "checkout", "variant": "error:TYPE_MISMATCH"},
        },
        "r": {
            "source": "exposures",
            "name": "evaluations",
            "dimensions": {"env": "prod", "flag": "checkout"},
        },
    },
    "expression": "e / r",
    "statistic": "Sum",
    "period": "1m",
    "evaluation_periods": 2,
    "datapoints_to_alarm": 2,
    "threshold": 0.1,
    "comparison": "GreaterThanThreshold",
    "treat_missing_data": "notBreaching",
}


def test_an_alarm_on_a_flags_error_share_fires_after_two_bad_minutes(tmp_path: Path) -> None:
    clock = ManualClock(M0)
    with Store.open(tmp_path, clock=clock) as store:
        service = ServiceSpec.model_validate(
            {
                "service": "shop",
                "listener": {"port": 8080},
                "compute": {"local": {"command": [sys.executable, "app.py", "--port", "{port}"]}},
                "alarms": [copy.deepcopy(ERROR_SHARE)],
            }
        )
        store.services.put("shop", service.model_dump(mode="json"))
        sync_alarms(store, service, "alice")
        engine = AlarmEngine(store, Sources(exposures=ExposureDatapoints(store)), clock)

        def minute(new: int, errors: int) -> str:
            store.flag_exposures.add(
                "prod",
                int(clock.now()),
                [("checkout", "new", new), ("checkout", "error:TYPE_MISMATCH", errors)],
            )
            for _ in range(60):
                clock.advance(1)
                asyncio.run(engine.tick(clock.now()))
            return store.alarms.get("shop", "checkout-errors").state

        assert minute(100, 2) == "OK"  # 2 / 102
        assert minute(90, 30) == "OK"  # 30 / 120: one bad minute of the two needed
        assert minute(80, 40) == "ALARM"  # 40 / 120
        assert minute(100, 0) == "OK"  # 0 / 100: no error row, yet a datapoint of 0
        assert minute(70, 50) == "OK"  # 1 of the last 2 breaching
