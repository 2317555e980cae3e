"""``POST /v1/services/{name}/scale``: the serving revision's replica count (ECS's desired
count). Registered before the service routes, whose ``/{command}`` would take the path."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sluicegate.api._deps import Deployer, ctl_of
from sluicegate.api._shapes import COMMON_ERRORS, errors

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["services"], responses=COMMON_ERRORS)


class ScaleRequest(BaseModel):
    replicas: Annotated[int, Field(ge=1, le=64, description="the count to run")]


class ServiceScaled(BaseModel):
    service: str
    revision: str = Field(description="the serving revision, now at `replicas`")
    replicas: int
    was: int = Field(description="how many it ran before")


@router.post("/services/{name}/scale", response_model=ServiceScaled, responses=errors(404, 409))
async def scale_service(
    name: str, req: ScaleRequest, request: Request, caller: Deployer
) -> dict[str, Any]:
    """Run ``replicas`` of the serving revision (stored in the spec: the next deployment
    starts as many). Scaling in takes replicas out of the router before stopping them;
    scaling out routes to the new ones once healthy. 409 during a deployment."""
    revision, was = await ctl_of(request).scale(name, req.replicas, caller.name)
    return {"service": name, "revision": revision, "replicas": req.replicas, "was": was}
