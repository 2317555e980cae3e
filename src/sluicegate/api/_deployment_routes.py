"""Deployments: list (by service, active or not), read with live progress, retry, command."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from sluicegate.api._deploy_views import (
    CommandAccepted,
    Deployment,
    DeploymentDetail,
    deployment_view,
    event_view,
)
from sluicegate.api._deps import Deployer, Reader, ctl_of, store_of
from sluicegate.api._service_routes import CommandName, Reason, one_line
from sluicegate.api._shapes import COMMON_ERRORS, errors
from sluicegate.deploy import Command
from sluicegate.store import Deployment as DeploymentRecord
from sluicegate.store import Store

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["deployments"], responses=COMMON_ERRORS)


def _listed(
    store: Store, service: str | None, active: bool | None, limit: int
) -> list[DeploymentRecord]:
    running = [d for d in store.deployments.list_active() if service in (None, d.service)]
    if active:
        running.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return running[:limit]
    # at most one active deployment per service: asking for that many more is enough
    found = store.deployments.list(service, limit=limit + (len(running) if active is False else 0))
    if active is False:
        found = [d for d in found if not d.active]
    return found[:limit]


@router.get("/deployments", response_model=list[Deployment])
def list_deployments(
    request: Request,
    caller: Reader,
    service: str | None = None,
    active: Annotated[
        bool | None, Query(description="only active (true) or only ended (false) ones")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[dict[str, Any]]:
    """Newest first."""
    return [deployment_view(d) for d in _listed(store_of(request), service, active, limit)]


@router.get("/deployments/{dep_id}", response_model=DeploymentDetail, responses=errors(404))
async def get_deployment(dep_id: str, request: Request, caller: Reader) -> dict[str, Any]:
    store = store_of(request)
    dep = store.deployments.get(dep_id)
    events = [event_view(e) for e in store.events.list(subject=dep_id)]
    progress = await ctl_of(request).progress(dep) if dep.active else {}
    return {
        **deployment_view(dep),
        "next_step_in": progress.get("next_step_in"),
        "replicas": progress.get("replicas", {}),
        "events": events,
    }


@router.post(
    "/deployments/{dep_id}/retry",
    status_code=201,
    response_model=Deployment,
    responses=errors(404, 409),
)
async def retry(
    dep_id: str, request: Request, caller: Deployer, reason: Reason = ""
) -> dict[str, Any]:
    """Deploy a failed, rolled-back or stopped deployment's revision again, as it was."""
    return deployment_view(await ctl_of(request).retry(dep_id, caller.name, one_line(reason)))


@router.post(
    "/deployments/{dep_id}/{command}",
    status_code=202,
    response_model=CommandAccepted,
    responses=errors(404, 409),
)
def command(
    dep_id: str, command: CommandName, request: Request, caller: Deployer, reason: Reason = ""
) -> dict[str, Any]:
    """Accepted means stored: the engine applies it on its next tick, after a crash too."""
    ctl = ctl_of(request)
    stored = ctl.command(dep_id, Command(command), caller.name, one_line(reason))
    service = store_of(request).deployments.get(dep_id).service
    return {
        "service": service,
        "deployment": dep_id,
        "command": command,
        "state": "accepted",
        "command_id": stored.id,
    }
