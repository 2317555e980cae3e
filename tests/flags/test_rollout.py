"""The flag rollout as a pure function: steps, bake time, alarms revert, commands, resume."""

from __future__ import annotations

from typing import Any

import pytest

from sluicegate.deploy.strategies import Plan, Step
from sluicegate.flags.rollout import (
    Publish,
    RecordEvent,
    RolloutCommand,
    RolloutObservation,
    RolloutPhase,
    RolloutState,
    decide,
    next_step_in,
    resume,
    rollout_plan,
    start,
)
from sluicegate.spec.flag_rollout import RolloutSpec

T0 = 1_700_000_000.0
ROLLING, BAKING, DONE = RolloutPhase.ROLLING_OUT, RolloutPhase.BAKING, RolloutPhase.COMPLETED


def plan_of(**spec: Any) -> Plan:
    return rollout_plan(RolloutSpec.model_validate(spec))


# 10 % for 1 min, 50 % for 2 min, then everyone for a 5 min bake.
STEPS = plan_of(
    strategy={"steps": [{"weight": 10, "pause": "1m"}, {"weight": 50, "pause": "2m"}]},
    bake_time="5m",
)


def drive(
    state: RolloutState, plan: Plan, at: float, **obs: Any
) -> tuple[RolloutState, list[Publish | RecordEvent]]:
    """Decide until nothing changes, as the engine does within one tick."""
    actions: list[Publish | RecordEvent] = []
    o = RolloutObservation(T0 + at, **obs)
    for _ in range(20):
        d = decide(state, plan, o)
        state, actions = d.state, actions + list(d.actions)
        if not d.changed:
            break
        o = RolloutObservation(T0 + at)  # a command or an alarm is acted on once
    return state, actions


def through(plan: Plan, *times: float) -> RolloutState:
    """The state after ticks at ``times`` (seconds from the start)."""
    state = start(T0)
    for t in times:
        state, _ = drive(state, plan, t)
    return state


def events(actions: list[Publish | RecordEvent]) -> list[str]:
    return [a.kind for a in actions if isinstance(a, RecordEvent)]


@pytest.mark.parametrize(
    ("at", "phase", "percent", "step"),
    [
        (0, ROLLING, 10, 0),
        (59.9, ROLLING, 10, 0),
        (60, ROLLING, 50, 1),
        (179.9, ROLLING, 50, 1),
        (180, BAKING, 100, 2),
        (479.9, BAKING, 100, 2),
        (480, DONE, 100, 3),
    ],
)
def test_the_share_follows_the_plan_then_bakes_then_completes(
    at: float, phase: RolloutPhase, percent: int, step: int
) -> None:
    state = through(STEPS, *[t for t in (0, 59.9, 60, 179.9, 180, 479.9, 480) if t <= at])
    assert (state.phase, state.percent, state.step_index) == (phase, percent, step)


def test_each_transition_is_recorded_and_only_completion_publishes() -> None:
    state, log = start(T0), []
    for t in (0, 60, 180, 480):
        state, actions = drive(state, STEPS, t)
        log += actions
    assert events(log) == ["step", "step", "baking", "completed"]
    assert [a for a in log if isinstance(a, Publish)] == [Publish()]
    messages = [a.message for a in log if isinstance(a, RecordEvent)]
    assert messages[0] == "step 1 of 3: 10 % of users get the new version for 1m"
    assert messages[2] == "baking: everyone gets the new version, watched for 5m"


def test_a_time_between_steps_changes_nothing() -> None:
    state, _ = drive(start(T0), STEPS, 0)
    d = decide(state, STEPS, RolloutObservation(T0 + 30))
    assert d.state == state and d.actions == () and not d.changed


def test_steps_without_pauses_take_no_time_but_one_transition_per_call() -> None:
    plan = plan_of(strategy={"steps": [{"weight": 10}, {"weight": 50}]})
    first = decide(start(T0), plan, RolloutObservation(T0))
    assert first.changed and first.state.percent == 10
    state, actions = drive(start(T0), plan, 0)
    assert (state.phase, state.percent) == (DONE, 100)
    assert events(actions) == ["step", "step", "step", "completed"]


@pytest.mark.parametrize(("at", "percent_before"), [(0, 10), (100, 50), (300, 100)])
def test_a_firing_guard_alarm_reverts_everyone_while_rolling_out_or_baking(
    at: float, percent_before: int
) -> None:
    state = through(STEPS, *[t for t in (0, 60, 180, 300) if t <= at])
    state, actions = drive(state, STEPS, at + 1, alarm=("shop/high-5xx", "5xx rate 7 % > 5 %"))
    assert (state.phase, state.percent, state.alarm) == (
        RolloutPhase.ROLLED_BACK,
        0,
        "shop/high-5xx",
    )
    assert state.reason == "alarm shop/high-5xx is firing: 5xx rate 7 % > 5 %"
    [event] = [a for a in actions if isinstance(a, RecordEvent)]
    assert event.kind == "rolled_back"
    assert event.data == {
        "percent_before": percent_before,
        "alarm": "shop/high-5xx",
        "alarm_reason": "5xx rate 7 % > 5 %",
    }
    assert "everyone is back on the previous version" in event.message
    assert not any(isinstance(a, Publish) for a in actions)


@pytest.mark.parametrize(
    ("command", "phase", "reason"),
    [
        (RolloutCommand.STOP, RolloutPhase.STOPPED, "stopped by alice"),
        (RolloutCommand.ROLLBACK, RolloutPhase.ROLLED_BACK, "rolled back by alice"),
    ],
)
def test_stop_and_rollback_put_everyone_back_at_once(
    command: RolloutCommand, phase: RolloutPhase, reason: str
) -> None:
    state = through(STEPS, 0, 60)
    state, actions = drive(state, STEPS, 61, command=command, actor="alice")
    assert (state.phase, state.percent, state.reason, state.alarm) == (phase, 0, reason, None)
    assert state.ended_at == T0 + 61
    assert events(actions) == [phase.value]


@pytest.mark.parametrize(
    "obs",
    [
        {"alarm": ("a", "firing")},
        {"command": RolloutCommand.ROLLBACK},
        {"command": RolloutCommand.STOP},
        {},
    ],
)
def test_an_ended_rollout_ignores_every_observation(obs: dict[str, Any]) -> None:
    done = through(STEPS, 0, 60, 180, 480)
    assert done.phase is DONE
    d = decide(done, STEPS, RolloutObservation(T0 + 10_000, **obs))
    assert d.state == done and d.actions == () and not d.changed


def test_after_a_restart_a_rollout_carries_on_from_its_recorded_step_start() -> None:
    state = through(STEPS, 0, 60)  # 50 % since t=60, for 2 minutes
    reloaded = RolloutState.from_json(state.to_json())
    assert reloaded == state
    r = resume(reloaded)
    assert r.state == reloaded and not r.changed
    assert [(a.kind, a.message) for a in r.actions if isinstance(a, RecordEvent)] == [
        ("resumed", "resumed at 50 % (rolling out)")
    ]
    assert next_step_in(reloaded, STEPS, T0 + 150) == 30
    after, _ = drive(reloaded, STEPS, 180)  # the server was down from 61 to 180
    assert (after.phase, after.percent) == (BAKING, 100)
    assert next_step_in(after, STEPS, T0 + 180) == 300


def test_resuming_an_ended_rollout_does_nothing() -> None:
    done = through(STEPS, 0, 60, 180, 480)
    assert resume(done).actions == ()


def timeline(plan: Plan) -> list[tuple[float, int]]:
    """(seconds from the start, share) after each step is entered."""
    out, clock, weight = [], 0.0, 0
    for step in plan.steps:
        weight = step.weight if step.weight is not None else weight
        out.append((clock, weight))
        clock += step.pause or 0.0
    out.append((clock, 100))
    return out


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AllAtOnce", [(0, 100), (600, 100)]),
        ("Linear50PercentEvery30Seconds", [(0, 0), (30, 50), (60, 100), (120, 100)]),
        (
            "Linear20PercentEvery6Minutes",
            [(0, 0), (360, 20), (720, 40), (1080, 60), (1440, 80), (1800, 100), (3600, 100)],
        ),
        # Exponential G·2^N from 10 %: 10, 20, 40, 80, 100 (AWS publishes no interval; the 20
        # minutes are split evenly: 4 min each), then the 10 min bake.
        (
            "Canary10Percent20Minutes",
            [(0, 0), (240, 10), (480, 20), (720, 40), (960, 80), (1200, 100), (1800, 100)],
        ),
    ],
)
def test_appconfig_predefined_strategies(name: str, expected: list[tuple[float, int]]) -> None:
    assert timeline(plan_of(strategy=name)) == expected
    assert timeline(plan_of(strategy=f"AppConfig.{name}")) == expected


def test_bake_time_replaces_the_strategys_wait_at_100_percent() -> None:
    assert plan_of(strategy="AllAtOnce", bake_time="0s").steps == (Step(100),)
    assert plan_of(strategy="Linear50PercentEvery30Seconds", bake_time="5m").steps[-1] == Step(
        100, 300.0
    )
    state, actions = drive(start(T0), plan_of(strategy="AllAtOnce", bake_time=0), 0)
    assert state.phase is DONE and events(actions) == ["step", "completed"]


def test_codedeploy_shapes_work_for_flags_too() -> None:
    plan = plan_of(strategy={"linear": {"percent": 25, "interval": "1m"}})
    assert timeline(plan) == [(0, 25), (60, 50), (120, 75), (180, 100), (180, 100)]
    plan = plan_of(strategy={"canary": {"percent": 5, "interval": "10m"}}, bake_time="1m")
    assert timeline(plan) == [(0, 5), (600, 100), (660, 100)]


def test_the_share_never_shrinks_until_a_revert() -> None:
    plan = plan_of(strategy="Canary10Percent20Minutes")
    state, seen = start(T0), []
    for t in range(0, 1900, 7):
        state, _ = drive(state, plan, t)
        seen.append(state.percent)
    assert seen == sorted(seen) and seen[-1] == 100 and state.phase is DONE
