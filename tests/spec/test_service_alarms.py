"""Alarms in a service spec: guard, placeholders checked at their field, and bound per
evaluation to the deployment's green and blue target groups."""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest

from sluicegate.errors import SpecError
from sluicegate.spec import ServiceAlarmSpec, ServiceSpec, bind_alarm, parse_document

RATIO: dict[str, Any] = {
    "name": "high-5xx",
    "metrics": {
        "e": {
            "source": "router",
            "name": "5xx",
            "dimensions": {"listener": "{service}", "target_group": "{green}"},
        },
        "r": {
            "source": "router",
            "name": "requests",
            "dimensions": {"listener": "{service}", "target_group": "{green}"},
        },
    },
    "expression": "e / r",
    "statistic": "Sum",
    "period": "2s",
    "evaluation_periods": 3,
    "threshold": 0.05,
    "comparison": "GreaterThanThreshold",
}

P99: dict[str, Any] = {
    "name": "slower-than-blue",
    "metric": {
        "source": "push",
        "name": "checkout_ms",
        "dimensions": {"revision": "{blue_revision}"},
    },
    "statistic": "p99",
    "period": 10,
    "evaluation_periods": 1,
    "threshold": 300,
    "comparison": "GreaterThanThreshold",
    "guard": False,
}


def service(*alarms: dict[str, Any]) -> dict[str, Any]:
    return {
        "service": "shop",
        "listener": {"port": 8080},
        "compute": {"local": {"command": [sys.executable, "app.py", "--port", "{port}"]}},
        "alarms": [copy.deepcopy(a) for a in alarms],
    }


def paths(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as err:
        parse_document(ServiceSpec, data)
    return {p.path: p.message for p in err.value.problems}


def test_a_service_carries_its_alarms_and_they_guard_by_default() -> None:
    spec = parse_document(ServiceSpec, service(RATIO, P99))
    assert [(a.name, a.guard) for a in spec.alarms] == [
        ("high-5xx", True),
        ("slower-than-blue", False),
    ]
    assert spec.alarms[0].placeholders() == {"service", "green"}
    assert parse_document(ServiceSpec, {**service(), "alarms": []}).alarms == []


def test_an_unknown_placeholder_is_named_at_its_dimension() -> None:
    bad = copy.deepcopy(P99)
    bad["metric"]["dimensions"] = {"target_group": "{gren}"}
    found = paths(service(bad))
    assert list(found) == ["alarms[0].metric.dimensions.target_group"]
    assert "unknown placeholder {gren}" in found["alarms[0].metric.dimensions.target_group"]
    worse = copy.deepcopy(RATIO)
    worse["metrics"]["r"]["dimensions"]["target_group"] = "{canary}"
    assert list(paths(service(worse))) == ["alarms[0].metrics.r.dimensions.target_group"]


def test_alarm_names_are_unique_within_a_service() -> None:
    assert list(paths(service(RATIO, RATIO))) == ["alarms[1].name"]


def test_an_alarms_own_mistakes_keep_their_path_under_alarms() -> None:
    bad = {**copy.deepcopy(RATIO), "datapoints_to_alarm": 5}
    assert "alarms[0].datapoints_to_alarm" in paths(service(bad))


def test_binding_fills_green_and_blue_and_marks_metrics_without_a_blue() -> None:
    alarm = ServiceAlarmSpec.model_validate(RATIO)
    bound, unbound = bind_alarm(alarm, {"service": "shop", "green": "shop.v2", "blue": None})
    assert unbound == frozenset()
    assert bound.metrics is not None
    assert bound.metrics["e"].dimensions == {"listener": "shop", "target_group": "shop.v2"}
    p99 = ServiceAlarmSpec.model_validate(P99)
    bound, unbound = bind_alarm(p99, {"service": "shop", "blue_revision": None})
    assert unbound == {"m1"}
    bound, unbound = bind_alarm(p99, {"service": "shop", "blue_revision": "v1"})
    assert (bound.metric is not None and bound.metric.dimensions, unbound) == (
        {"revision": "v1"},
        frozenset(),
    )
    assert bound.guard is False
