"""Health thresholds count consecutive results, as ALB does."""

from __future__ import annotations

from sluicegate.router._health import HealthState
from sluicegate.spec import HealthCheckSpec

SPEC = HealthCheckSpec(healthy_threshold=2, unhealthy_threshold=3)


def test_target_turns_unhealthy_after_the_threshold_of_consecutive_failures() -> None:
    state = HealthState()
    assert [state.observe(False, SPEC, "status 500") for _ in range(3)] == [False, False, True]
    assert not state.healthy
    assert state.last_error == "status 500"


def test_a_success_between_failures_resets_the_count() -> None:
    state = HealthState()
    for ok in (False, False, True, False, False):
        state.observe(ok, SPEC)
    assert state.healthy


def test_target_comes_back_after_the_healthy_threshold() -> None:
    state = HealthState(healthy=False)
    assert state.observe(True, SPEC) is False
    assert state.observe(True, SPEC) is True
    assert state.healthy and state.last_error == ""
