"""The placement of a revision on the container backend (see ``select.Placement``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sluicegate.compute._container_parts import ContainerSpec
from sluicegate.compute._logfiles import LogRead
from sluicegate.compute.base import Adoption, Replica, ReplicaHealth
from sluicegate.errors import NotFoundError

if TYPE_CHECKING:
    from sluicegate.compute.container import ContainerCompute

__all__ = ["BoundContainer"]


@dataclass(frozen=True)
class BoundContainer:
    """``revision`` of ``service`` as containers; ``stop`` finds them by label even when
    this server never started them (after a restart)."""

    backend: ContainerCompute
    service: str
    revision: str
    spec: ContainerSpec

    async def start(self, deployment: str | None = None) -> list[Replica]:
        return await self.backend.start(self.service, self.revision, self.spec, deployment)

    async def health(self) -> list[ReplicaHealth]:
        return await self.backend.health(self.service, self.revision)

    async def stop(self) -> None:
        await self.backend.stop_spec(self.service, self.revision, self.spec)

    def endpoints(self) -> list[str]:
        """Those of the replicas within the spec's count: after a scale-in the router lets
        go of the others before they are stopped."""
        try:
            replicas = self.backend.replicas(self.service, self.revision)
        except NotFoundError:
            return []
        return [r.address for r in replicas if r.index < self.spec.replicas]

    async def adopt(self, records: Sequence[Replica]) -> Adoption:
        return await self.backend.adopt(self.service, self.revision, self.spec, records)

    def logs(self, replica: int | None = None, tail: int = 100) -> str:
        return self.backend.logs(self.service, self.revision, replica, tail)

    def read_logs(
        self,
        replica: int | None = None,
        after: Mapping[int, int] | None = None,
        count: int = 100,
    ) -> LogRead:
        return self.backend.read_logs(self.service, self.revision, replica, after, count)
