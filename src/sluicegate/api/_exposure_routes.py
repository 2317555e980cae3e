"""Flag exposures: agents report how often they evaluated each flag's variants, the server
sums them per minute (``store.flag_exposures``), readers see the totals.

``POST /v1/flags/{env}/exposures`` takes one agent report: only an agent token of ``env``
may send it (its name is recorded as the reporter), and what it may add is bounded
(:mod:`._exposure_guard`). The counts land in the minute holding the report's
``end`` (the server's current minute when ``end`` lies in the future: an agent's clock may
run ahead). A report with ``instance`` and ``seq`` (agents send both) is stored once: sent
again because its answer was lost, it is acknowledged and not counted a second time.
``GET /v1/flags/{env}/exposures`` answers the totals per flag x variant and the agents
that reported in the range.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationInfo, field_validator

from sluicegate.api._auth import Caller, require_exposure_reporter
from sluicegate.api._deps import Reader, now_of, store_of
from sluicegate.api._exposure_guard import ExposureGuard
from sluicegate.api._shapes import COMMON_ERRORS, INT64_MAX, errors

__all__ = ["MAX_COUNT", "MAX_COUNTS", "router"]

router = APIRouter(prefix="/v1/flags", tags=["flags"], responses=COMMON_ERRORS)
Reporter = Annotated[Caller, Depends(require_exposure_reporter)]

#: (flag, variant) pairs in one report (the agent sends at most this many at a time).
MAX_COUNTS = 1000
#: Evaluations of one (flag, variant) in one report: far above any agent's, far enough below
#: 2**63 that the per-minute sums the store keeps cannot overflow.
MAX_COUNT = 10**9
_NAME_LENGTH = 200


class ExposureCount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flag: Annotated[str, Field(min_length=1, max_length=_NAME_LENGTH)]
    variant: Annotated[
        str, Field(max_length=_NAME_LENGTH, description="the variant, or error:CODE for a failure")
    ]
    count: Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]


class ExposureReport(BaseModel):
    """Evaluations an agent counted in the wall-clock span [start, end] (epoch seconds)."""

    model_config = ConfigDict(extra="forbid")

    agent: Annotated[str, Field(min_length=1, max_length=_NAME_LENGTH)]
    instance: Annotated[
        str | None, Field(min_length=1, max_length=64, description="the agent process")
    ] = None
    seq: Annotated[
        StrictInt | None,
        Field(ge=1, le=INT64_MAX, description="the instance's report number, from 1"),
    ] = None
    start: Annotated[float, Field(ge=0)]
    end: Annotated[float, Field(ge=0)]
    counts: Annotated[list[ExposureCount], Field(max_length=MAX_COUNTS)]

    @field_validator("start", "end")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number of seconds")
        return v

    @field_validator("end")
    @classmethod
    def _after_start(cls, v: float, info: ValidationInfo) -> float:
        start = info.data.get("start")
        if isinstance(start, float) and v < start:
            raise ValueError(f"end ({v}) is before start ({start})")
        return v

    @field_validator("seq")
    @classmethod
    def _with_instance(cls, v: int | None, info: ValidationInfo) -> int | None:
        if (v is None) != (info.data.get("instance") is None):
            raise ValueError("give instance and seq together, or neither")
        return v


class ExposureStored(BaseModel):
    env: str
    minute: int = Field(description="the minute (its start, epoch seconds) the counts went to")
    stored: bool = Field(description="false: this instance's report seq was stored before")
    evaluations: int = Field(description="evaluations added")
    ignored: int = Field(
        0, description="counts of series this environment cannot have (unknown flags/variants)"
    )


class VariantTotal(BaseModel):
    flag: str
    variant: str = Field(description="the variant, or error:CODE for a failure")
    count: int
    last_minute: int = Field(description="the newest minute it was seen in (epoch seconds)")


class ExposureAgent(BaseModel):
    agent: str
    instance: str
    reports: int = Field(description="the newest report number of the instance")
    first_seen: float
    last_seen: float


class Exposures(BaseModel):
    env: str
    flag: str | None
    since: int = Field(description="the first minute counted (epoch seconds)")
    now: float
    evaluations: int
    variants: list[VariantTotal]
    agents: list[ExposureAgent] = Field(description="the agents that reported in the range")


@router.post(
    "/{env}/exposures",
    summary="Report flag evaluations (agents)",
    response_model=ExposureStored,
    responses=errors(404),
)
def report_exposures(
    env: str, report: ExposureReport, request: Request, caller: Reporter
) -> dict[str, Any]:
    """Add an agent's counts to ``env``'s minute of the report's end."""
    store = store_of(request)
    store.flags.environment(env)  # 404 for an unknown environment
    guard = _guard(request)
    guard.admit(env, caller.name)
    minute = int(min(report.end, now_of(request))) // 60 * 60
    counts, ignored = guard.keep(env, [(c.flag, c.variant, c.count) for c in report.counts])
    agent = report.agent if caller.role != "agent" else f"{caller.name}/{report.agent}"
    if report.instance is not None and report.seq is not None:
        stored = store.flag_exposures.add_report(
            env, minute, counts, agent=agent, instance=report.instance, seq=report.seq
        )
    else:
        store.flag_exposures.add(env, minute, counts)
        stored = True
    return {
        "env": env,
        "minute": minute,
        "stored": stored,
        "evaluations": sum(c for _, _, c in counts) if stored else 0,
        "ignored": ignored,
    }


def _guard(request: Request) -> ExposureGuard:
    guard: ExposureGuard | None = getattr(request.app.state, "exposure_guard", None)
    if guard is None:
        guard = request.app.state.exposure_guard = ExposureGuard(store_of(request))
    return guard


@router.get(
    "/{env}/exposures",
    summary="Flag evaluations per flag and variant",
    response_model=Exposures,
    responses=errors(404),
)
def get_exposures(
    env: str,
    request: Request,
    caller: Reader,
    flag: str | None = None,
    since: Annotated[
        int | None, Query(ge=0, le=INT64_MAX, description="epoch seconds; default: an hour ago")
    ] = None,
) -> dict[str, Any]:
    """Totals per flag x variant over the minutes from the one holding ``since`` on, with
    the newest minute each was seen in."""
    store = store_of(request)
    store.flags.environment(env)
    now = now_of(request)
    start = (int(now) - 3600 if since is None else since) // 60 * 60
    totals = store.flag_exposures.totals(env, start, flag)
    return {
        "env": env,
        "flag": flag,
        "since": start,
        "now": now,
        "evaluations": sum(t.count for t in totals),
        "variants": [
            {"flag": t.flag, "variant": t.variant, "count": t.count, "last_minute": t.last_minute}
            for t in totals
        ],
        "agents": [
            {
                "agent": a.agent,
                "instance": a.instance,
                "reports": a.last_seq,
                "first_seen": a.first_seen,
                "last_seen": a.last_seen,
            }
            for a in store.flag_exposures.reporters(env, start)
        ],
    }
