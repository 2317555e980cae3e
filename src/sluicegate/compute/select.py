"""Which backend runs a service's revisions: chosen from the spec, never by the engines.

A backend (:class:`~sluicegate.compute.LocalCompute`, :class:`~sluicegate.compute.
ExternalCompute`, ...) is registered under the name of its key in the spec's ``compute:``
block. :meth:`ComputeSelector.compute_for` gives a :class:`Placement`: one revision of one
service bound to its backend and that backend's own spec, with the verbs the deploy
controller uses. Adding a backend is a new module with a ``place`` method, registered here
by the server; no engine names a backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from sluicegate.compute._logfiles import LogLines, LogRead
from sluicegate.compute.base import Adoption, Replica, ReplicaHealth
from sluicegate.errors import Problem, SpecError
from sluicegate.spec.service import ServiceSpec

__all__ = ["Backend", "ComputeSelector", "LogLines", "LogRead", "Placement"]


class Placement(Protocol):
    """One revision of one service on its backend. Every verb is idempotent."""

    @property
    def service(self) -> str: ...

    @property
    def revision(self) -> str: ...

    async def start(self, deployment: str | None = None) -> list[Replica]:
        """Start what is missing (SpecError: it cannot run at all); ``deployment``: the id
        of the deployment starting it, for backends that label what they start."""
        ...

    async def health(self) -> list[ReplicaHealth]:
        """Each replica's health; NotFoundError when it is not running here."""
        ...

    async def stop(self) -> None: ...

    def endpoints(self) -> list[str]:
        """``host:port`` to route to; empty when nothing runs."""
        ...

    async def adopt(self, records: Sequence[Replica]) -> Adoption:
        """After a control-plane restart: take over the recorded replicas still alive."""
        ...

    def logs(self, replica: int | None = None, tail: int = 100) -> str: ...

    def read_logs(
        self,
        replica: int | None = None,
        after: Mapping[int, int] | None = None,
        count: int = 100,
    ) -> LogRead:
        """Per replica, the last ``count`` complete lines, or with ``after`` (positions by
        replica index) at most ``count`` after each position, with the position after them:
        a follower passes those back and sees every line once, across log rotations."""
        ...


class Backend(Protocol):
    def secrets_of(self, service: ServiceSpec) -> list[str]:
        """Secret values the spec hands its replicas (redacted from events)."""
        ...

    def problems_of(self, service: ServiceSpec) -> list[Problem]:
        """What this backend refuses in ``service``'s spec, found before it is stored."""
        ...

    def place(self, service: ServiceSpec, revision: str, env: Mapping[str, str]) -> Placement:
        """``revision`` of ``service`` on this backend (``env``: the revision's own
        settings, ``--set env.KEY=VAL``). SpecError when the spec cannot be run here."""
        ...

    async def aclose(self) -> None: ...


class ComputeSelector:
    """The backends a server has, by the spec key that chooses them."""

    def __init__(self, **backends: Backend) -> None:
        self.backends = dict(backends)

    def compute_for(
        self, spec: ServiceSpec, revision: str, env: Mapping[str, str] | None = None
    ) -> Placement:
        kind = spec.compute.kind
        backend = self.backends.get(kind)
        if backend is None:
            known = ", ".join(sorted(self.backends)) or "none"
            raise SpecError(
                [
                    Problem(
                        f"compute.{kind}",
                        f"this server has no {kind!r} compute backend (it has: {known})",
                    )
                ]
            )
        return backend.place(spec, revision, env or {})

    def secrets_of(self, spec: ServiceSpec) -> list[str]:
        backend = self.backends.get(spec.compute.kind)
        return [] if backend is None else backend.secrets_of(spec)

    def problems_of(self, spec: ServiceSpec) -> list[Problem]:
        """What the backend the spec names refuses in it (no backend: that, said)."""
        backend = self.backends.get(spec.compute.kind)
        if backend is None:
            known = ", ".join(sorted(self.backends)) or "none"
            return [Problem(f"compute.{spec.compute.kind}",
                            f"this server has no {spec.compute.kind!r} compute backend "
                            f"(it has: {known})")]  # fmt: skip
        return backend.problems_of(spec)

    async def aclose(self) -> None:
        for backend in self.backends.values():
            await backend.aclose()
