"""``/v1/tokens``: API tokens (admin only): create (shown once), list, revoke by name."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field, field_validator

from sluicegate.api._deps import Admin, store_of
from sluicegate.api._shapes import COMMON_ERRORS, errors
from sluicegate.spec import parse_duration
from sluicegate.store import Token

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["tokens"], responses=COMMON_ERRORS)
Role = Literal["admin", "deployer", "reader", "agent", "metrics", "alertmanager"]
_MAX_TTL = 10 * 365 * 86400


class TokenRequest(BaseModel):
    role: Role = Field(
        description="admin ⊇ deployer ⊇ reader (deployer and admin can run commands on the "
        "server host); agent: one environment's flags; metrics: push datapoints; "
        "alertmanager: the Alertmanager receiver"
    )
    name: str = Field(
        "",
        max_length=100,
        description="what the token is for, unique among valid tokens; events name the "
        "caller by it; default: the role and a random suffix",
    )
    env: str | None = Field(
        None,
        max_length=200,
        description="agent tokens only (and required): the one flag environment the token reads",
    )
    service: str | None = Field(
        None, max_length=200, description="metrics tokens only: push for this service only"
    )
    ttl: str | None = Field(
        None, description="the token expires after this long, e.g. 90d, 12h (default: never)"
    )

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: str | None) -> str | None:
        if v is not None and not 0 < parse_duration(v) <= _MAX_TTL:
            raise ValueError("must be more than 0 and at most 10 years")
        return v


class TokenCreated(BaseModel):
    role: Role
    name: str
    env: str | None
    service: str | None = None
    expires_at: float | None = None
    token: str = Field(description="shown this once; only its hash is stored")


class TokenInfo(BaseModel):
    """A token's metadata: never the token or its hash."""

    id: str
    role: Role
    name: str
    env: str | None
    service: str | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    valid: bool


def _info(t: Token, now: float) -> TokenInfo:
    return TokenInfo(
        id=t.id,
        role=t.role,
        name=t.name,
        env=t.env,
        service=t.service,
        created_at=t.created_at,
        expires_at=t.expires_at,
        revoked_at=t.revoked_at,
        valid=t.valid_at(now),
    )


@router.post("/tokens", status_code=201, response_model=TokenCreated, responses=errors(409))
def create_token(req: TokenRequest, request: Request, caller: Admin) -> TokenCreated:
    """409 when a valid token already has the name."""
    kind = f"agent-{req.env}" if req.role == "agent" else req.role
    name = req.name or f"{kind}-{secrets.token_hex(3)}"
    store = store_of(request)
    ttl = parse_duration(req.ttl) if req.ttl is not None else None
    token = store.tokens.create(req.role, name, req.env, service=req.service, ttl=ttl)
    created = store.tokens.authenticate(token)
    store.events.append(
        "token.created", name, f"token {name} ({req.role}) created", actor=caller.name
    )
    return TokenCreated(
        role=req.role,
        name=name,
        env=req.env,
        service=req.service,
        expires_at=created.expires_at if created else None,
        token=token,
    )


@router.get("/tokens", response_model=list[TokenInfo])
def list_tokens(request: Request, caller: Admin) -> list[TokenInfo]:
    """Every token's metadata, revoked and expired ones too, oldest first."""
    store = store_of(request)
    now = store.clock.now()
    return [_info(t, now) for t in store.tokens.list()]


@router.delete("/tokens/{name}", response_model=TokenInfo, responses=errors(404))
def revoke_token(
    name: Annotated[str, Path(max_length=100, description="the token's name (or id)")],
    request: Request,
    caller: Admin,
) -> TokenInfo:
    """Revoke the valid token with this name: it fails at once, on every server."""
    store = store_of(request)
    revoked = store.tokens.revoke_named(name)
    store.events.append(
        "token.revoked", revoked.name, f"token {revoked.name} ({revoked.role}) revoked",
        actor=caller.name,
    )  # fmt: skip
    return _info(revoked, store.clock.now())
