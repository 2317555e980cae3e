"""Alarms: list, get, history (their ``alarm.state`` events) and SetAlarmState."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from sluicegate.api._auth import Caller, require
from sluicegate.api._routes import _store
from sluicegate.errors import TransientError
from sluicegate.monitor.engine import AlarmEngine
from sluicegate.store import Alarm

router = APIRouter(prefix="/v1")
Reader = Annotated[Caller, Depends(require("reader"))]
Deployer = Annotated[Caller, Depends(require("deployer"))]


def alarm_json(a: Alarm) -> dict[str, Any]:
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


@router.get("/alarms")
def list_alarms(
    request: Request, caller: Reader, service: str | None = None
) -> list[dict[str, Any]]:
    return [alarm_json(a) for a in _store(request).alarms.list(service)]


@router.get("/alarms/{service}/{name}")
def get_alarm(service: str, name: str, request: Request, caller: Reader) -> dict[str, Any]:
    return alarm_json(_store(request).alarms.get(service, name))


@router.get("/alarms/{service}/{name}/history")
def alarm_history(
    service: str,
    name: str,
    request: Request,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> list[dict[str, Any]]:
    """State changes, oldest first (the alarm's ``alarm.state`` events)."""
    store = _store(request)
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


class StateRequest(BaseModel):
    state: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
    reason: Annotated[str, Field(min_length=1, max_length=1023)]


@router.post("/alarms/{service}/{name}/state")
def set_alarm_state(
    service: str, name: str, req: StateRequest, request: Request, caller: Deployer
) -> dict[str, Any]:
    """Force the state (SetAlarmState): it holds until the next evaluation a period later."""
    engine: AlarmEngine | None = request.app.state.engine
    if engine is None:
        raise TransientError("the alarm loop is not running on this server")
    return alarm_json(engine.set_state(service, name, req.state, req.reason, caller.name))
