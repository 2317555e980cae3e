"""The deployment lifecycle, walked whole by feeding observations with a moving clock.

`Driver` plays the controller: it records each decision, applies nothing, and decides
again at once when the state changed (with the command and hook outcome consumed), as the
real controller does.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.deploy import (
    Action,
    Command,
    DeploymentState,
    HookOutcome,
    HookStage,
    Observation,
    Phase,
    Plan,
    RecordEvent,
    RouteTestListener,
    RunHook,
    SetWeights,
    StartGreen,
    StopBlue,
    StopGreen,
    decide,
    plan_for,
    resume,
    start,
)
from sluicegate.spec import ServiceSpec, StepsConfig, parse_document

BEFORE, AFTER = HookStage.BEFORE_ALLOW_TRAFFIC, HookStage.AFTER_ALLOW_TRAFFIC
T0 = 1_700_000_000.0

BASE: dict[str, Any] = {
    "service": "shop",
    "listener": {"port": 8080, "test_port": 8081},
    "compute": {"local": {"command": ["app", "--port", "{port}"], "replicas": 2}},
    "deployment": {
        "termination_wait": "5m",
        "health_timeout": "2m",
        "hooks": {
            "before_allow_traffic": [{"http": {"path": "/smoke", "timeout": "10s"}}],
            "after_allow_traffic": [{"command": ["./notify.sh"], "timeout": "1m"}],
        },
    },
}


def service(**deployment: Any) -> ServiceSpec:
    data = copy.deepcopy(BASE)
    data["deployment"].update(deployment)
    return parse_document(ServiceSpec, data)


NO_HOOKS = service(hooks={})


def steps(*items: dict[str, Any]) -> Plan:
    return plan_for(StepsConfig.model_validate({"steps": list(items)}))


class Driver:
    def __init__(self, spec: ServiceSpec, plan: Plan, *, has_blue: bool = True) -> None:
        self.spec, self.plan, self.now = spec, plan, T0
        self.state = start(T0, has_blue=has_blue)
        self.actions: list[Action] = []

    def tick(
        self,
        dt: float = 0.0,
        *,
        healthy: bool | None = None,
        ready: int | None = None,
        hook: tuple[HookStage, int, bool] | None = None,
        alarm: str | None = None,
        command: Command | None = None,
        hold: str | None = None,
        green_failed: str | None = None,
        failure: str | None = None,
    ) -> list[Action]:
        self.now += dt
        outcome = HookOutcome(hook[0], hook[1], hook[2], "detail") if hook else None
        obs = Observation(
            self.now,
            healthy,
            ready,
            outcome,
            alarm,
            command,
            "ana",
            hold,
            green_failed,
            ("line 1", "line 2") if green_failed else (),
            failure,
        )
        new: list[Action] = []
        for _ in range(1000):
            d = decide(self.state, self.plan, self.spec, obs)
            new += d.actions
            self.state = d.state
            if not d.changed:
                break
            obs = replace(obs, command=None, hook_outcome=None)
        self.actions += new
        return new

    def phase(self) -> Phase:
        return self.state.phase

    def weights(self) -> list[int]:
        return [a.green_percent for a in self.actions if isinstance(a, SetWeights)]

    def events(self) -> list[str]:
        return [a.kind for a in self.actions if isinstance(a, RecordEvent)]

    def to_shifting(self) -> None:
        """Provision, pass the health gate and the before-traffic hooks."""
        self.tick()
        self.tick(1.0, healthy=True)
        for i in range(len(self.spec.deployment.hooks.before_allow_traffic)):
            self.tick(1.0, hook=(BEFORE, i, True))


def non_events(actions: list[Action]) -> list[Action]:
    return [a for a in actions if not isinstance(a, RecordEvent)]


# --- whole deployments -------------------------------------------------------------------


def test_a_canary_deployment_walks_every_phase_and_stops_blue_after_the_wait() -> None:
    d = Driver(service(), plan_for("Canary10Percent5Minutes"))
    assert d.phase() is Phase.PROVISIONING

    assert non_events(d.tick()) == [StartGreen()]
    assert d.phase() is Phase.HEALTH_GATE
    assert d.tick(5.0, healthy=False) == []

    assert non_events(d.tick(5.0, healthy=True)) == [RouteTestListener(True), RunHook(BEFORE, 0)]
    assert d.phase() is Phase.BEFORE_ALLOW_TRAFFIC
    assert d.tick(3.0, hook=(AFTER, 0, True)) == []  # an outcome for another hook: ignored

    assert non_events(d.tick(1.0, hook=(BEFORE, 0, True))) == [SetWeights(10)]
    assert (d.phase(), d.state.green_weight) == (Phase.SHIFTING, 10)
    assert d.tick(299.0) == []

    assert non_events(d.tick(1.0)) == [SetWeights(100), RunHook(AFTER, 0)]
    assert (d.phase(), d.state.green_weight) == (Phase.AFTER_ALLOW_TRAFFIC, 100)

    assert non_events(d.tick(2.0, hook=(AFTER, 0, True))) == []
    assert d.phase() is Phase.TERMINATION_WAIT
    assert d.tick(299.0) == []

    assert non_events(d.tick(1.0)) == [StopBlue()]
    assert d.phase() is Phase.SUCCEEDED
    assert d.weights() == [10, 100]
    assert d.events()[-1] == "succeeded"
    assert d.tick(1e6, alarm="errors", command=Command.ROLLBACK) == []  # terminal: no-op


def test_a_linear_deployment_adds_10_percent_every_minute() -> None:
    d = Driver(NO_HOOKS, plan_for("Linear10PercentEvery1Minute"))
    d.to_shifting()
    seen = [d.state.green_weight]
    for _ in range(9):
        d.tick(59.0)
        assert d.state.green_weight == seen[-1]  # not a second early
        d.tick(1.0)
        seen.append(d.state.green_weight)
    assert seen == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert d.phase() is Phase.TERMINATION_WAIT  # no after hooks: straight on


def test_custom_steps_hold_at_a_manual_gate_until_promoted() -> None:
    plan = steps({"weight": 5, "pause": "30s"}, {"pause": "until_promoted"}, {"weight": 50})
    d = Driver(NO_HOOKS, plan)
    d.to_shifting()
    d.tick(30.0)
    assert (d.phase(), d.state.green_weight) == (Phase.PAUSED_UNTIL_PROMOTED, 5)
    d.tick(7 * 86400.0)
    assert d.phase() is Phase.PAUSED_UNTIL_PROMOTED  # a gate has no timeout

    d.tick(1.0, command=Command.PROMOTE)
    # 50 % has no pause, so the implicit last step (100 %) follows at once.
    assert d.weights() == [5, 50, 100]
    assert d.phase() is Phase.TERMINATION_WAIT
    assert "promoted" in d.events()


def test_promote_ends_a_timed_pause_and_promote_full_goes_to_all_traffic() -> None:
    plan = steps({"weight": 5, "pause": "1h"}, {"weight": 25, "pause": "1h"}, {"weight": 100})
    d = Driver(NO_HOOKS, plan)
    d.to_shifting()
    d.tick(1.0, command=Command.PROMOTE)
    assert (d.state.step_index, d.state.green_weight) == (1, 25)
    d.tick(1.0, command=Command.PROMOTE_FULL)
    assert d.weights() == [5, 25, 100]
    assert d.phase() is Phase.TERMINATION_WAIT


def test_a_timed_step_without_a_verdict_waits_with_one_event_until_the_verdict_comes() -> None:
    plan = steps({"weight": 10, "pause": "30s"}, {"weight": 100})
    d = Driver(NO_HOOKS, plan)
    d.to_shifting()
    d.tick(31.0, hold="no verdict yet")
    d.tick(10.0, hold="no verdict yet")
    assert (d.phase(), d.state.green_weight, d.state.holding) == (
        Phase.SHIFTING,
        10,
        "no verdict yet",
    )
    assert d.events().count("holding") == 1
    d.tick(1.0)  # the guard has a verdict now
    assert d.weights() == [10, 100] and d.state.holding is None


def test_a_hold_never_delays_a_step_before_its_pause_is_over_nor_blocks_promote() -> None:
    plan = steps({"weight": 10, "pause": "30s"}, {"weight": 50, "pause": "30s"}, {"weight": 100})
    d = Driver(NO_HOOKS, plan)
    d.to_shifting()
    d.tick(5.0, hold="no verdict yet")
    assert "holding" not in d.events()
    d.tick(1.0, hold="no verdict yet", command=Command.PROMOTE)
    assert d.weights() == [10, 50]


def test_promote_during_the_termination_wait_stops_blue_now() -> None:
    d = Driver(NO_HOOKS, plan_for("AllAtOnce"))
    d.to_shifting()
    assert d.phase() is Phase.TERMINATION_WAIT
    assert non_events(d.tick(1.0, command=Command.PROMOTE)) == [StopBlue()]
    assert d.phase() is Phase.SUCCEEDED


# --- failures ----------------------------------------------------------------------------


ROLLBACK = [SetWeights(0), RouteTestListener(False), StopGreen()]


def test_a_failing_before_traffic_hook_rolls_back_before_any_production_traffic() -> None:
    d = Driver(service(), plan_for("Canary10Percent5Minutes"))
    d.tick()
    d.tick(1.0, healthy=True)
    assert non_events(d.tick(1.0, hook=(BEFORE, 0, False))) == ROLLBACK
    assert d.phase() is Phase.ROLLED_BACK
    assert d.state.reason == "before_allow_traffic hook 1 of 1 failed: detail"
    assert d.events()[-2:] == ["hook_failed", "rolled_back"]
    assert d.weights() == [0]


def test_a_failing_after_traffic_hook_rolls_back_all_traffic() -> None:
    d = Driver(service(), plan_for("AllAtOnce"))
    d.to_shifting()
    assert d.phase() is Phase.AFTER_ALLOW_TRAFFIC
    assert non_events(d.tick(1.0, hook=(AFTER, 0, False))) == ROLLBACK
    assert (d.phase(), d.state.green_weight) == (Phase.ROLLED_BACK, 0)


def test_a_hook_that_never_reports_times_out_after_its_timeout_and_the_grace() -> None:
    d = Driver(service(), plan_for("AllAtOnce"))
    d.tick()
    d.tick(1.0, healthy=True)
    d.tick(14.9)  # 10 s timeout + 5 s grace
    assert d.phase() is Phase.BEFORE_ALLOW_TRAFFIC
    d.tick(0.1)
    assert d.phase() is Phase.ROLLED_BACK
    assert d.state.reason == "before_allow_traffic hook 1 of 1 gave no result within 10s"


def test_a_health_gate_timeout_fails_the_deployment_and_stops_green() -> None:
    d = Driver(service(), plan_for("AllAtOnce"))
    d.tick()
    d.tick(119.0, healthy=False, ready=1)
    assert d.phase() is Phase.HEALTH_GATE
    assert non_events(d.tick(1.0, healthy=False, ready=1)) == ROLLBACK
    assert d.phase() is Phase.FAILED
    assert d.state.reason == "green was not healthy within 2m (1/2 replicas ready)"


def test_a_green_that_cannot_start_fails_at_once_without_waiting_for_the_health_timeout() -> None:
    d = Driver(service(), plan_for("AllAtOnce"))
    d.tick()
    assert non_events(d.tick(0.5, green_failed="cannot run './nope': [Errno 2]")) == ROLLBACK
    assert d.phase() is Phase.FAILED
    assert d.state.reason == "green cannot run: cannot run './nope': [Errno 2]"
    failed = [a for a in d.actions if isinstance(a, RecordEvent) and a.kind == "green_failed"]
    assert failed[0].logs == ("line 1", "line 2")


def test_a_green_that_gives_up_during_the_shift_rolls_back_to_blue() -> None:
    d = Driver(NO_HOOKS, plan_for("Linear10PercentEvery1Minute"))
    d.to_shifting()
    assert non_events(d.tick(1.0, green_failed="replica 0 crashed 5 times")) == ROLLBACK
    assert (d.phase(), d.weights()) == (Phase.ROLLED_BACK, [10, 0])


def test_a_first_deployment_serving_alone_is_not_stopped_for_a_crashing_replica() -> None:
    d = Driver(service(), plan_for("AllAtOnce"), has_blue=False)
    d.to_shifting()
    assert (d.phase(), d.state.green_weight) == (Phase.AFTER_ALLOW_TRAFFIC, 100)
    assert d.tick(1.0, green_failed="replica 1 crashed 5 times") == []
    assert d.phase() is Phase.AFTER_ALLOW_TRAFFIC  # nothing to go back to


def test_a_failure_to_apply_ends_the_deployment_failed_from_any_phase() -> None:
    d = Driver(NO_HOOKS, plan_for("Linear10PercentEvery1Minute"))
    d.to_shifting()
    reason = "router refused: listener.port: cannot listen on 127.0.0.1:8080"
    assert non_events(d.tick(1.0, failure=reason)) == ROLLBACK
    assert (d.phase(), d.state.reason) == (Phase.FAILED, reason)


def test_stop_works_before_green_is_healthy() -> None:
    d = Driver(service(), plan_for("AllAtOnce"), has_blue=False)
    d.tick()
    d.tick(1.0, healthy=False)
    assert non_events(d.tick(1.0, command=Command.STOP)) == [StopGreen()]
    assert d.phase() is Phase.STOPPED


def test_an_alarm_while_shifting_rolls_back_at_once() -> None:
    d = Driver(NO_HOOKS, plan_for("Linear10PercentEvery1Minute"))
    d.to_shifting()
    d.tick(60.0)
    assert non_events(d.tick(1.0, alarm="shop-5xx")) == ROLLBACK
    assert d.phase() is Phase.ROLLED_BACK
    assert d.state.reason == "guard fired: shop-5xx"
    assert d.weights() == [10, 20, 0]


def test_an_alarm_at_a_manual_gate_rolls_back() -> None:
    d = Driver(NO_HOOKS, steps({"weight": 5, "pause": "until_promoted"}))
    d.to_shifting()
    assert d.phase() is Phase.PAUSED_UNTIL_PROMOTED
    d.tick(1.0, alarm="latency", command=Command.PROMOTE)  # the alarm wins over a promote
    assert d.phase() is Phase.ROLLED_BACK
    assert d.weights() == [5, 0]


def test_an_alarm_during_the_termination_wait_still_rolls_back_because_blue_runs() -> None:
    d = Driver(NO_HOOKS, plan_for("AllAtOnce"))
    d.to_shifting()
    d.tick(299.0)
    assert non_events(d.tick(0.5, alarm="errors")) == ROLLBACK
    assert d.phase() is Phase.ROLLED_BACK
    assert StopBlue() not in d.actions


def test_an_alarm_before_production_traffic_is_not_the_new_versions_doing() -> None:
    d = Driver(service(), plan_for("AllAtOnce"))
    d.tick()
    d.tick(1.0, healthy=False, alarm="errors")
    assert d.phase() is Phase.HEALTH_GATE
    d.tick(1.0, healthy=True, alarm="errors")
    assert d.phase() is Phase.BEFORE_ALLOW_TRAFFIC


# --- manual control ------------------------------------------------------------------------


def test_manual_rollback_mid_shift_returns_all_traffic_to_blue() -> None:
    d = Driver(NO_HOOKS, plan_for("Canary10Percent15Minutes"))
    d.to_shifting()
    assert non_events(d.tick(60.0, command=Command.ROLLBACK)) == ROLLBACK
    assert (d.phase(), d.state.reason) == (Phase.ROLLED_BACK, "rolled back by ana")


def test_stop_also_returns_traffic_to_blue_and_ends_stopped() -> None:
    d = Driver(NO_HOOKS, plan_for("Canary10Percent15Minutes"))
    d.to_shifting()
    assert non_events(d.tick(1.0, command=Command.STOP)) == ROLLBACK
    assert (d.phase(), d.state.reason) == (Phase.STOPPED, "stopped by ana")


def test_a_command_that_means_nothing_in_a_phase_is_ignored_with_an_event() -> None:
    d = Driver(service(), plan_for("AllAtOnce"))
    d.tick()
    acts = d.tick(1.0, healthy=False, command=Command.PROMOTE)
    assert acts == [
        RecordEvent(
            "command_ignored", "promote from ana ignored: nothing to promote during health gate"
        )
    ]
    assert d.phase() is Phase.HEALTH_GATE
    d.tick(119.0, command=Command.PROMOTE_FULL)  # an ignored command does not stop the clock
    assert d.phase() is Phase.FAILED


# --- the first deployment of a service -------------------------------------------------------


def test_the_first_deployment_sends_all_traffic_at_once_and_keeps_nothing_to_stop() -> None:
    d = Driver(service(), plan_for("Linear10PercentEvery3Minutes"), has_blue=False)
    d.tick()
    d.tick(1.0, healthy=True)
    d.tick(1.0, hook=(BEFORE, 0, True))
    assert d.weights() == [100]  # the plan is not used
    d.tick(1.0, alarm="errors")  # nothing to roll back to
    assert d.phase() is Phase.AFTER_ALLOW_TRAFFIC
    acts = d.tick(1.0, command=Command.ROLLBACK)
    assert [a.kind for a in acts if isinstance(a, RecordEvent)] == ["command_refused"]
    d.tick(1.0, hook=(AFTER, 0, True))
    assert d.phase() is Phase.SUCCEEDED
    assert StopBlue() not in d.actions


def test_a_first_deployment_that_never_gets_healthy_just_stops_green() -> None:
    d = Driver(NO_HOOKS, plan_for("AllAtOnce"), has_blue=False)
    d.tick()
    assert non_events(d.tick(120.0, healthy=False)) == [StopGreen()]
    assert d.phase() is Phase.FAILED


# --- resuming after a crash --------------------------------------------------------------------


def test_resume_mid_shift_reapplies_green_and_the_recorded_weight() -> None:
    d = Driver(service(), plan_for("Canary10Percent5Minutes"))
    d.to_shifting()
    r = resume(d.state, d.spec, d.now + 30)
    assert r.actions == (StartGreen(), RouteTestListener(True), SetWeights(10))
    assert r.state == d.state  # the pause keeps its recorded start


def test_resume_in_a_hook_runs_it_again_with_a_fresh_timeout() -> None:
    d = Driver(service(), plan_for("AllAtOnce"))
    d.tick()
    d.tick(1.0, healthy=True)
    r = resume(d.state, d.spec, d.now + 600)
    assert r.actions == (StartGreen(), RouteTestListener(True), RunHook(BEFORE, 0))
    assert r.state.step_started_at == d.now + 600


def test_resume_of_ended_deployments_finishes_their_cleanup() -> None:
    spec = service()
    done = DeploymentState(Phase.SUCCEEDED, True, T0, green_weight=100)
    assert resume(done, spec, T0).actions == (SetWeights(100), RouteTestListener(True), StopBlue())
    back = DeploymentState(Phase.ROLLING_BACK, True, T0, ending=Phase.ROLLED_BACK)
    assert resume(back, spec, T0).actions == tuple(ROLLBACK)


# --- totality ------------------------------------------------------------------------------------

observations = st.fixed_dictionaries(
    {
        "dt": st.floats(0, 400),
        "healthy": st.sampled_from([True, False, None]),
        "hook": st.none()
        | st.tuples(st.sampled_from(list(HookStage)), st.integers(0, 2), st.booleans()),
        "alarm": st.none() | st.just("errors"),
        "command": st.none() | st.sampled_from(list(Command)),
    }
)
plans = st.sampled_from(
    [
        plan_for("AllAtOnce"),
        plan_for("Canary10Percent5Minutes"),
        plan_for("Linear10PercentEvery1Minute"),
        steps({"weight": 5, "pause": "30s"}, {"pause": "until_promoted"}, {"weight": 50}),
        steps({"weight": 0, "pause": "1s"}, {"weight": 100, "pause": "until_promoted"}),
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    plan=plans,
    spec=st.sampled_from([service(), NO_HOOKS]),
    has_blue=st.booleans(),
    sequence=st.lists(observations, max_size=40),
)
def test_any_observation_sequence_is_handled_and_time_plus_promotes_end_it(
    plan: Plan, spec: ServiceSpec, has_blue: bool, sequence: list[dict[str, Any]]
) -> None:
    d = Driver(spec, plan, has_blue=has_blue)
    for obs in sequence:
        d.tick(obs.pop("dt"), **obs)
        s = d.state
        assert 0 <= s.green_weight <= 100
        if s.phase in (Phase.ROLLED_BACK, Phase.STOPPED) and has_blue:
            assert s.green_weight == 0
    for _ in range(100):  # the clock runs on; a human promotes whatever waits for one
        if d.phase().terminal:
            break
        d.tick(3600.0, command=Command.PROMOTE)
    assert d.phase().terminal, d.state


# --- giving up ---------------------------------------------------------------------------


def test_abandon_rolls_back_to_fail_from_a_readable_or_an_unreadable_state() -> None:
    from sluicegate.deploy import abandon

    d = Driver(NO_HOOKS, plan_for("Linear10PercentEvery1Minute"))
    d.to_shifting()
    given_up = abandon(d.state, has_blue=True, now=T0 + 99, reason="router gone")
    assert (given_up.phase, given_up.ending, given_up.green_weight, given_up.reason) == (
        Phase.ROLLING_BACK,
        Phase.FAILED,
        0,
        "router gone",
    )
    assert abandon(given_up, has_blue=True, now=T0 + 100, reason="again") == given_up
    fresh = abandon(None, has_blue=False, now=T0, reason="unreadable")
    assert (fresh.phase, fresh.ending, fresh.has_blue) == (Phase.ROLLING_BACK, Phase.FAILED, False)
    actions = resume(fresh, NO_HOOKS, T0).actions
    assert actions == (StopGreen(),)
