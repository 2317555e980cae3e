"""A spec with several mistakes reports all of them in one round, and an unknown key names
the keys that are valid there (and the one it most resembles).

Checks across fields (duplicate names, a hook that needs a test port, weights, ...) run on
whatever validated, so a bad port elsewhere no longer hides them until it is fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sluicegate.errors import SpecError
from sluicegate.spec import (
    AlarmSpec,
    RouterConfig,
    ServiceSpec,
    load_file,
    parse_document,
    unknown_key_message,
)
from sluicegate.spec.flag_rollout import RolloutSpec

SERVICE_WITH_FIVE_MISTAKES = """\
service: shop
listener: {port: 70000}                       # 1: out of range
compute:
  local:
    command: ["python", "app.py", "--port", "{port}"]
deployment:
  hooks:
    before_allow_traffic: [{http: {path: /smoke}}]   # 2: no listener.test_port
    after_alow_traffic: []                            # 3: misspelt
alarms:
  - name: high-5xx
    metric: {source: router, name: 5xx, dimensions: {listener: shop}}
    statistic: Sum
    period: 10s
    evaluation_periods: 3
    threshold: 1
    comparison: GreaterThanThreshold
  - name: high-5xx                                    # 4: the same name again
    metric: {source: router, name: 5xx, dimensions: {listener: shop}}
    statistic: Sum
    period: 10s
    evaluation_periods: 3
    datapoints_to_alarm: 4                            # 5: more than evaluation_periods
    threshold: 1
    comparison: GreaterThanThreshold
"""


def problems_in_file(tmp_path: Path, model: type, text: str) -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_file(model, path)
    assert info.value.source == str(path)
    return [str(p) for p in info.value.problems]


def test_a_service_file_with_five_independent_mistakes_reports_all_five(tmp_path: Path) -> None:
    assert problems_in_file(tmp_path, ServiceSpec, SERVICE_WITH_FIVE_MISTAKES) == [
        "listener.port: Input should be less than or equal to 65535",
        "deployment.hooks.after_alow_traffic: unknown key; did you mean"
        " 'after_allow_traffic'? (valid: before_allow_traffic, after_allow_traffic)",
        "alarms[1].datapoints_to_alarm: datapoints_to_alarm (4) cannot exceed"
        " evaluation_periods (3)",
        "alarms[1].name: another alarm is named 'high-5xx'",
        "deployment.hooks.before_allow_traffic[0].http: an http hook before traffic runs"
        " through the test listener: set listener.test_port",
    ]


def test_a_router_file_with_five_independent_mistakes_reports_all_five(tmp_path: Path) -> None:
    text = """\
listeners:
  - {name: web, port: 0, default: {forward: [{target_group: red}]}}
  - {name: web, port: 8081, default: {forward: [{target_group: blue}]}}
target_groups:
  - {name: blue, targets: ["127.0.0.1:9001"], helth_check: {path: /}}
  - {name: blue, targets: ["127.0.0.1:9002"]}
"""
    assert problems_in_file(tmp_path, RouterConfig, text) == [
        "listeners[0].port: Input should be greater than or equal to 1",
        "target_groups[0].helth_check: unknown key; did you mean 'health_check'? (valid: name,"
        " targets, algorithm, health_check, deregistration_delay)",
        "target_groups[1].name: target group 'blue' is already defined at target_groups[0]",
        "listeners[1].name: listener 'web' is already defined at listeners[0]",
        "listeners[0].default.forward[0].target_group: unknown target group 'red' (known: blue)",
    ]


def test_an_alarm_reports_field_mistakes_with_the_checks_across_its_fields() -> None:
    data = {
        "name": "slow",
        "metric": {"source": "router", "name": "latency", "dimensions": {"listener": "web"}},
        "statistic": "p99",
        "period": "1.5s",
        "evaluation_periods": 2,
        "datapoints_to_alarm": 3,
        "threshold": 0.2,
        "comparison": "Above",
        "evaluate_low_sample_count_percentile": "ignore",
    }
    with pytest.raises(SpecError) as info:
        parse_document(AlarmSpec, data)
    assert [p.path for p in info.value.problems] == [
        "period",
        "comparison",
        "datapoints_to_alarm",
    ]


def test_a_misspelt_key_is_not_also_reported_as_the_key_it_meant_being_absent() -> None:
    data = {
        "service": "shop",
        "listener": {"port": 8080},
        "compute": {"lokal": {"command": ["app", "{port}"]}},
    }
    with pytest.raises(SpecError) as info:
        parse_document(ServiceSpec, data)
    assert [str(p) for p in info.value.problems] == [
        "compute.lokal: unknown key; did you mean 'local'? (valid: local, external, container)"
    ]


def test_a_check_reading_a_part_that_failed_is_skipped_not_guessed() -> None:
    # The env failed, so whether it passes {port} on is unknown: no "must learn its port".
    data = {
        "service": "shop",
        "listener": {"port": 8080},
        "compute": {"local": {"command": ["app"], "env": {"NOT A NAME": "{port}"}}},
    }
    with pytest.raises(SpecError) as info:
        parse_document(ServiceSpec, data)
    assert [p.path for p in info.value.problems] == ["compute.local.env.NOT A NAME"]


def test_a_rollout_reports_an_unknown_key_with_a_check_of_its_other_fields() -> None:
    data = {
        "strategy": {"steps": [{"weight": 100, "pause": "1m"}]},
        "bake_time": "5m",
        "alarm": ["shop/high-5xx"],
    }
    with pytest.raises(SpecError) as info:
        parse_document(RolloutSpec, data)
    assert [str(p) for p in info.value.problems] == [
        "alarm: unknown key; did you mean 'alarms'? (valid: strategy, bake_time, alarms)",
        "bake_time: strategy.steps[0] already waits 1m at 100 %; give the wait at 100 % as"
        " bake_time or as that pause, not both",
    ]


@pytest.mark.parametrize(
    ("key", "valid", "message"),
    [
        (
            "after_alow_traffic",
            ["before_allow_traffic", "after_allow_traffic"],
            "unknown key; did you mean 'after_allow_traffic'?"
            " (valid: before_allow_traffic, after_allow_traffic)",
        ),
        ("colour", ["port", "address"], "unknown key (valid: port, address)"),
        ("Port", ["port", "address"], "unknown key; did you mean 'port'? (valid: port, address)"),
    ],
)
def test_an_unknown_key_message_suggests_the_closest_valid_key_if_any(
    key: str, valid: list[str], message: str
) -> None:
    assert unknown_key_message(key, valid) == message
