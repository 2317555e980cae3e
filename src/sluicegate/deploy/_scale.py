"""Scaling the serving revision (ECS's desired count): pure planning apart from the verb."""

from __future__ import annotations

from typing import Any

from sluicegate.errors import Problem, SpecError
from sluicegate.spec.service import ServiceSpec

__all__ = ["DRAIN", "SCALE_WAIT", "scaled_spec"]

DRAIN = 1.0
"""Seconds between taking replicas out of the router and stopping them: the requests they
are serving finish meanwhile (the router sends them no new ones)."""

SCALE_WAIT = 60.0
"""Seconds a scale-out waits at most for its new replicas' health (it holds the deploy
engine's lock meanwhile, so it is kept short)."""


def scaled_spec(spec: ServiceSpec, replicas: int) -> ServiceSpec:
    """``spec`` with ``replicas`` as its backend's count; SpecError for a backend that has no
    count (external endpoints are listed, not scaled)."""
    kind = spec.compute.kind
    data: dict[str, Any] = spec.model_dump(mode="json")
    if "replicas" not in data["compute"][kind]:
        why = "its endpoints are listed, not started by Sluicegate: change the list and apply"
        raise SpecError([Problem(f"compute.{kind}", why)])
    data["compute"][kind]["replicas"] = replicas
    return ServiceSpec.model_validate(data)
