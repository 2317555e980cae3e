"""``ExternalCompute``: revisions deployed by other means, known by their endpoints.

Sluicegate does not start, stop or restart these; ``start`` validates and remembers the
endpoints, ``stop`` forgets them, ``health`` is a real HTTP GET of each endpoint.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping, Sequence

import httpx

from sluicegate.compute import _http
from sluicegate.compute._bound import BoundExternal
from sluicegate.compute._logfiles import LogRead
from sluicegate.compute.base import (
    Adoption,
    ExternalSpec,
    Replica,
    ReplicaHealth,
    check_names,
    parse_address,
)
from sluicegate.errors import NotFoundError, Problem, SpecError
from sluicegate.spec.service import ServiceSpec

__all__ = ["ExternalCompute"]


class ExternalCompute:
    """Endpoints given per revision (implements ``Compute[ExternalSpec]``)."""

    def __init__(self, *, allow_link_local: bool = False) -> None:
        """``allow_link_local``: accept endpoints on link-local addresses (169.254.0.0/16,
        fe80::/10), where cloud metadata services answer; off, they are refused."""
        self._revisions: dict[tuple[str, str], tuple[ExternalSpec, list[Replica]]] = {}
        self.allow_link_local = allow_link_local

    def secrets_of(self, service: ServiceSpec) -> list[str]:
        """Nothing secret goes to endpoints someone else runs."""
        return []

    def problems_of(self, service: ServiceSpec) -> list[Problem]:
        """What this backend refuses in the spec, every revision at once (at apply)."""
        external = service.compute.external
        if external is None or self.allow_link_local:
            return []
        return [
            Problem(f"compute.external.revisions.{revision}[{i}]", why)
            for revision, endpoints in external.revisions.items()
            for i, endpoint in enumerate(endpoints)
            if (why := _link_local(endpoint))
        ]

    def place(self, service: ServiceSpec, revision: str, env: Mapping[str, str]) -> BoundExternal:
        """``revision`` of ``service`` (the selector's ``external`` backend): its endpoints as
        the spec declares them; SpecError when it declares none for the revision."""
        external = service.compute.external
        endpoints = external.revisions.get(revision) if external is not None else None
        if not endpoints:
            declared = ", ".join(sorted(external.revisions)) if external else "none"
            raise SpecError(
                [
                    Problem(
                        f"compute.external.revisions.{revision}",
                        f"no endpoints are declared for this revision (declared: {declared})",
                    )
                ]
            )
        problems = [p for p in self.problems_of(service) if p.path.startswith(
            f"compute.external.revisions.{revision}[")]  # fmt: skip
        if problems:
            raise SpecError(problems)
        spec = ExternalSpec(endpoints, health_path=service.health_check.path)
        return BoundExternal(self, service.service, revision, spec)

    async def start(self, service: str, revision: str, spec: ExternalSpec) -> list[Replica]:
        """Validate ``spec.endpoints`` (SpecError naming each bad one) and remember them."""
        check_names(service, revision)
        problems = spec.problems()
        if problems:
            raise SpecError(problems)
        replicas = []
        for index, endpoint in enumerate(spec.endpoints):
            host, port = parse_address(endpoint)
            replicas.append(Replica(service, revision, index, port, host=host))
        self._revisions[(service, revision)] = (spec, replicas)
        return list(replicas)

    async def health(
        self, service: str, revision: str, *, timeout: float = 2.0
    ) -> list[ReplicaHealth]:
        spec, replicas = self._get(service, revision)

        async def one(replica: Replica, http: httpx.AsyncClient) -> ReplicaHealth:
            healthy, code, detail = await _http.probe(http, replica.address, spec.health_path)
            return ReplicaHealth(replica, healthy, code, detail)

        async with _http.client(timeout) as http:
            return list(await asyncio.gather(*(one(r, http) for r in replicas)))

    async def stop(self, service: str, revision: str, grace: float | None = None) -> None:
        """Forget the revision; its processes are not Sluicegate's to stop."""
        self._revisions.pop((service, revision), None)

    def endpoints(self, service: str, revision: str) -> list[str]:
        return [r.address for r in self._get(service, revision)[1]]

    async def adopt(
        self, service: str, revision: str, spec: ExternalSpec, records: Sequence[Replica]
    ) -> Adoption:
        """Nothing to take over: the spec's endpoints are the revision (records are ignored)."""
        replicas = await self.start(service, revision, spec)
        return Adoption(adopted=replicas, gone=[])

    def logs(self, service: str, revision: str, replica: int | None = None, tail: int = 100) -> str:
        self._get(service, revision)
        return f"{service} revision {revision} runs outside Sluicegate: no logs captured here"

    def read_logs(
        self,
        service: str,
        revision: str,
        replica: int | None = None,
        after: Mapping[int, int] | None = None,
        count: int = 100,
    ) -> LogRead:
        """No lines to read: a note that says why (see ``logs``)."""
        return LogRead(note=self.logs(service, revision, replica, count))

    async def aclose(self) -> None:
        return None

    def _get(self, service: str, revision: str) -> tuple[ExternalSpec, list[Replica]]:
        try:
            return self._revisions[(service, revision)]
        except KeyError:
            raise NotFoundError(f"{service} revision {revision} is not known here") from None


_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "instance-data"})


def _link_local(endpoint: str) -> str | None:
    """Why ``endpoint`` may not be routed to: a link-local address or a cloud metadata name
    (the router would hand users' requests, or a hook's, to the instance's credentials)."""
    host, _ = parse_address(endpoint)
    if host.lower().rstrip(".") in _METADATA_NAMES:
        return f"{host} is a cloud metadata service; {_ALLOW}"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: resolved by the router when it connects
    mapped = getattr(address, "ipv4_mapped", None) or address
    if mapped.is_link_local:
        return f"{host} is link-local (cloud metadata lives there); {_ALLOW}"
    return None


_ALLOW = "allowed only with sluice server --allow-link-local-endpoints"
