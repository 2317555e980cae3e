"""Services: apply, list, read, delete; deploy a revision; command a service's active
deployment; read a revision's logs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field, ValidationError

from sluicegate.api._deploy_views import (
    CommandAccepted,
    Deployment,
    DeploymentCreated,
    deployment_view,
)
from sluicegate.api._deps import Deployer, Reader, ctl_of, store_of
from sluicegate.api._shapes import COMMON_ERRORS, INT64_MAX, described_as, errors
from sluicegate.deploy import Command, describe, plan_for
from sluicegate.errors import ConflictError, Problem, SpecError
from sluicegate.monitor._alarm_records import sync_alarms_in
from sluicegate.spec._errors import spec_error_from
from sluicegate.spec.service import DeploymentConfig, DeploymentSpec, ServiceSpec

__all__ = ["CommandName", "router"]

router = APIRouter(prefix="/v1", tags=["services"], responses=COMMON_ERRORS)
CommandName = Literal["promote", "promote_full", "rollback", "stop"]


class AlarmChanges(BaseModel):
    """The spec's alarms, by id (``service/name``), as the apply changed them."""

    created: list[str]
    updated: list[str]
    deleted: list[str]


class ServiceApplied(BaseModel):
    service: str
    applied: Literal[True]
    alarms: AlarmChanges


class ServiceSummary(BaseModel):
    service: str
    revision: str | None = Field(description="the revision serving now; null before the first")
    active_deployment: str | None = Field(description="the active deployment's id, if any")


class ServiceDetail(BaseModel):
    service: str
    spec: dict[str, Any] = Field(description="the service spec as applied (see PUT)")
    revision: str | None = Field(description="the revision serving now; null before the first")
    active_deployment: Deployment | None
    deployments: list[Deployment] = Field(description="the latest five, newest first")


class ServiceDeleted(BaseModel):
    service: str
    deleted: Literal[True]
    stopped: list[str] = Field(description="the revisions that were running and were stopped")


class DeployRequest(BaseModel):
    revision: str = Field(min_length=1, max_length=200)
    config: Annotated[Any, described_as(DeploymentConfig | None)] = Field(
        None, description="a deployment config overriding the spec's (a name or steps)"
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="environment variables of this revision"
    )


class Logs(BaseModel):
    service: str
    revision: str
    logs: str = Field(description="the last lines of each replica's output")


@router.put("/services/{name}", response_model=ServiceApplied)
async def apply_service(
    name: str,
    request: Request,
    caller: Deployer,
    body: Annotated[Any, Body(), described_as(ServiceSpec)],
) -> dict[str, Any]:
    """Declare or update a service (and its alarms), all or nothing."""
    try:
        spec = ServiceSpec.model_validate(body)
    except ValidationError as exc:
        raise spec_error_from(exc, "request body") from exc
    if spec.service != name:
        raise SpecError([Problem("service", f"is {spec.service!r} but the URL names {name!r}")])
    alarms = await ctl_of(request).apply_service(
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


@router.get("/services", response_model=list[ServiceSummary])
def list_services(request: Request, caller: Reader) -> list[dict[str, Any]]:
    ctl, store = ctl_of(request), store_of(request)
    out = []
    for s in store.services.list():
        active = store.deployments.active_for(s.name)
        out.append(
            {
                "service": s.name,
                "revision": ctl.current_revision(s.name),
                "active_deployment": active.id if active else None,
            }
        )
    return out


@router.get("/services/{name}", response_model=ServiceDetail, responses=errors(404))
def get_service(name: str, request: Request, caller: Reader) -> dict[str, Any]:
    ctl, store = ctl_of(request), store_of(request)
    spec = store.services.get(name).spec
    active = store.deployments.active_for(name)
    recent = [deployment_view(d) for d in store.deployments.list(name, limit=5)]
    return {
        "service": name,
        "spec": spec,
        "revision": ctl.current_revision(name),
        "active_deployment": deployment_view(active) if active else None,
        "deployments": recent,
    }


@router.delete("/services/{name}", response_model=ServiceDeleted, responses=errors(404, 409))
async def delete_service(name: str, request: Request, caller: Deployer) -> dict[str, Any]:
    """Stop the service's revisions and forget it, with its history and alarms; refused
    (409) while a deployment of it is active."""
    stopped = await ctl_of(request).delete_service(name, caller.name)
    return {"service": name, "deleted": True, "stopped": stopped}


@router.post(
    "/services/{name}/deployments",
    status_code=201,
    response_model=DeploymentCreated,
    responses=errors(404, 409),
)
async def create_deployment(
    name: str, req: DeployRequest, request: Request, caller: Deployer
) -> dict[str, Any]:
    """Start deploying ``revision``: the answer holds the plan, described step by step."""
    config = None
    if req.config is not None:
        try:
            config = DeploymentSpec.model_validate({"config": req.config}).config
        except ValidationError as exc:
            raise spec_error_from(exc, "request body") from exc
    ctl = ctl_of(request)
    dep = await ctl.deploy(name, req.revision, caller.name, config, req.env)
    plan_config = config if config is not None else ctl.spec_of(name).deployment.config
    plan = describe(plan_for(plan_config))
    guarding = [f"{a.id}" for a in store_of(request).alarms.list(name) if a.guard]
    plan.append(
        "Rollback: `sluice rollback` returns all traffic to blue in one router call"
        + (
            f"; automatic when a guarding alarm is in ALARM: {', '.join(guarding)}"
            if guarding
            else "; no guarding alarm is declared (spec `alarms:`)"
        )
    )
    return {**deployment_view(dep), "plan": plan}


@router.post(
    "/services/{name}/{command}",
    status_code=202,
    response_model=CommandAccepted,
    responses=errors(404, 409),
)
def service_command(
    name: str, command: CommandName, request: Request, caller: Deployer
) -> dict[str, Any]:
    """The command for the service's active deployment (409 when it has none); accepted
    means stored: the engine applies it on its next tick."""
    store = store_of(request)
    store.services.get(name)  # 404 for an unknown service
    active = store.deployments.active_for(name)
    if active is None:
        raise ConflictError(f"service {name!r} has no active deployment to {command}")
    stored = ctl_of(request).command(active.id, Command(command), caller.name)
    return {
        "service": name,
        "deployment": active.id,
        "command": command,
        "state": "accepted",
        "command_id": stored.id,
    }


@router.get("/services/{name}/logs", response_model=Logs, responses=errors(404))
def logs(
    name: str,
    revision: str,
    request: Request,
    caller: Reader,
    replica: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    tail: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> dict[str, Any]:
    """The last ``tail`` lines each replica of ``revision`` wrote (or one replica's)."""
    text = ctl_of(request).world.logs(name, revision, replica, tail)
    return {"service": name, "revision": revision, "logs": text}
