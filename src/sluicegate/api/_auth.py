"""Bearer tokens with roles: admin ⊇ deployer ⊇ reader. Only token hashes are stored.

An ``agent`` token ranks below all of them: it reads one environment's flag snapshots
(:func:`require_flag_reader`) and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request

from sluicegate.store import Store

__all__ = ["Caller", "require", "require_flag_reader"]

_RANK = {"reader": 0, "deployer": 1, "admin": 2}


@dataclass(frozen=True)
class Caller:
    role: str
    name: str


def _bearer(request: Request) -> tuple[str, str | None]:
    """The role and environment scope of the request's bearer token; 401 when there is
    none or it is unknown."""
    store: Store = request.app.state.store
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    found = store.tokens.verify_scoped(token.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise HTTPException(
            401, "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return found


def require(role: str) -> Callable[[Request], Caller]:
    """A FastAPI dependency admitting callers whose token has at least ``role``."""

    def check(request: Request) -> Caller:
        if request.app.state.insecure:
            return Caller("admin", "insecure")
        found, _ = _bearer(request)
        if _RANK.get(found, -1) < _RANK[role]:
            raise HTTPException(403, f"this call needs the {role} role; the token is {found}")
        return Caller(found, found)

    return check


def require_flag_reader(request: Request, env: str) -> Caller:
    """A FastAPI dependency for ``/v1/flags/{env}/...`` reads: a reader (or higher) token,
    or an agent token scoped to ``env``."""
    if request.app.state.insecure:
        return Caller("admin", "insecure")
    role, scope = _bearer(request)
    if role == "agent":
        if scope != env:
            raise HTTPException(403, f"this agent token reads environment {scope!r}, not {env!r}")
        return Caller(role, f"agent:{scope}")
    return Caller(role, role)
