"""The overview's rows, the needs-action rule, weight over time and measured weight."""

from __future__ import annotations

from typing import Any

from sluicegate.console._model import (
    actual_weight,
    needs_action,
    overview_row,
    second_series,
    weight_history,
)
from sluicegate.monitor.sources import Second
from sluicegate.store import Event


def event(i: int, kind: str, message: str, at: float) -> Event:
    return Event(id=i, at=at, actor="controller", kind=kind, subject="d-1", message=message,
                 data={})  # fmt: skip


def view(**kw: Any) -> dict[str, Any]:
    base = {
        "id": "d-1", "revision": "v2", "from_revision": "v1", "phase": "shifting",
        "active": True, "holding": None, "reason": None, "green_weight": 20,
        "step_index": 0, "step_count": 3,
    }  # fmt: skip
    return {**base, **kw}


def test_needs_action_names_holding_waiting_for_promote_and_failed_only() -> None:
    assert needs_action(view(holding="no verdict yet")) == "holding: no verdict yet"
    assert needs_action(view(phase="paused_until_promoted")) == "waiting for promote"
    assert needs_action(view(phase="failed", active=False, reason="hook failed")) == (
        "failed: hook failed"
    )
    assert needs_action(view()) is None
    assert needs_action(view(phase="rolled_back", active=False)) is None
    assert needs_action(None) is None


def test_an_active_deployment_row_shows_stable_in_flight_step_and_weights() -> None:
    last = event(7, "deployment.step", "step 1 of 3: green 20%", 100.0)
    row = overview_row("shop", "v1", view(), actual=18.5, verdict=None, last=last)
    assert (row.stable, row.in_flight, row.step, row.set_weight, row.actual_weight) == (
        "v1", "v2", "1/3", 20, 18.5,
    )  # fmt: skip
    assert row.last_event == "deployment.step: step 1 of 3: green 20%"


def test_an_ended_deployment_row_shows_the_serving_revision_and_no_weight() -> None:
    ended = view(active=False, phase="succeeded", green_weight=100, step_index=3)
    row = overview_row("shop", "v2", ended, actual=50.0, verdict=None, last=None)
    assert (row.stable, row.in_flight, row.set_weight, row.actual_weight) == ("v2", None, 0, None)
    assert row.step == "3 steps" and row.last_event == "-"
    empty = overview_row("new", None, None, actual=None, verdict=None, last=None)
    assert empty.phase == "no deployment" and empty.deployment is None


def test_weight_history_steps_up_and_falls_to_zero_on_rollback() -> None:
    events = [
        event(1, "deployment.created", "deploy shop v1 -> v2", 10),
        event(2, "deployment.healthy", "green is healthy", 11),
        event(3, "deployment.step", "step 1 of 3: green 20% for 2s", 12),
        event(4, "deployment.step", "step 2 of 3: green 50%", 14),
        event(5, "deployment.rollback", "guard fired: ...", 15),
    ]
    assert weight_history(events) == [
        (10, 0.0), (12, 0.0), (12, 20.0), (14, 20.0), (14, 50.0), (15, 50.0), (15, 0.0),
    ]  # fmt: skip
    promoted = [
        event(1, "deployment.created", "", 1),
        event(2, "deployment.promoted", "promoted", 2),
    ]
    assert weight_history(promoted) == [(1, 0.0)]  # promote past a gate is not all traffic
    shifted = [*promoted, event(3, "deployment.traffic_shifted", "all traffic on green", 3)]
    assert weight_history(shifted)[-1] == (3, 100.0)


def test_measured_weight_counts_the_newest_seconds_with_traffic() -> None:
    green = [Second(t, r, 0, 0) for t, r in ((1, 50), (2, 10), (3, 10), (4, 0))]
    blue = [Second(t, r, 0, 0) for t, r in ((1, 50), (2, 30), (3, 30), (4, 0))]
    assert actual_weight(green, blue, last=2) == 25.0
    assert actual_weight([], []) is None


def test_second_series_give_error_share_and_gaps_for_silent_seconds() -> None:
    green = [Second(1, 10, 5, 5, {40: 10}), Second(2, 0, 0, 0)]
    series = second_series(green, [])
    errors = series["errors"][0].points
    assert errors == [(1, 50.0), (2, None)]
    p50 = series["p50"][0].points
    assert p50[0][1] is not None and p50[1][1] is None
