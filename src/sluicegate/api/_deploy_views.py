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

from sluicegate.deploy import Phase, Plan, describe, plan_for
from sluicegate.spec import format_duration
from sluicegate.spec.service import DeploymentSpec, ServiceSpec
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
    "plan_lines",
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


def _hooks(count: int, stage: str) -> str:
    return f"run the {stage} hook" if count == 1 else f"run the {count} {stage} hooks"


def _first_deployment(spec: ServiceSpec, revision: str, plan: Plan) -> list[str]:
    """A service's first deployment: no blue, so no steps, no guards, nothing to roll back
    to (``lifecycle``: all traffic at once after the before-traffic hooks)."""
    hooks = spec.deployment.hooks
    steps = [
        f"start {revision} and wait until every replica is healthy "
        f"(at most {format_duration(spec.deployment.health_timeout)})"
    ]
    if hooks.before_allow_traffic:
        steps.append(_hooks(len(hooks.before_allow_traffic), "before_allow_traffic"))
    steps.append(f"all traffic to {revision} at once")
    if hooks.after_allow_traffic:
        steps.append(_hooks(len(hooks.after_allow_traffic), "after_allow_traffic"))
    return [
        f"First deployment of {spec.service}: there is no previous revision to compare "
        f"{revision} with, so it gets all traffic at once; plan {plan.name} applies from the "
        "next deployment on.",
        *(f"  {i:>2}. {step}" for i, step in enumerate(steps, 1)),
        f"Rollback: none, there is no previous revision to return to (`sluice rollback` and "
        f"`sluice stop` are refused once {revision} has traffic) and no guard or alarm judges "
        f"it. If {revision} cannot start, is not healthy in time or a hook fails, the "
        f"deployment fails and {revision} is stopped.",
    ]


def _rollback_line(guarding: list[str], default_guards: bool) -> str:
    """How a deployment with a blue to go back to is rolled back, automatically or not."""
    line = "Rollback: `sluice rollback` returns all traffic to blue in one router call"
    alarms = ", ".join(guarding)
    if default_guards and guarding:
        return (
            f"{line}; automatic when the default canary guard finds green's errors or latency "
            f"worse than blue's, or a guarding alarm is in ALARM: {alarms}"
        )
    if default_guards:
        return (
            f"{line}; automatic when the default canary guard finds green's errors or latency "
            "worse than blue's (no guarding alarm is declared: spec `alarms:`)"
        )
    if guarding:
        return (
            f"{line}; automatic when a guarding alarm is in ALARM: {alarms} (the default "
            "canary guard is off: the server runs with --no-default-guards)"
        )
    return (
        f"{line}; nothing rolls back automatically: the server runs with --no-default-guards "
        "and no guarding alarm is declared (spec `alarms:`)"
    )


def plan_lines(
    spec: ServiceSpec,
    revision: str,
    plan: Plan,
    *,
    first: bool,
    guarding: list[str],
    default_guards: bool,
) -> list[str]:
    """What a new deployment of ``revision`` will really do, line by line, and how it is
    rolled back: the plan's steps, or for a service's ``first`` deployment (no previous
    revision) all traffic at once. ``guarding`` names the service's guarding alarms;
    ``default_guards`` says whether the server runs the default canary guard."""
    if first:
        return _first_deployment(spec, revision, plan)
    return [*describe(plan), _rollback_line(guarding, default_guards)]
