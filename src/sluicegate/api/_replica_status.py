"""Per replica of a service's serving (and deploying) revisions: where it runs and how it is."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from sluicegate.deploy.controller import Controller
from sluicegate.errors import NotFoundError, SpecError

__all__ = ["ReplicaStatus", "replica_status"]


class ReplicaStatus(BaseModel):
    revision: str
    replica: int = Field(description="the replica's index, from 0")
    address: str = Field(description="host:port the router sends to")
    host: str = Field(description="where it runs: a container engine's URL, or 'local'")
    container: str | None = Field(description="the container's id (containers only)")
    image: str | None = Field(description="the container's image id, sha256:... (containers)")
    pid: int | None = Field(description="the process id (local processes only)")
    state: str = Field(description="running, restarting, failed or stopping")
    restarts: int
    healthy: bool
    detail: str = Field(description="the health check's answer (HTTP 200), or why none came")


async def replica_status(ctl: Controller, name: str) -> list[dict[str, Any]]:
    """Each replica of the current revision and of the active deployment's, with a fresh
    health check (bounded by the backend's probe timeout)."""
    world = ctl.world
    try:
        spec = world.spec_of(name)
    except (NotFoundError, ValueError):
        return []
    active = ctl.store.deployments.active_for(name)
    revisions = [world.current_revision(name), active.revision if active else None]
    out: list[dict[str, Any]] = []
    for revision in dict.fromkeys(r for r in revisions if r):
        try:
            health = await world.place(spec, revision).health()
        except (NotFoundError, SpecError):
            continue
        for h in health:
            r = h.replica
            out.append(
                {
                    "revision": revision,
                    "replica": r.index,
                    "address": r.address,
                    "host": r.engine or ("local" if r.pid is not None else r.host),
                    "container": r.container,
                    "image": r.image,
                    "pid": r.pid,
                    "state": h.state.value,
                    "restarts": h.restarts,
                    "healthy": h.healthy,
                    "detail": f"HTTP {h.status_code}" if h.status_code else h.detail,
                }
            )
    return out
