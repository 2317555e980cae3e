"""The flags API: environments, versions (ETag/If-Match), diffs, evaluation, rollouts.

Readers read and evaluate; deployers create environments and change flag sets; admins
delete environments. A flag set travels as a JSON document; problems with it are reported
at paths inside the document (``flags.new-checkout.rules[0].when``), problems with the
rollout under ``rollout.``. ``ETag`` is always the environment's current version (``"0"``
before the first); ``If-Match`` on a change must name it, or the change is refused with 409.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response

from sluicegate.api._deps import Admin, Deployer, Reader
from sluicegate.api._flag_models import (
    ApplyRequest,
    EnvDeleted,
    EnvRequest,
    EvaluateBatchRequest,
    EvaluateRequest,
    Evaluation,
    FlagEnv,
    FlagRollout,
    FlagSet,
    FlagSetApplied,
    FlagSetDiff,
    FlagSetVersion,
    RevertRequest,
    RolloutDetail,
    VersionInfo,
    applied_json,
    env_json,
)
from sluicegate.api._shapes import COMMON_ERRORS, INT64_MAX, errors
from sluicegate.errors import NotFoundError, Problem, SpecError
from sluicegate.flags import flag_set_schema
from sluicegate.flags.rollout import RolloutCommand
from sluicegate.flagservice import FlagService

__all__ = ["router"]

router = APIRouter(prefix="/v1/flags", tags=["flags"])
IfMatch = Annotated[str | None, Header(description='the current version, like "7"')]
_ETAG = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')
_ETAG_HEADER = {
    "ETag": {"description": 'the current version, like "7"', "schema": {"type": "string"}}
}
_CHANGE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Unchanged: the document equals the current version",
        "headers": _ETAG_HEADER,
    },
    201: {
        "description": "Saved as a new version",
        "model": FlagSetApplied,
        "headers": _ETAG_HEADER,
    },
    **COMMON_ERRORS,
    **errors(404, 409),
}


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


@router.get("/schema", response_model=dict[str, Any])
def schema() -> dict[str, Any]:
    """The flag-set document's JSON Schema (draft 2020-12); public, like the docs."""
    return flag_set_schema()


@router.get("/envs", response_model=list[FlagEnv], responses=COMMON_ERRORS)
def list_envs(request: Request, caller: Reader) -> list[dict[str, Any]]:
    service = _flags(request)
    return [env_json(service, e) for e in service.store.flags.environments()]


@router.post(
    "/envs", status_code=201, response_model=FlagEnv, responses={**COMMON_ERRORS, **errors(409)}
)
def create_env(req: EnvRequest, request: Request, caller: Deployer) -> dict[str, Any]:
    service = _flags(request)
    return env_json(service, service.create_environment(req.name, req.description, caller.name))


@router.delete(
    "/envs/{env}", response_model=EnvDeleted, responses={**COMMON_ERRORS, **errors(404, 409)}
)
def delete_env(env: str, request: Request, caller: Admin) -> dict[str, Any]:
    """Delete the environment with its versions and rollouts; refused (409) while it is in
    use: a rollout in progress, agent tokens scoped to it, or the router's flag env."""
    _flags(request).delete_environment(env, caller.name, keep=request.app.state.router_flags_env)
    return {"env": env, "deleted": True}


@router.get("/{env}", response_model=FlagSet, responses={**COMMON_ERRORS, **errors(404)})
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


@router.put("/{env}", response_model=FlagSetApplied, responses=_CHANGE_ANSWERS)
async def put_flag_set(
    env: str,
    req: ApplyRequest,
    request: Request,
    response: Response,
    caller: Deployer,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Save the document as version N+1 (201), or nothing when it is unchanged (200)."""
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
    return applied_json(service, applied)


@router.post("/{env}/revert", response_model=FlagSetApplied, responses=_CHANGE_ANSWERS)
async def revert(
    env: str,
    req: RevertRequest,
    request: Request,
    response: Response,
    caller: Deployer,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Save version ``to``'s document again as version N+1."""
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
    return applied_json(service, applied)


@router.get(
    "/{env}/versions",
    response_model=list[VersionInfo],
    responses={**COMMON_ERRORS, **errors(404)},
)
def versions(
    env: str, request: Request, caller: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[dict[str, Any]]:
    """Newest first, each with what became of it."""
    return _flags(request).history(env, limit)


@router.get(
    "/{env}/versions/{number}",
    response_model=FlagSetVersion,
    responses={**COMMON_ERRORS, **errors(404)},
)
def version(
    env: str,
    number: Annotated[int, Path(ge=1, le=INT64_MAX)],
    request: Request,
    caller: Reader,
) -> dict[str, Any]:
    v = _flags(request).store.flags.version(env, number)
    return {
        "env": v.env,
        "version": v.version,
        "document": v.document,
        "created_at": v.created_at,
        "actor": v.actor,
        "message": v.message,
    }


@router.get("/{env}/diff", response_model=FlagSetDiff, responses={**COMMON_ERRORS, **errors(404)})
def diff(
    env: str,
    request: Request,
    caller: Reader,
    from_version: Annotated[int | None, Query(alias="from", ge=0, le=INT64_MAX)] = None,
    to_version: Annotated[int | None, Query(alias="to", ge=1, le=INT64_MAX)] = None,
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


@router.post(
    "/{env}/evaluate",
    response_model=Evaluation,
    response_model_exclude_unset=True,  # steps and text only with explain
    responses={**COMMON_ERRORS, **errors(404)},
)
def evaluate(env: str, req: EvaluateRequest, request: Request, caller: Reader) -> dict[str, Any]:
    """Evaluate a flag for a context server-side, as an agent would serve it."""
    return _flags(request).evaluate(
        env, req.key, req.context, version=req.version, explain=req.explain
    )


@router.post(
    "/{env}/evaluate/batch",
    response_model=list[Evaluation],
    response_model_exclude_unset=True,
    responses={**COMMON_ERRORS, **errors(404)},
)
def evaluate_batch(
    env: str, req: EvaluateBatchRequest, request: Request, caller: Reader
) -> list[dict[str, Any]]:
    """Evaluate up to 1,000 (flag, context) pairs in one call, as an agent would serve each
    (the environment and its rollout are read once)."""
    return _flags(request).evaluate_many(env, [(r.key, r.context) for r in req.requests])


@router.get(
    "/{env}/rollout", response_model=RolloutDetail, responses={**COMMON_ERRORS, **errors(404)}
)
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


@router.get(
    "/{env}/rollouts", response_model=list[FlagRollout], responses={**COMMON_ERRORS, **errors(404)}
)
def rollouts(
    env: str, request: Request, caller: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> list[dict[str, Any]]:
    """Newest first."""
    service = _flags(request)
    service.store.flags.environment(env)
    return [service.rollout_json(r) for r in service.store.flag_rollouts.list(env, limit=limit)]


@router.post(
    "/{env}/rollout/{command}",
    response_model=FlagRollout,
    responses={**COMMON_ERRORS, **errors(404, 409)},
)
async def rollout_command(
    env: str,
    command: RolloutCommand,
    request: Request,
    caller: Deployer,
    reason: Annotated[
        str,
        Query(
            max_length=500,
            description="why: recorded with the token's name in a `flags.rollout.command` event",
        ),
    ] = "",
) -> dict[str, Any]:
    """``stop`` or ``rollback``: everyone back on the current version at once."""
    service = _flags(request)
    why = " ".join(reason.split())
    return service.rollout_json(await service.rollouts.command(env, command, caller.name, why))
