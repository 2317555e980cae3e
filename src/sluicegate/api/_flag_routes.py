"""The flags API: environments, versions (ETag/If-Match), diffs, evaluation, rollouts.

Readers read and evaluate; deployers create environments and change flag sets. A flag set
travels as a JSON document; problems with it are reported at paths inside the document
(``flags.new-checkout.rules[0].when``), problems with the rollout under ``rollout.``.
``ETag`` is always the environment's current version (``"0"`` before the first);
``If-Match`` on a change must name it, or the change is refused with 409.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, Field

from sluicegate.api._auth import Caller, require
from sluicegate.errors import NotFoundError, Problem, SpecError
from sluicegate.flags import flag_set_schema
from sluicegate.flags.rollout import RolloutCommand
from sluicegate.flagservice import Applied, FlagService
from sluicegate.store import FlagEnvironment

router = APIRouter(prefix="/v1/flags", tags=["flags"])
Reader = Annotated[Caller, Depends(require("reader"))]
Deployer = Annotated[Caller, Depends(require("deployer"))]
IfMatch = Annotated[str | None, Header(description='the current version, like "7"')]
_ETAG = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')


def _flags(request: Request) -> FlagService:
    service: FlagService = request.app.state.flags
    return service


def _expected(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    m = _ETAG.match(if_match.strip())
    if m is None:
        raise SpecError(
            [
                Problem(
                    "If-Match",
                    f"{if_match!r} is not a version; send the ETag "
                    'of GET /v1/flags/{env}, like "7"',
                )
            ]
        )
    return int(m.group(1))


def _etag(response: Response, service: FlagService, env: str) -> None:
    current = service.store.flags.environment(env).current_version
    response.headers["ETag"] = f'"{current or 0}"'


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


def _applied_json(service: FlagService, applied: Applied) -> dict[str, Any]:
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


@router.get("/schema")
def schema() -> dict[str, Any]:
    """The flag-set document's JSON Schema (draft 2020-12); public, like the docs."""
    return flag_set_schema()


@router.get("/envs")
def list_envs(request: Request, caller: Reader) -> list[dict[str, Any]]:
    service = _flags(request)
    return [env_json(service, e) for e in service.store.flags.environments()]


class EnvRequest(BaseModel):
    name: str
    description: str = ""


@router.post("/envs", status_code=201)
def create_env(req: EnvRequest, request: Request, caller: Deployer) -> dict[str, Any]:
    service = _flags(request)
    return env_json(service, service.create_environment(req.name, req.description, caller.name))


@router.get("/{env}")
def get_flag_set(env: str, request: Request, response: Response, caller: Reader) -> dict[str, Any]:
    """The current version everyone is served (outside a rollout's share), and the rollout
    in progress if any: agents evaluate ``rollout.to_version`` for the users in its share."""
    service = _flags(request)
    info = service.store.flags.environment(env)
    out = env_json(service, info)
    out.update(
        env=env,
        version=info.current_version,
        document=None,
        created_at=None,
        actor=None,
        message=None,
    )
    if info.current_version is not None:
        v = service.store.flags.version(env, info.current_version)
        out.update(document=v.document, created_at=v.created_at, actor=v.actor, message=v.message)
    response.headers["ETag"] = f'"{info.current_version or 0}"'
    return out


class ApplyRequest(BaseModel):
    document: Any = Field(description="the flag set (JSON); validated, stored in normal form")
    message: str = Field("", max_length=2000)
    rollout: dict[str, Any] | None = Field(
        None,
        description="publish gradually: {strategy, bake_time, alarms}; "
        "without it the version is published at once",
    )


@router.put("/{env}")
async def put_flag_set(
    env: str,
    req: ApplyRequest,
    request: Request,
    response: Response,
    caller: Deployer,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    service = _flags(request)
    expected = _expected(if_match)
    applied = await service.apply(
        env,
        req.document,
        actor=caller.name,
        message=req.message,
        expected_version=expected,
        rollout=req.rollout,
    )
    response.status_code = 201 if applied.changed else 200
    _etag(response, service, env)
    return _applied_json(service, applied)


class RevertRequest(BaseModel):
    to: int = Field(ge=1)
    message: str = Field("", max_length=2000)
    rollout: dict[str, Any] | None = None


@router.post("/{env}/revert")
async def revert(
    env: str,
    req: RevertRequest,
    request: Request,
    response: Response,
    caller: Deployer,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    service = _flags(request)
    applied = await service.revert(
        env,
        req.to,
        actor=caller.name,
        message=req.message,
        expected_version=_expected(if_match),
        rollout=req.rollout,
    )
    response.status_code = 201 if applied.changed else 200
    _etag(response, service, env)
    return _applied_json(service, applied)


@router.get("/{env}/versions")
def versions(
    env: str, request: Request, caller: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[dict[str, Any]]:
    return _flags(request).history(env, limit)


@router.get("/{env}/versions/{number}")
def version(env: str, number: int, request: Request, caller: Reader) -> dict[str, Any]:
    v = _flags(request).store.flags.version(env, number)
    return {
        "env": v.env,
        "version": v.version,
        "document": v.document,
        "created_at": v.created_at,
        "actor": v.actor,
        "message": v.message,
    }


@router.get("/{env}/diff")
def diff(
    env: str,
    request: Request,
    caller: Reader,
    from_version: Annotated[int | None, Query(alias="from", ge=0)] = None,
    to_version: Annotated[int | None, Query(alias="to", ge=1)] = None,
) -> dict[str, Any]:
    """``from`` → ``to``; default the newest version against the one before it."""
    frm, to, d = _flags(request).diff(env, from_version, to_version)
    return {
        "env": env,
        "from": frm,
        "to": to,
        "changes": d.as_dict(),
        "text": str(d),
        "description": None
        if d.description is None
        else {"old": d.description.old, "new": d.description.new},
    }


class EvaluateRequest(BaseModel):
    key: str = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    explain: bool = False
    version: int | None = Field(None, ge=1, description="default: what this context gets now")


@router.post("/{env}/evaluate")
def evaluate(env: str, req: EvaluateRequest, request: Request, caller: Reader) -> dict[str, Any]:
    return _flags(request).evaluate(
        env, req.key, req.context, version=req.version, explain=req.explain
    )


@router.get("/{env}/rollout")
def rollout(env: str, request: Request, caller: Reader) -> dict[str, Any]:
    """The rollout in progress, else the newest one."""
    service = _flags(request)
    service.store.flags.environment(env)
    found = service.store.flag_rollouts.list(env, limit=1)
    if not found:
        raise NotFoundError(f"flag environment {env!r} has had no rollout yet")
    out = service.rollout_json(found[0])
    out["events"] = [
        {"at": e.at, "actor": e.actor, "kind": e.kind, "message": e.message}
        for e in service.store.events.list(subject=f"flags/{env}", limit=200)
        if e.data.get("rollout") == found[0].id
    ]
    return out


@router.get("/{env}/rollouts")
def rollouts(
    env: str, request: Request, caller: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> list[dict[str, Any]]:
    service = _flags(request)
    service.store.flags.environment(env)
    return [service.rollout_json(r) for r in service.store.flag_rollouts.list(env, limit=limit)]


@router.post("/{env}/rollout/{command}")
async def rollout_command(
    env: str, command: RolloutCommand, request: Request, caller: Deployer
) -> dict[str, Any]:
    """``stop`` or ``rollback``: everyone back on the current version at once."""
    service = _flags(request)
    return service.rollout_json(await service.rollouts.command(env, command, caller.name))
