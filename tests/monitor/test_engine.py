"""The alarm loop over a real store and a push source fed values, with a manual clock."""

from __future__ import annotations

import asyncio
import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluicegate.clock import ManualClock
from sluicegate.monitor._alarm_records import sync_alarms
from sluicegate.monitor._push_batch import Observation
from sluicegate.monitor._router_datapoints import RouterDatapoints
from sluicegate.monitor.alarms import AlarmState
from sluicegate.monitor.engine import AlarmEngine
from sluicegate.monitor.guard_set import AlarmGuards
from sluicegate.monitor.series import PushSource, SeriesStore
from sluicegate.monitor.sources import Sources
from sluicegate.router import RouterClient
from sluicegate.spec import ServiceSpec
from sluicegate.store import Deployment, Store
from tests._support import free_port

T0 = 1_700_000_000.0  # a whole 10 s boundary

ERRORS: dict[str, Any] = {
    "name": "errors",
    "metric": {"source": "push", "name": "checkout_errors", "dimensions": {"service": "{service}"}},
    "statistic": "Sum",
    "period": 10,
    "evaluation_periods": 3,
    "datapoints_to_alarm": 2,
    "threshold": 5,
    "comparison": "GreaterThanThreshold",
}


def spec(*alarms: dict[str, Any]) -> ServiceSpec:
    return ServiceSpec.model_validate(
        {
            "service": "shop",
            "listener": {"port": 8080},
            "compute": {"local": {"command": [sys.executable, "app.py", "--port", "{port}"]}},
            "alarms": [copy.deepcopy(a) for a in alarms],
        }
    )


class World:
    def __init__(self, tmp: Path) -> None:
        self.clock = ManualClock(T0)
        self.store = Store.open(tmp, clock=self.clock)
        self.series = SeriesStore()
        self.engine = AlarmEngine(self.store, Sources(push=PushSource(self.series)), self.clock)

    def apply(self, *alarms: dict[str, Any]) -> None:
        s = spec(*alarms)
        self.store.services.put("shop", s.model_dump(mode="json"))
        sync_alarms(self.store, s, "alice")

    def push(
        self, name: str, value: float, dims: dict[str, str] | None = None, at: float | None = None
    ) -> None:
        t = int(self.clock.now() if at is None else at)
        self.series.put(
            [Observation(name, dims or {"service": "shop"}, t, [value])], now=self.clock.now()
        )

    def tick_to(self, t: float) -> list[Any]:
        """Advance the clock to ``t`` a second at a time, ticking each second."""
        out = []
        while self.clock.now() < t:
            self.clock.advance(1)
            out += asyncio.run(self.engine.tick(self.clock.now()))
        return out

    def state(self, name: str = "errors") -> str:
        return self.store.alarms.get("shop", name).state

    def history(self, name: str = "errors") -> list[tuple[str, str, str]]:
        return [
            (e.data["old_state"], e.data["new_state"], e.message)
            for e in self.store.events.list(subject=f"shop/{name}", kind="alarm.state")
        ]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.store.close()


def test_a_breach_in_m_of_n_periods_is_alarm_and_every_transition_is_an_event(
    world: World,
) -> None:
    world.apply(ERRORS)
    world.push("checkout_errors", 1)
    world.tick_to(T0 + 10)
    assert world.state() == "OK"  # 1 real datapoint, not breaching, missing treated missing
    world.push("checkout_errors", 9, at=T0 + 12)
    world.clock.advance(3)
    world.tick_to(T0 + 20)
    assert world.state() == "OK"
    world.push("checkout_errors", 7, at=T0 + 25)
    world.tick_to(T0 + 30)
    assert world.state() == "ALARM"
    world.push("checkout_errors", 0, at=T0 + 31)
    world.push("checkout_errors", 0, at=T0 + 45)
    world.tick_to(T0 + 50)
    assert world.state() == "OK"
    history = world.history()
    assert [(old, new) for old, new, _ in history] == [
        ("INSUFFICIENT_DATA", "OK"),
        ("OK", "ALARM"),
        ("ALARM", "OK"),
    ]
    alarm_reason = history[1][2]
    assert alarm_reason.startswith("Threshold Crossed: 2 out of the last")
    assert "[7.0 (" in alarm_reason and "9.0 (" in alarm_reason
    [event] = [
        e
        for e in world.store.events.list(subject="shop/errors", kind="alarm.state")
        if e.data["new_state"] == "ALARM"
    ]
    assert [p["value"] for p in event.data["datapoints"]] == [1.0, 9.0, 7.0]
    stored = world.store.alarms.get("shop", "errors")
    assert stored.evaluation["datapoints"][-1]["value"] == 0.0


def test_an_alarm_is_evaluated_once_per_closed_period(world: World) -> None:
    world.apply(ERRORS)
    world.tick_to(T0 + 9)
    evaluated = world.store.alarms.get("shop", "errors").evaluated_at
    assert evaluated == T0 + 1  # the first tick: the period ending at T0 closed before
    world.tick_to(T0 + 19)
    assert world.store.alarms.get("shop", "errors").evaluated_at == T0 + 10
    world.tick_to(T0 + 20)
    assert world.store.alarms.get("shop", "errors").evaluated_at == T0 + 20


def test_no_data_at_all_stays_insufficient_without_an_event(world: World) -> None:
    world.apply(ERRORS)
    world.tick_to(T0 + 40)
    alarm = world.store.alarms.get("shop", "errors")
    assert alarm.state == "INSUFFICIENT_DATA"
    assert alarm.reason.startswith("Insufficient Data: no datapoints")
    assert world.history() == []


def test_set_state_stands_until_an_evaluation_a_period_later_and_is_an_event(
    world: World,
) -> None:
    world.apply(ERRORS)
    world.push("checkout_errors", 1)
    world.tick_to(T0 + 10)
    assert world.state() == "OK"
    world.clock.advance(2)  # T0 + 12
    world.engine.set_state("shop", "errors", "ALARM", "testing the rollback", "alice")
    world.tick_to(T0 + 21)  # the period ending at T0 + 20 closes before the hold ends
    assert world.state() == "ALARM"
    world.tick_to(T0 + 22)  # T0 + 12 + 10: the hold is over, the next tick evaluates
    assert world.state() == "OK"
    events = world.store.events.list(subject="shop/errors", kind="alarm.state")
    forced = [e for e in events if e.data.get("forced")]
    assert [(e.actor, e.message, e.data["new_state"]) for e in forced] == [
        ("alice", "testing the rollback", "ALARM")
    ]
    assert events[-1].data == {**events[-1].data, "old_state": "ALARM", "new_state": "OK"}


def test_set_state_holds_at_least_a_second_for_a_one_second_period(world: World) -> None:
    world.apply({**ERRORS, "period": 1, "evaluation_periods": 1, "datapoints_to_alarm": 1})
    world.tick_to(T0 + 1)
    world.clock.advance(0.5)
    world.engine.set_state("shop", "errors", "ALARM", "drill", "bob")
    asyncio.run(world.engine.tick(T0 + 2))  # 0.5 s later: still held
    assert world.state() == "ALARM"
    world.clock.advance(1)
    asyncio.run(world.engine.tick(world.clock.now()))
    assert world.state() == "INSUFFICIENT_DATA"


def test_a_failing_source_keeps_the_state_with_its_reason_then_gives_insufficient_data(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    dead = RouterDatapoints(RouterClient(f"http://127.0.0.1:{free_port()}", None, timeout=1))
    world.engine.sources = Sources(push=PushSource(world.series), router=dead)
    router_alarm = {
        **ERRORS,
        "name": "latency",
        "statistic": "Average",
        "threshold": 300,
        "metric": {"source": "router", "name": "latency", "dimensions": {"listener": "{service}"}},
    }
    world.apply(router_alarm)
    world.engine.set_state("shop", "latency", "OK", "start from OK", "alice")
    world.tick_to(T0 + 20)
    alarm = world.store.alarms.get("shop", "latency")
    assert alarm.state == "OK"
    assert alarm.reason.startswith("Unchanged: cannot read the metric source")
    assert "did not answer" in alarm.reason
    errors = world.store.events.list(subject="shop/latency", kind="alarm.source_error")
    assert len(errors) == 1
    world.tick_to(T0 + 60)  # 5 periods of 10 s: the whole evaluation range
    alarm = world.store.alarms.get("shop", "latency")
    assert alarm.state == "INSUFFICIENT_DATA"
    assert "has failed for" in alarm.reason
    world.store.close()


def test_an_alarm_with_a_broken_expression_input_does_not_stop_the_others(
    world: World,
) -> None:
    unknown_source = {
        **ERRORS,
        "name": "prom",
        "metric": {"source": "prometheus", "query": "sum(rate(x[1m]))"},
    }
    world.apply(ERRORS, unknown_source)
    world.push("checkout_errors", 9)
    world.push("checkout_errors", 9, at=T0 - 10)
    world.tick_to(T0 + 10)
    assert world.state() == "ALARM"
    prom = world.store.alarms.get("shop", "prom")
    assert "metric source 'prometheus' is not configured" in prom.reason


# --- green and blue -----------------------------------------------------------------------

RATIO: dict[str, Any] = {
    "name": "green-errors",
    "metrics": {
        "e": {"source": "push", "name": "errors", "dimensions": {"revision": "{green_revision}"}},
        "b": {"source": "push", "name": "errors", "dimensions": {"revision": "{blue_revision}"}},
    },
    "expression": "e - b",
    "statistic": "Sum",
    "period": 1,
    "evaluation_periods": 1,
    "threshold": 3,
    "comparison": "GreaterThanThreshold",
    "treat_missing_data": "notBreaching",
}


def deploy(
    world: World,
    revision: str,
    from_revision: str | None,
    *,
    active: bool = True,
    phase: str = "shifting",
) -> Deployment:
    return world.store.deployments.create(
        "shop",
        revision,
        from_revision=from_revision,
        config={},
        state={},
        phase=phase,
        status="in_progress" if active else phase,
        active=active,
    )


def test_green_and_blue_follow_the_deployment_and_a_new_binding_is_judged_on_its_own_data(
    world: World,
) -> None:
    world.apply(RATIO)
    deploy(world, "v1", None, active=False, phase="succeeded")
    world.tick_to(T0 + 1)  # no blue yet: e - b is missing, treated as not breaching
    assert world.state("green-errors") == "OK"
    dep = deploy(world, "v2", "v1")
    for _ in range(3):
        world.push("errors", 5, {"revision": "v2"})
        world.push("errors", 1, {"revision": "v1"})
        world.tick_to(world.clock.now() + 1)
    assert world.state("green-errors") == "ALARM"
    transitions = [(old, new) for old, new, _ in world.history("green-errors")]
    assert transitions == [("INSUFFICIENT_DATA", "OK"), ("OK", "ALARM")]
    rebound = world.history("green-errors")[1][2]
    assert rebound.startswith("Threshold Crossed")
    assert "Now watching green shop.v2, blue shop.v1 (deployment" in rebound
    assert "the earlier state was reached on green shop.v1, blue -." in rebound
    alarm = world.store.alarms.get("shop", "green-errors")
    assert alarm.binding["deployment"] == dep.id

    guards = AlarmGuards(world.store)
    fired = asyncio.run(guards(dep))
    assert fired is not None and fired.startswith("alarm shop/green-errors: Threshold Crossed")
    [evidence] = world.store.events.list(subject=dep.id, kind="deployment.alarm_evidence")
    assert evidence.data["alarm"] == "shop/green-errors"
    assert evidence.data["datapoints"][-1]["value"] == 4.0
    other = deploy(world, "v3", "v2", active=False, phase="rolled_back")
    assert asyncio.run(guards(other)) is None  # bound to another deployment


def test_a_deployment_re_binds_its_alarms_without_a_state_change_unless_the_data_changes(
    world: World,
) -> None:
    green_5xx = {
        "name": "green-5xx",
        "metric": {
            "source": "push",
            "name": "errors",
            "dimensions": {"revision": "{green_revision}"},
        },
        "statistic": "Sum",
        "period": 1,
        "evaluation_periods": 2,
        "threshold": 3,
        "comparison": "GreaterThanThreshold",
    }
    world.apply(green_5xx)

    def second(errors: dict[str, float]) -> None:
        for revision, value in errors.items():
            world.push("errors", value, {"revision": revision})
        world.tick_to(world.clock.now() + 1)

    deploy(world, "v1", None, active=False, phase="succeeded")
    for _ in range(3):
        second({"v1": 1})
    assert world.history("green-5xx")[-1][:2] == ("INSUFFICIENT_DATA", "OK")
    before = len(world.history("green-5xx"))

    v2 = deploy(world, "v2", "v1")  # start: green is now shop.v2, blue shop.v1
    for _ in range(3):
        second({"v1": 1, "v2": 1})
    assert world.store.alarms.get("shop", "green-5xx").binding["green"] == "shop.v2"
    world.store.deployments.update(v2.id, v2.version, phase="succeeded", active=False)
    for _ in range(3):
        second({"v2": 1})
    v3 = deploy(world, "v3", "v2")  # another start, then a rollback: back to shop.v2
    for _ in range(3):
        second({"v2": 1, "v3": 2})
    assert world.store.alarms.get("shop", "green-5xx").binding["green"] == "shop.v3"
    world.store.deployments.update(v3.id, v3.version, phase="rolled_back", active=False)
    for _ in range(3):
        second({"v2": 1})
    assert world.store.alarms.get("shop", "green-5xx").binding["green"] == "shop.v2"
    assert world.state("green-5xx") == "OK"
    assert len(world.history("green-5xx")) == before  # three re-bindings, no event

    second({"v2": 9})  # the data changes: that is an event
    second({"v2": 9})
    assert world.history("green-5xx")[before:][0][:2] == ("OK", "ALARM")


def test_a_non_guarding_alarm_never_rolls_back_and_the_default_guard_is_asked(
    world: World,
) -> None:
    world.apply({**ERRORS, "guard": False})
    world.engine.set_state("shop", "errors", "ALARM", "drill", "alice")
    dep = deploy(world, "v2", "v1")
    asked: list[str] = []

    async def default(d: Deployment) -> str | None:
        asked.append(d.id)
        return None

    assert asyncio.run(AlarmGuards(world.store, default)(dep)) is None
    assert asked == [dep.id]
    world.apply(ERRORS)  # guard: true now; the alarm keeps its state
    assert world.state() == "ALARM"
    assert asyncio.run(AlarmGuards(world.store, default)(dep)) == "alarm shop/errors: drill"


def test_an_external_alarm_follows_set_external_and_guards(world: World) -> None:
    world.apply()
    dep = deploy(world, "v2", "v1")
    world.engine.set_external(
        "shop",
        "alertmanager:HighErrors",
        AlarmState.ALARM,
        "Alertmanager: HighErrors firing",
        {"firing": ["abc"]},
        "am",
    )
    assert asyncio.run(AlarmGuards(world.store)(dep)) == (
        "alarm shop/alertmanager:HighErrors: Alertmanager: HighErrors firing"
    )
    world.tick_to(T0 + 5)  # the loop never evaluates an external alarm
    assert world.store.alarms.get("shop", "alertmanager:HighErrors").state == "ALARM"
