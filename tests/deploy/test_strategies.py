"""Strategies are step plans: which share the new version gets, and when.

The predefined plans carry CodeDeploy's and AppConfig's names and must give exactly their
weights and timings; custom ones follow the same rules.
"""

from __future__ import annotations

import pytest

from sluicegate.deploy import (
    APPCONFIG_PRESETS,
    CODEDEPLOY_PRESETS,
    Plan,
    Step,
    describe,
    plan_for,
)
from sluicegate.spec import PREDEFINED_CONFIGS, StepsConfig
from sluicegate.spec.service import CanaryConfig, LinearConfig


def schedule(plan: Plan) -> list[tuple[float, int]]:
    """(seconds from the start, weight) for each step that sets a weight."""
    out, clock = [], 0.0
    for step in plan.steps:
        if step.weight is not None:
            out.append((clock, step.weight))
        clock += step.pause or 0.0
    return out


# --- CodeDeploy ECS predefined configs ----------------------------------------------------


def test_every_name_the_spec_accepts_has_a_codedeploy_plan() -> None:
    assert tuple(CODEDEPLOY_PRESETS) == PREDEFINED_CONFIGS


def test_all_at_once_sends_everything_immediately() -> None:
    plan = plan_for("AllAtOnce")
    assert plan.steps == (Step(100),)
    assert plan.total_duration == 0.0


@pytest.mark.parametrize(
    ("name", "minutes"), [("Canary10Percent5Minutes", 5), ("Canary10Percent15Minutes", 15)]
)
def test_canary_presets_send_10_percent_then_the_rest_after_the_interval(
    name: str, minutes: int
) -> None:
    plan = plan_for(name)
    assert plan.name == name
    assert schedule(plan) == [(0.0, 10), (minutes * 60.0, 100)]
    assert plan.total_duration == minutes * 60.0
    assert plan.manual_gates == 0


@pytest.mark.parametrize(
    ("name", "minutes"),
    [("Linear10PercentEvery1Minute", 1), ("Linear10PercentEvery3Minutes", 3)],
)
def test_linear_presets_add_10_percent_every_interval_starting_at_once(
    name: str, minutes: int
) -> None:
    plan = plan_for(name)
    interval = minutes * 60.0
    assert schedule(plan) == [(k * interval, 10 * (k + 1)) for k in range(10)]
    assert plan.total_duration == 9 * interval  # 100 % is reached after nine intervals


# --- AppConfig strategies (the same engine for flag rollouts) ------------------------------


def test_appconfig_linear_50_percent_every_30_seconds_then_bakes_a_minute() -> None:
    plan = APPCONFIG_PRESETS["AppConfig.Linear50PercentEvery30Seconds"]
    assert schedule(plan) == [(30.0, 50), (60.0, 100)]
    assert plan.steps[-1] == Step(100, 60.0)  # the final bake, alarms still watched
    assert plan.total_duration == 120.0


def test_appconfig_linear_20_percent_every_6_minutes_over_30_minutes_bakes_30() -> None:
    plan = APPCONFIG_PRESETS["AppConfig.Linear20PercentEvery6Minutes"]
    assert schedule(plan) == [(360.0, 20), (720.0, 40), (1080.0, 60), (1440.0, 80), (1800.0, 100)]
    assert plan.steps[-1].pause == 1800.0
    assert plan.total_duration == 3600.0


def test_appconfig_canary_grows_exponentially_over_20_minutes_and_bakes_10() -> None:
    plan = APPCONFIG_PRESETS["AppConfig.Canary10Percent20Minutes"]
    # growth factor 10, G·2^N: 10, 20, 40, 80, then all; 20 minutes split evenly.
    assert schedule(plan) == [(240.0, 10), (480.0, 20), (720.0, 40), (960.0, 80), (1200.0, 100)]
    assert plan.steps[-1].pause == 600.0
    assert plan.total_duration == 1800.0


def test_appconfig_all_at_once_still_bakes_10_minutes() -> None:
    plan = APPCONFIG_PRESETS["AppConfig.AllAtOnce"]
    assert plan.steps == (Step(100, 600.0),)
    assert plan_for("AppConfig.AllAtOnce") is plan


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"Canary10Percent5Minutes.*AppConfig\.AllAtOnce"):
        plan_for("Canary50Percent1Second")


# --- custom plans --------------------------------------------------------------------------


def test_custom_canary_has_the_given_percent_and_interval() -> None:
    config = CanaryConfig.model_validate({"canary": {"percent": 25, "interval": "45m"}})
    plan = plan_for(config)
    assert plan.name == "Canary25Percent45m"
    assert schedule(plan) == [(0.0, 25), (2700.0, 100)]


def test_custom_linear_ends_with_a_smaller_increment_when_percent_does_not_divide_100() -> None:
    config = LinearConfig.model_validate({"linear": {"percent": 30, "interval": "2s"}})
    plan = plan_for(config)
    assert schedule(plan) == [(0.0, 30), (2.0, 60), (4.0, 90), (6.0, 100)]
    assert plan.total_duration == 6.0


def test_explicit_steps_keep_pauses_and_manual_gates() -> None:
    config = StepsConfig.model_validate(
        {
            "steps": [
                {"weight": 5, "pause": "30s"},
                {"weight": 25, "pause": "2m"},
                {"pause": "until_promoted"},
                {"weight": 100},
            ]
        }
    )
    plan = plan_for(config)
    assert plan.steps == (Step(5, 30.0), Step(25, 120.0), Step(None, None, True), Step(100))
    assert plan.implicit_final_step is False
    assert plan.total_duration == 150.0
    assert plan.manual_gates == 1


def test_explicit_steps_that_stop_short_get_a_last_step_to_100() -> None:
    config = StepsConfig.model_validate({"steps": [{"weight": 20, "pause": "1m"}]})
    plan = plan_for(config)
    assert plan.steps == (Step(20, 60.0), Step(100))
    assert plan.implicit_final_step is True


def test_a_plan_that_does_not_reach_100_or_goes_down_is_refused() -> None:
    with pytest.raises(ValueError, match="reach weight 100"):
        Plan("x", (Step(50),))
    with pytest.raises(ValueError, match="below"):
        Plan("x", (Step(50), Step(20), Step(100)))
    with pytest.raises(ValueError, match="not both"):
        Step(10, 5.0, until_promoted=True)


# --- timing questions -----------------------------------------------------------------------


def test_weight_at_follows_the_schedule_and_a_gate_holds_its_weight() -> None:
    plan = plan_for("Canary10Percent5Minutes")
    assert [plan.weight_at(t) for t in (0.0, 299.9, 300.0, 1e9)] == [10, 10, 100, 100]
    gated = plan_for(
        StepsConfig.model_validate({"steps": [{"weight": 5, "pause": "until_promoted"}]})
    )
    assert gated.weight_at(1e9) == 5


def test_worst_case_time_to_rollback_is_detection_plus_one_check() -> None:
    plan = plan_for("Linear10PercentEvery1Minute")
    assert plan.worst_case_time_to_rollback(60.0) == 61.0
    assert plan.worst_case_time_to_rollback(30.0, check_interval=5.0) == 35.0
    # The bad revision had 20 % of traffic when the 61 s rollback came.
    assert plan.weight_at_rollback(60.0) == 20
    with pytest.raises(ValueError):
        plan.worst_case_time_to_rollback(-1.0)


def test_blast_radius_counts_from_the_first_traffic_not_the_plan_start() -> None:
    plan = APPCONFIG_PRESETS["AppConfig.Linear20PercentEvery6Minutes"]
    assert plan.first_traffic_at == 360.0
    assert plan.weight_at_rollback(60.0) == 20


# --- describe -------------------------------------------------------------------------------


def test_describe_prints_each_step_with_its_offset_and_the_totals() -> None:
    lines = describe(plan_for("Canary10Percent5Minutes"), detection_seconds=60.0)
    assert lines == [
        "Plan Canary10Percent5Minutes:",
        "   1.     +0s  new version 10%, then wait 5m",
        "   2.     +5m  new version 100%",
        "Total: 5m",
        "Worst-case time to rollback: 61s (alarm detection 1m + 1s check);"
        " the new version has 10% by then",
    ]


def test_describe_names_manual_gates_and_the_added_last_step() -> None:
    config = StepsConfig.model_validate(
        {"steps": [{"weight": 5, "pause": "30s"}, {"pause": "until_promoted"}, {"weight": 50}]}
    )
    assert describe(plan_for(config)) == [
        "Plan Custom steps:",
        "   1.     +0s  new version 5%, then wait 30s",
        "   2.    +30s  hold, then wait until promoted",
        "   3.    +30s  new version 50%",
        "   4.    +30s  new version 100% (added: the last step sends all traffic)",
        "Total: 30s plus 1 manual gate",
    ]
