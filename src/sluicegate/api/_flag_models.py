"""The flags API's request and answer shapes, and the views built from the flag service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sluicegate.api._shapes import INT64_MAX, described_as
from sluicegate.flagservice import Applied, FlagService
from sluicegate.spec.flag_rollout import RolloutSpec
from sluicegate.store import FlagEnvironment

__all__ = [
    "ApplyRequest",
    "EnvDeleted",
    "EnvRequest",
    "EvaluateRequest",
    "Evaluation",
    "FlagEnv",
    "FlagRollout",
    "FlagSet",
    "FlagSetApplied",
    "FlagSetDiff",
    "FlagSetVersion",
    "RevertRequest",
    "RolloutDetail",
    "VersionInfo",
    "applied_json",
    "env_json",
]

Version = Annotated[int, Field(ge=1, le=INT64_MAX)]
Rollout = Annotated[
    Any,
    described_as(RolloutSpec | None),
    Field(
        description="publish gradually: {strategy, bake_time, alarms}; without it the "
        "version is published at once"
    ),
]


# -- requests ----------------------------------------------------------------------------


class EnvRequest(BaseModel):
    name: str = Field(description="1 to 64 letters, digits, '_', '.' or '-'")
    description: str = Field("", max_length=2000)


class ApplyRequest(BaseModel):
    document: Any = Field(
        description="the flag set (JSON; its schema: GET /v1/flags/schema); validated, "
        "stored in normal form"
    )
    message: str = Field("", max_length=2000)
    rollout: Rollout = None


class RevertRequest(BaseModel):
    to: Version = Field(description="the version whose document is saved again")
    message: str = Field("", max_length=2000)
    rollout: Rollout = None


class EvaluateRequest(BaseModel):
    key: str = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    explain: bool = False
    version: Version | None = Field(None, description="default: what this context gets now")


class BatchItem(BaseModel):
    key: str = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)


class EvaluateBatchRequest(BaseModel):
    """Many evaluations in one call (at most 1,000): for tools and tests. Apps evaluate with
    the agent or the SDK, locally, in microseconds."""

    requests: list[BatchItem] = Field(min_length=1, max_length=1000)


# -- answers -----------------------------------------------------------------------------


class FlagRollout(BaseModel):
    """A gradual publication of ``to_version`` to a growing share of users."""

    id: str
    env: str
    from_version: int
    to_version: int
    phase: str
    active: bool
    percent: int = Field(ge=0, le=100, description="the share of users on to_version, %")
    step: int = Field(description="the plan's step in progress, counted from 1 (0: none yet)")
    steps: int = Field(description="the plan's steps")
    plan: str = Field(description="the plan's name")
    plan_text: list[str] = Field(description="the plan, described step by step")
    next_step_in: float | None = Field(description="seconds until the next step")
    strategy: dict[str, Any] = Field(description="the rollout as given: strategy, bake_time...")
    alarms: list[str] = Field(description="the guarding alarms")
    reason: str | None = Field(description="why it was rolled back or stopped")
    alarm: str | None = Field(description="the alarm that rolled it back")
    started_at: float
    ended_at: float | None
    created_at: float
    updated_at: float


class RolloutEvent(BaseModel):
    at: float
    actor: str
    kind: str
    message: str


class RolloutDetail(FlagRollout):
    events: list[RolloutEvent]


class FlagEnv(BaseModel):
    name: str
    description: str
    current_version: int | None = Field(description="what everyone is served; null before v1")
    latest_version: int | None = Field(description="the newest saved (a rollout's target)")
    created_at: float | None
    rollout: FlagRollout | None = Field(description="the rollout in progress, if any")


class FlagSet(FlagEnv):
    """The current version (``created_at`` is the version's) and the rollout in progress."""

    env: str
    version: int | None
    document: dict[str, Any] | None
    actor: str | None
    message: str | None


class DiffChange(BaseModel):
    kind: Literal["flag", "segment"]
    key: str
    change: Literal["added", "removed", "changed"]
    fields: list[dict[str, Any]] = Field(
        description="each changed field: path, change, old and new (ids: added, removed)"
    )


class FlagSetApplied(BaseModel):
    env: str
    version: int = Field(description="the saved version; the current one when unchanged")
    previous_version: int | None
    changed: bool = Field(description="false: the document equals the current one; not saved")
    note: str | None
    diff: list[DiffChange]
    diff_text: str
    rollout: FlagRollout | None


class VersionInfo(BaseModel):
    version: int
    created_at: float
    actor: str
    message: str
    status: str = Field(description="current, rolling out (N %), rolled back, stopped or previous")
    rollout: str | None = Field(description="the newest rollout of this version")


class FlagSetVersion(BaseModel):
    env: str
    version: int
    document: dict[str, Any]
    created_at: float
    actor: str
    message: str


class DescriptionChange(BaseModel):
    old: str | None
    new: str | None


class FlagSetDiff(BaseModel):
    env: str
    from_: int = Field(alias="from", description="0: the empty flag set")
    to: int
    changes: list[DiffChange]
    text: str
    description: DescriptionChange | None

    model_config = ConfigDict(populate_by_name=True)


class RolloutShare(BaseModel):
    id: str
    from_version: int
    to_version: int
    percent: float
    gets_new_version: bool


class ExplainStep(BaseModel):
    subject: str
    verdict: str
    details: list[str]


class Evaluation(BaseModel):
    """What a context gets for a flag, as an agent would serve it."""

    env: str
    version: int = Field(description="the version evaluated")
    rollout: RolloutShare | None = Field(
        description="the rollout in progress and whether this context is in its share"
    )
    flag: str
    value: Any
    variant: str | None
    reason: str
    error_code: str | None
    error_message: str | None
    flag_metadata: dict[str, Any]
    steps: list[ExplainStep] | None = Field(
        None, description="with explain (else absent): how it was decided"
    )
    text: str | None = Field(None, description="with explain (else absent): the same, for a person")


class EnvDeleted(BaseModel):
    env: str
    deleted: Literal[True]


# -- views -------------------------------------------------------------------------------


def env_json(service: FlagService, env: FlagEnvironment) -> dict[str, Any]:
    active = service.store.flag_rollouts.active_for(env.name)
    return {
        "name": env.name,
        "description": env.description,
        "current_version": env.current_version,
        "latest_version": env.latest_version,
        "created_at": env.created_at,
        "rollout": service.rollout_json(active) if active else None,
    }


def applied_json(service: FlagService, applied: Applied) -> dict[str, Any]:
    return {
        "env": applied.env,
        "version": applied.version.version,
        "previous_version": applied.previous,
        "changed": applied.changed,
        "note": applied.note,
        "diff": applied.diff.as_dict(),
        "diff_text": str(applied.diff),
        "rollout": service.rollout_json(applied.rollout) if applied.rollout else None,
    }
