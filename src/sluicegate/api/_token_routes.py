"""``POST /v1/tokens``: new API tokens (admin only); the token is shown once."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sluicegate.api._deps import Admin, store_of
from sluicegate.api._shapes import AUTH_ERRORS

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["tokens"], responses=AUTH_ERRORS)
Role = Literal["admin", "deployer", "reader", "agent"]


class TokenRequest(BaseModel):
    role: Role
    name: str = Field("", max_length=200, description="what the token is for")
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


@router.post("/tokens", status_code=201, response_model=TokenCreated)
def create_token(req: TokenRequest, request: Request, caller: Admin) -> TokenCreated:
    name = req.name or (f"agent-{req.env}" if req.role == "agent" else req.role)
    token = store_of(request).tokens.create(req.role, name, req.env)
    return TokenCreated(role=req.role, name=name, env=req.env, token=token)
