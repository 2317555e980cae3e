"""The control plane's HTTP API: services, deployments, events, logs, tokens."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, ValidationError

from sluicegate.api._auth import Caller, require
from sluicegate.clock import Clock
from sluicegate.deploy import Command, describe, plan_for
from sluicegate.deploy.controller import Controller
from sluicegate.errors import Problem, SpecError
from sluicegate.monitor._alarm_records import sync_alarms_in
from sluicegate.spec._errors import spec_error_from
from sluicegate.spec.service import DeploymentSpec, ServiceSpec
from sluicegate.store import Deployment, Event, Store

router = APIRouter(prefix="/v1")
Reader = Annotated[Caller, Depends(require("reader"))]
Deployer = Annotated[Caller, Depends(require("deployer"))]
Admin = Annotated[Caller, Depends(require("admin"))]


def _ctl(request: Request) -> Controller:
    ctl: Controller = request.app.state.controller
    return ctl


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _now(request: Request) -> float:
    """The server's clock (injected: tests move it)."""
    clock: Clock = request.app.state.clock
    return clock.now()


def deployment_json(d: Deployment) -> dict[str, Any]:
    return {
        "id": d.id,
        "service": d.service,
        "revision": d.revision,
        "from_revision": d.from_revision,
        "phase": d.phase,
        "status": d.status,
        "active": d.active,
        "state": d.state,
        "config": d.config,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    }


def event_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at,
        "actor": e.actor,
        "kind": e.kind,
        "subject": e.subject,
        "message": e.message,
        "data": e.data,
    }


@router.put("/services/{name}")
async def apply_service(
    name: str, request: Request, caller: Deployer, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    try:
        spec = ServiceSpec.model_validate(body)
    except ValidationError as exc:
        raise spec_error_from(exc, "request body") from exc
    if spec.service != name:
        raise SpecError([Problem("service", f"is {spec.service!r} but the URL names {name!r}")])
    alarms = await _ctl(request).apply_service(
        spec, caller.name, also=lambda tx: sync_alarms_in(tx, spec, caller.name)
    )
    assert alarms is not None
    return {
        "service": name,
        "applied": True,
        "alarms": {
            "created": list(alarms.created),
            "updated": list(alarms.updated),
            "deleted": list(alarms.deleted),
        },
    }


@router.get("/services")
def list_services(request: Request, caller: Reader) -> list[dict[str, Any]]:
    ctl = _ctl(request)
    out = []
    for s in _store(request).services.list():
        active = _store(request).deployments.active_for(s.name)
        out.append(
            {
                "service": s.name,
                "revision": ctl.current_revision(s.name),
                "active_deployment": active.id if active else None,
            }
        )
    return out


@router.get("/services/{name}")
def get_service(name: str, request: Request, caller: Reader) -> dict[str, Any]:
    ctl, store = _ctl(request), _store(request)
    spec = store.services.get(name).spec
    active = store.deployments.active_for(name)
    recent = [deployment_json(d) for d in store.deployments.list(name, limit=5)]
    return {
        "service": name,
        "spec": spec,
        "revision": ctl.current_revision(name),
        "active_deployment": deployment_json(active) if active else None,
        "deployments": recent,
    }


class DeployRequest(BaseModel):
    revision: str
    config: Any = None
    env: dict[str, str] = {}


@router.post("/services/{name}/deployments", status_code=201)
async def create_deployment(
    name: str, req: DeployRequest, request: Request, caller: Deployer
) -> dict[str, Any]:
    config = None
    if req.config is not None:
        try:
            config = DeploymentSpec.model_validate({"config": req.config}).config
        except ValidationError as exc:
            raise spec_error_from(exc, "request body") from exc
    dep = await _ctl(request).deploy(name, req.revision, caller.name, config, req.env)
    plan_config = config if config is not None else _ctl(request).spec_of(name).deployment.config
    plan = describe(plan_for(plan_config))
    guarding = [f"{a.id}" for a in _store(request).alarms.list(name) if a.guard]
    plan.append(
        "Rollback: `sluice rollback` returns all traffic to blue in one router call"
        + (
            f"; automatic when a guarding alarm is in ALARM: {', '.join(guarding)}"
            if guarding
            else "; no guarding alarm is declared (spec `alarms:`)"
        )
    )
    return {**deployment_json(dep), "plan": plan}


@router.get("/deployments")
def list_deployments(
    request: Request,
    caller: Reader,
    service: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[dict[str, Any]]:
    return [deployment_json(d) for d in _store(request).deployments.list(service, limit=limit)]


@router.get("/deployments/{dep_id}")
async def get_deployment(dep_id: str, request: Request, caller: Reader) -> dict[str, Any]:
    store = _store(request)
    dep = store.deployments.get(dep_id)
    events = [event_json(e) for e in store.events.list(subject=dep_id)]
    progress = await _ctl(request).progress(dep) if dep.active else {}
    return {**deployment_json(dep), **progress, "events": events}


@router.post("/deployments/{dep_id}/retry", status_code=201)
async def retry(dep_id: str, request: Request, caller: Deployer) -> dict[str, Any]:
    return deployment_json(await _ctl(request).retry(dep_id, caller.name))


CommandName = Literal["promote", "promote_full", "rollback", "stop"]


@router.post("/deployments/{dep_id}/{command}", status_code=202)
def command(
    dep_id: str, command: CommandName, request: Request, caller: Deployer
) -> dict[str, Any]:
    """Accepted means stored: the engine applies it on its next tick, after a crash too."""
    stored = _ctl(request).command(dep_id, Command(command), caller.name)
    return {"deployment": dep_id, "command": command, "state": "accepted", "command_id": stored.id}


@router.get("/events")
def events(
    request: Request,
    caller: Reader,
    since: int = 0,
    subject: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 200,
) -> list[dict[str, Any]]:
    store = _store(request)
    items = (
        store.events.list(subject=subject) if subject else store.events.since(since, limit=limit)
    )
    return [event_json(e) for e in items if e.id > since][:limit]


@router.get("/services/{name}/logs")
def logs(
    name: str,
    revision: str,
    request: Request,
    caller: Reader,
    replica: int | None = None,
    tail: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> dict[str, str]:
    text = _ctl(request).world.logs(name, revision, replica, tail)
    return {"service": name, "revision": revision, "logs": text}


class TokenRequest(BaseModel):
    role: Literal["admin", "deployer", "reader", "agent"]
    name: str = ""
    env: str | None = None  # required for (and only for) agent tokens


@router.post("/tokens", status_code=201)
def create_token(req: TokenRequest, request: Request, caller: Admin) -> dict[str, str]:
    name = req.name or (f"agent-{req.env}" if req.role == "agent" else req.role)
    token = _store(request).tokens.create(req.role, name, req.env)
    return {"role": req.role, "token": token}
