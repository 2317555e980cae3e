"""Placements: a revision bound to its backend and the backend's spec (see ``select``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sluicegate.compute._logfiles import LogRead, LogReader
from sluicegate.compute.base import Adoption, Compute, ExternalSpec, Replica, ReplicaHealth
from sluicegate.errors import NotFoundError

__all__ = ["Bound", "BoundExternal"]

SpecT = TypeVar("SpecT")


@dataclass(frozen=True)
class Bound(Generic[SpecT]):
    """A :class:`~sluicegate.compute.select.Placement` over any :class:`Compute` backend."""

    backend: Compute[SpecT]
    service: str
    revision: str
    spec: SpecT

    async def start(self, deployment: str | None = None) -> list[Replica]:
        return await self.backend.start(self.service, self.revision, self.spec)

    async def health(self) -> list[ReplicaHealth]:
        return await self.backend.health(self.service, self.revision)

    async def stop(self) -> None:
        await self.backend.stop(self.service, self.revision, getattr(self.spec, "stop_grace", None))

    def endpoints(self) -> list[str]:
        """Those of the replicas within the spec's count (by index): after a scale-in the
        router lets go of the others before they are stopped."""
        try:
            found = self.backend.endpoints(self.service, self.revision)
        except NotFoundError:
            return []
        return found[: getattr(self.spec, "replicas", len(found))]

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
        """Lines with positions from a backend that keeps them (:class:`LogReader`); from
        any other, its tail as a ``note`` (nothing to follow)."""
        backend = self.backend
        if isinstance(backend, LogReader):
            return backend.read_logs(self.service, self.revision, replica, after, count)
        return LogRead(note=self.logs(replica, count))


@dataclass(frozen=True)
class BoundExternal(Bound[ExternalSpec]):
    """Endpoints someone else runs: known from the spec without starting anything, and
    registered again before each health check (after a restart the backend knows none)."""

    async def health(self) -> list[ReplicaHealth]:
        await self.start()  # cheap and idempotent
        return await super().health()

    def endpoints(self) -> list[str]:
        return list(self.spec.endpoints)
