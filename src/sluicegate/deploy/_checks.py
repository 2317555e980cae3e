"""What a service spec or a deploy request must satisfy beyond its own schema (pure).

Checked before anything is stored, so a refused ``apply`` or ``deploy`` changes nothing and
names the field in the user's terms.
"""

from __future__ import annotations

from collections.abc import Iterable

from sluicegate.errors import Problem
from sluicegate.spec.service import ServiceSpec

__all__ = ["port_conflicts"]


def _ports(spec: ServiceSpec) -> list[tuple[str, int]]:
    ports = [("listener.port", spec.listener.port)]
    if spec.listener.test_port is not None:
        ports.append(("listener.test_port", spec.listener.test_port))
    if spec.listener.redirect_port is not None:
        ports.append(("listener.redirect_port", spec.listener.redirect_port))
    return ports


def port_conflicts(spec: ServiceSpec, others: Iterable[ServiceSpec]) -> list[Problem]:
    """Ports of ``spec`` that another service already declares (every service's listeners
    share one router, so a port serves one service)."""
    taken = {
        port: (other.service, field)
        for other in others
        if other.service != spec.service
        for field, port in _ports(other)
    }
    problems = []
    for field, port in _ports(spec):
        if port in taken:
            owner, their = taken[port]
            problems.append(
                Problem(field, f"port {port} is already used by service {owner!r} (its {their})")
            )
    return problems
