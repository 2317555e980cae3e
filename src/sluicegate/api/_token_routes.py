"""``POST /v1/tokens``: new API tokens (admin only); the token is shown once."""

from __future__ import annotations

import secrets
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sluicegate.api._deps import Admin, store_of
from sluicegate.api._shapes import COMMON_ERRORS, errors

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["tokens"], responses=COMMON_ERRORS)
Role = Literal["admin", "deployer", "reader", "agent"]


class TokenRequest(BaseModel):
    role: Role
    name: str = Field(
        "",
        max_length=100,
        description="what the token is for, unique among valid tokens; default: the role "
        "and a random suffix",
    )
    env: str | None = Field(
        None,
        max_length=200,
        description="agent tokens only (and required): the one flag environment the token reads",
    )


class TokenCreated(BaseModel):
    role: Role
    name: str
    env: str | None
    token: str = Field(description="shown this once; only its hash is stored")


@router.post("/tokens", status_code=201, response_model=TokenCreated, responses=errors(409))
def create_token(req: TokenRequest, request: Request, caller: Admin) -> TokenCreated:
    """409 when a valid token already has the name."""
    kind = f"agent-{req.env}" if req.role == "agent" else req.role
    name = req.name or f"{kind}-{secrets.token_hex(3)}"
    token = store_of(request).tokens.create(req.role, name, req.env)
    return TokenCreated(role=req.role, name=name, env=req.env, token=token)
