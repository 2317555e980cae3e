"""Alarms: list, get, history (their ``alarm.state`` events) and SetAlarmState."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from sluicegate.api._deps import Deployer, Reader, store_of
from sluicegate.api._shapes import COMMON_ERRORS, errors
from sluicegate.errors import TransientError
from sluicegate.monitor.engine import AlarmEngine
from sluicegate.store import Alarm as AlarmRecord

__all__ = ["Alarm", "alarm_json", "router"]

router = APIRouter(prefix="/v1", tags=["alarms"], responses=COMMON_ERRORS)
AlarmStateName = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]


class Alarm(BaseModel):
    """An alarm and its current state (CloudWatch's semantics)."""

    id: str = Field(description="service/name")
    service: str
    name: str
    kind: Literal["metric", "external"] = Field(
        description="metric: declared in the service spec; external: set from outside "
        "(Alertmanager)"
    )
    guard: bool = Field(description="in ALARM, it rolls back the service's deployment")
    state: AlarmStateName
    reason: str
    state_changed_at: float
    evaluated_at: float | None
    forced_until: float | None = Field(description="a forced state holds until then")
    error_since: float | None = Field(description="its metric source fails since then")
    binding: dict[str, Any] = Field(description="what the alarm is bound to now")
    evaluation: dict[str, Any] = Field(description="the last evaluation's datapoints and verdict")
    spec: dict[str, Any] | None = Field(description="the alarm as the service spec declares it")


class AlarmChange(BaseModel):
    """One state change of an alarm."""

    id: int = Field(description="the event's id")
    at: float
    actor: str
    old_state: AlarmStateName | None
    new_state: AlarmStateName | None
    reason: str
    forced: bool
    datapoints: list[Any]


class StateRequest(BaseModel):
    state: AlarmStateName
    reason: Annotated[str, Field(min_length=1, max_length=1023)]


def alarm_json(a: AlarmRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "service": a.service,
        "name": a.name,
        "kind": a.kind,
        "guard": a.guard,
        "state": a.state,
        "reason": a.reason,
        "state_changed_at": a.state_changed_at,
        "evaluated_at": a.evaluated_at,
        "forced_until": a.forced_until,
        "error_since": a.error_since,
        "binding": a.binding,
        "evaluation": a.evaluation,
        "spec": a.spec,
    }


@router.get("/alarms", response_model=list[Alarm])
def list_alarms(
    request: Request, caller: Reader, service: str | None = None
) -> list[dict[str, Any]]:
    return [alarm_json(a) for a in store_of(request).alarms.list(service)]


@router.get("/alarms/{service}/{name}", response_model=Alarm, responses=errors(404))
def get_alarm(service: str, name: str, request: Request, caller: Reader) -> dict[str, Any]:
    return alarm_json(store_of(request).alarms.get(service, name))


@router.get(
    "/alarms/{service}/{name}/history", response_model=list[AlarmChange], responses=errors(404)
)
def alarm_history(
    service: str,
    name: str,
    request: Request,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> list[dict[str, Any]]:
    """State changes, oldest first (the alarm's ``alarm.state`` events)."""
    store = store_of(request)
    alarm = store.alarms.get(service, name)
    return [
        {
            "id": e.id,
            "at": e.at,
            "actor": e.actor,
            "old_state": e.data.get("old_state"),
            "new_state": e.data.get("new_state"),
            "reason": e.message,
            "forced": bool(e.data.get("forced")),
            "datapoints": e.data.get("datapoints", []),
        }
        for e in store.events.list(subject=alarm.id, kind="alarm.state", limit=limit)
    ]


@router.post("/alarms/{service}/{name}/state", response_model=Alarm, responses=errors(404, 409))
def set_alarm_state(
    service: str, name: str, req: StateRequest, request: Request, caller: Deployer
) -> dict[str, Any]:
    """Force the state (SetAlarmState): it holds until the next evaluation a period later."""
    engine: AlarmEngine | None = request.app.state.engine
    if engine is None:
        raise TransientError("the alarm loop is not running on this server")
    return alarm_json(engine.set_state(service, name, req.state, req.reason, caller.name))
