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
    plan_lines,
)
from sluicegate.api._deps import Deployer, Reader, ctl_of, store_of
from sluicegate.api._replica_status import ReplicaStatus, replica_status
from sluicegate.api._shapes import COMMON_ERRORS, INT64_MAX, described_as, errors
from sluicegate.deploy import Command, plan_for
from sluicegate.errors import ConflictError, Problem, SpecError
from sluicegate.monitor._alarm_records import sync_alarms_in
from sluicegate.spec._errors import spec_error_from
from sluicegate.spec.service import DeploymentConfig, DeploymentSpec, ServiceSpec

__all__ = ["CommandName", "Reason", "one_line", "router"]

router = APIRouter(prefix="/v1", tags=["services"], responses=COMMON_ERRORS)
CommandName = Literal["promote", "promote_full", "rollback", "stop"]
Reason = Annotated[
    str,
    Query(
        max_length=500,
        description="why: recorded with the token's name in a `deployment.command` event",
    ),
]


def one_line(reason: str) -> str:
    """A reason as one line (newlines and runs of spaces become one space)."""
    return " ".join(reason.split())


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
    replicas: list[ReplicaStatus] = Field(
        default_factory=list,
        description="the replicas of the serving revision and of the active deployment's",
    )


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


class ReplicaLog(BaseModel):
    """One replica's lines in this answer and where they end."""

    replica: int = Field(ge=0)
    lines: list[str] = Field(
        description="complete lines, oldest first (a line is given once its newline is written)"
    )
    position: int = Field(
        ge=0,
        description="bytes of this replica's output up to the end of the last line given, "
        "counted from its first byte across log rotations",
    )
    skipped: int = Field(
        ge=0,
        description="bytes between the position asked for and the oldest output still kept: "
        "rotated away before they were read (0 normally)",
    )
    more: bool = Field(description="more lines are there already: ask again at once")


class Logs(BaseModel):
    service: str
    revision: str
    logs: str = Field(
        description="the lines of this answer as one text; without `replica`, each replica's "
        "under a `==> replica N <==` line (with `after`, only replicas with new lines)"
    )
    replicas: list[ReplicaLog] = Field(
        description="per replica, its lines and position; empty for a revision whose output "
        "is not captured here (then `logs` says why)"
    )
    cursor: str = Field(
        description="pass as `after` to get only what was written since: `REPLICA:POSITION` "
        "pairs, comma-separated"
    )


# At most 64 replicas (the spec's bound) of ``index:position``: well under 2,000 characters.
CURSOR_PATTERN = r"^([0-9]{1,9}:[0-9]{1,19}(,[0-9]{1,9}:[0-9]{1,19}){0,63})?$"


def parse_cursor(cursor: str) -> dict[int, int]:
    """``"0:1234,1:88"`` → ``{0: 1234, 1: 88}`` (the shape ``CURSOR_PATTERN`` checked)."""
    positions = {}
    for i, pair in enumerate(p for p in cursor.split(",") if p):
        replica, _, position = pair.partition(":")
        if int(position) > INT64_MAX:
            raise SpecError([Problem("after", f"pair {i + 1}: position beyond 64 bits")])
        positions[int(replica)] = int(position)
    return positions


def format_cursor(positions: dict[int, int]) -> str:
    return ",".join(f"{replica}:{position}" for replica, position in sorted(positions.items()))


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
async def get_service(name: str, request: Request, caller: Reader) -> dict[str, Any]:
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
        "replicas": await replica_status(ctl, name),
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
    spec = ctl.spec_of(name)
    guarding = [a.id for a in store_of(request).alarms.list(name) if a.guard]
    plan = plan_lines(
        spec,
        req.revision,
        plan_for(config if config is not None else spec.deployment.config),
        first=dep.from_revision is None,
        guarding=guarding,
        default_guards=request.app.state.default_guards,
    )
    return {**deployment_view(dep), "plan": plan}


@router.post(
    "/services/{name}/{command}",
    status_code=202,
    response_model=CommandAccepted,
    responses=errors(404, 409),
)
def service_command(
    name: str, command: CommandName, request: Request, caller: Deployer, reason: Reason = ""
) -> dict[str, Any]:
    """The command for the service's active deployment (409 when it has none); accepted
    means stored: the engine applies it on its next tick."""
    store = store_of(request)
    store.services.get(name)  # 404 for an unknown service
    active = store.deployments.active_for(name)
    if active is None:
        raise ConflictError(f"service {name!r} has no active deployment to {command}")
    stored = ctl_of(request).command(active.id, Command(command), caller.name, one_line(reason))
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
    tail: Annotated[
        int, Query(ge=1, le=10000, description="without `after`: the last this many lines")
    ] = 100,
    after: Annotated[
        str | None,
        Query(
            max_length=2000,
            pattern=CURSOR_PATTERN,
            description="a `cursor` from an earlier answer: only lines written after it (a "
            "replica not in it: from its oldest line kept); empty: from the oldest kept",
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=10000, description="with `after`: at most this many lines per replica")
    ] = 1000,
) -> dict[str, Any]:
    """The last ``tail`` lines each replica of ``revision`` wrote (or one replica's), with a
    ``cursor``. To follow the output, ask again with ``after`` = the last ``cursor``: each
    line comes once, none is left out across log rotations (unless it was rotated away
    before it was read: ``skipped`` says how much)."""
    positions = parse_cursor(after) if after is not None else None
    read = ctl_of(request).world.read_logs(
        name, revision, replica, positions, limit if positions is not None else tail
    )
    cursor = dict(positions or {})
    parts = []
    for r in read.replicas:
        cursor[r.replica] = r.position
        if replica is not None:
            parts.append("\n".join(r.lines))
        elif r.lines or positions is None:
            parts.append("\n".join([f"==> replica {r.replica} <==", *r.lines]))
    return {
        "service": name,
        "revision": revision,
        "logs": "\n\n".join(parts) if read.replicas else read.note,
        "replicas": [
            {
                "replica": r.replica,
                "lines": list(r.lines),
                "position": r.position,
                "skipped": r.skipped,
                "more": r.more,
            }
            for r in read.replicas
        ],
        "cursor": format_cursor(cursor),
    }
