"""Bearer tokens, each able to do exactly its job. Only token hashes are stored.

The broad roles nest: admin ⊇ deployer ⊇ reader. **deployer and admin can run commands on
the server host** (a service's ``compute.local.command``, command hooks): give them to people
and pipelines that deploy. Three narrow roles stand beside them and pass nothing else:

- ``agent``: reads one flag environment's snapshots and reports that environment's exposures
  (:func:`require_flag_reader`, :func:`require_exposure_reporter`);
- ``metrics``: pushes datapoints, optionally for one service (:func:`require_metrics_pusher`);
- ``alertmanager``: feeds the Alertmanager receiver (:func:`require_alertmanager`).

Every check reads the token from the store, so a revoked or expired token fails at once, on
every server. The caller's ``name`` (the token's name) is what events record as the actor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request

from sluicegate.store import Store

__all__ = [
    "Caller",
    "require",
    "require_alertmanager",
    "require_exposure_reporter",
    "require_flag_reader",
    "require_metrics_pusher",
]

_RANK = {"reader": 0, "deployer": 1, "admin": 2}


@dataclass(frozen=True)
class Caller:
    role: str
    name: str  # the token's name: the actor in events
    env: str | None = None  # agent tokens: the environment
    service: str | None = None  # metrics tokens limited to one service


_INSECURE = Caller("admin", "insecure")


def _bearer(request: Request) -> Caller:
    """The caller the request's bearer token names; 401 when there is none, or it is
    unknown, revoked or expired."""
    store: Store = request.app.state.store
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    found = store.tokens.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise HTTPException(
            401,
            "missing, unknown, revoked or expired bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Caller(found.role, found.name, found.env, found.service)


def _refuse(caller: Caller, needs: str) -> HTTPException:
    return HTTPException(403, f"this call needs {needs}; the token {caller.name!r} is "
                              f"{caller.role}")  # fmt: skip


def require(role: str) -> Callable[[Request], Caller]:
    """A FastAPI dependency admitting callers whose token has at least ``role``."""

    def check(request: Request) -> Caller:
        if request.app.state.insecure:
            return _INSECURE
        caller = _bearer(request)
        if _RANK.get(caller.role, -1) < _RANK[role]:
            raise _refuse(caller, f"the {role} role")
        return caller

    return check


def require_flag_reader(request: Request, env: str) -> Caller:
    """``/v1/flags/{env}/...`` reads: a reader (or higher) token, or an agent token scoped
    to ``env``."""
    if request.app.state.insecure:
        return _INSECURE
    caller = _bearer(request)
    if caller.role == "agent":
        if caller.env != env:
            raise HTTPException(
                403, f"this agent token reads environment {caller.env!r}, not {env!r}"
            )
        return caller
    if caller.role not in _RANK:
        raise _refuse(caller, "a reader token or an agent token of this environment")
    return caller


def require_exposure_reporter(request: Request, env: str) -> Caller:
    """Exposure reports drive alarms and rollbacks: only an agent key of ``env`` makes them
    (not readers, not other environments' agents)."""
    if request.app.state.insecure:
        return _INSECURE
    caller = _bearer(request)
    if caller.role == "agent" and caller.env != env:
        raise HTTPException(
            403, f"this agent token reports for environment {caller.env!r}, not {env!r}"
        )
    if caller.role != "agent":
        raise _refuse(caller, f"an agent token of environment {env!r}")
    return caller


def require_metrics_pusher(request: Request) -> Caller:
    """Pushing datapoints: a ``metrics`` token (its service scope is checked per datapoint
    by the route), or a deployer/admin."""
    if request.app.state.insecure:
        return _INSECURE
    caller = _bearer(request)
    if caller.role != "metrics" and _RANK.get(caller.role, -1) < _RANK["deployer"]:
        raise _refuse(caller, "a metrics token (or a deployer)")
    return caller


def require_alertmanager(request: Request) -> Caller:
    """The Alertmanager receiver: an ``alertmanager`` token, or a deployer/admin."""
    if request.app.state.insecure:
        return _INSECURE
    caller = _bearer(request)
    if caller.role != "alertmanager" and _RANK.get(caller.role, -1) < _RANK["deployer"]:
        raise _refuse(caller, "an alertmanager token (or a deployer)")
    return caller
