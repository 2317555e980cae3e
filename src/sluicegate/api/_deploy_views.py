"""The public shapes of deployments and events: what a user (the CLI, a dashboard) reads.

A deployment's lifecycle records its own state (``deploy.lifecycle.DeploymentState``); the
view below names the parts of it a user needs. The raw record stays reachable as
``state``, marked internal: its shape follows the lifecycle and may change without notice.
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from sluicegate.deploy import Phase, plan_for
from sluicegate.spec.service import DeploymentSpec
from sluicegate.store import Deployment as DeploymentRecord
from sluicegate.store import Event

__all__ = [
    "CommandAccepted",
    "Deployment",
    "DeploymentCreated",
    "DeploymentDetail",
    "EventOut",
    "ReplicaHealth",
    "deployment_view",
    "event_view",
]

Status = Literal["in_progress", "succeeded", "rolled_back", "failed", "stopped"]
Percent = Annotated[int, Field(ge=0, le=100)]


class Deployment(BaseModel):
    """A deployment: one revision of a service replacing another, step by step."""

    id: str = Field(description="``d-`` and 12 hex digits")
    service: str
    revision: str = Field(description="the new revision (green)")
    from_revision: str | None = Field(
        description="the revision it replaces (blue); null for the service's first deployment"
    )
    phase: Phase
    status: Status = Field(description="in_progress until the phase ends it")
    active: bool = Field(description="true until it ended; at most one per service")
    reason: str | None = Field(description="why it is rolling back, rolled back, failed or stopped")
    green_weight: Percent = Field(description="the new revision's share of production traffic, %")
    step_index: int = Field(ge=0, description="the plan's step in progress, counted from 0")
    step_count: int | None = Field(
        description="the plan's steps; null when the recorded plan cannot be read"
    )
    plan_name: str | None = Field(
        description="the deployment config's plan, e.g. Canary10Percent5Minutes"
    )
    holding: str | None = Field(
        description="a timed step outlived its pause and waits for the guards' verdict: why"
    )
    test_traffic_on_green: bool = Field(description="the test listener routes to the new revision")
    actor: str | None = Field(description="who started it")
    phase_started_at: float | None = Field(description="when the current phase began (epoch s)")
    created_at: float
    updated_at: float
    state: dict[str, Any] = Field(
        description="Internal: the lifecycle's recorded state. Its shape follows the "
        "implementation and may change without notice; read the fields above instead.",
        json_schema_extra={"deprecated": True},
    )


class ReplicaHealth(BaseModel):
    address: str = Field(description="host:port")
    healthy: bool
    detail: str
    restarts: int


class EventOut(BaseModel):
    """One entry of the append-only event log."""

    id: int = Field(description="increases in commit order: remember it, ask ?since=")
    at: float = Field(description="epoch seconds")
    actor: str = Field(description="who did it: a token's role, or the engine that acted")
    kind: str = Field(description="e.g. deployment.created, alarm.state, flags.version")
    subject: str = Field(description="a deployment id, service, alarm id or flags/<env>")
    message: str
    data: dict[str, Any]


class DeploymentDetail(Deployment):
    """A deployment with its live progress (while active) and its events."""

    next_step_in: float | None = Field(
        None, description="seconds until the next timed step (active deployments)"
    )
    replicas: dict[str, list[ReplicaHealth]] = Field(
        default_factory=dict, description="per revision, its replicas' health (while active)"
    )
    events: list[EventOut] = Field(description="the deployment's events, oldest first")


class DeploymentCreated(Deployment):
    plan: list[str] = Field(description="the plan, described line by line, then how rollback works")


class CommandAccepted(BaseModel):
    """Accepted means stored: the engine applies it on its next tick, after a crash too."""

    service: str
    deployment: str
    command: Literal["promote", "promote_full", "rollback", "stop"]
    state: Literal["accepted"]
    command_id: int


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@functools.lru_cache(maxsize=256)
def _plan(config_json: str) -> tuple[str, int] | None:
    try:
        config = DeploymentSpec.model_validate({"config": json.loads(config_json)}).config
        plan = plan_for(config)
    except (ValidationError, KeyError, ValueError):
        return None
    return plan.name, len(plan.steps)


def deployment_view(d: DeploymentRecord) -> dict[str, Any]:
    """The public fields of a deployment record. A damaged record (edited by hand, say)
    still shows: what cannot be read is left at its default."""
    state = d.state if isinstance(d.state, dict) else {}
    plan = _plan(json.dumps(d.config.get("plan"), sort_keys=True))
    started = state.get("phase_started_at")
    return {
        "id": d.id,
        "service": d.service,
        "revision": d.revision,
        "from_revision": d.from_revision,
        "phase": d.phase,
        "status": d.status,
        "active": d.active,
        "reason": _str(state.get("reason")),
        "green_weight": min(100, max(0, _int(state.get("green_weight")))),
        "step_index": max(0, _int(state.get("step_index"))),
        "step_count": plan[1] if plan else None,
        "plan_name": plan[0] if plan else None,
        "holding": _str(state.get("holding")),
        "test_traffic_on_green": state.get("test_traffic_on_green") is True,
        "actor": _str(d.config.get("actor")),
        "phase_started_at": started if isinstance(started, int | float) else None,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "state": state,
    }


def event_view(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at,
        "actor": e.actor,
        "kind": e.kind,
        "subject": e.subject,
        "message": e.message,
        "data": e.data,
    }
