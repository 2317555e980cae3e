"""Where a revision runs: local processes (default), external endpoints or containers.

The deploy controller asks the :class:`ComputeSelector` for a revision's
:class:`Placement` (the backend its spec names, with that backend's spec) and records the
:class:`Replica` values it gets back (``start``'s result and ``on_change`` events), so that
after a control-plane restart ``adopt`` can take the replicas over. A backend implements
:class:`Compute` and ``place``; adding one is a new module and one line in the server.
"""

from sluicegate.compute._secrets import redact
from sluicegate.compute.base import (
    Adoption,
    Compute,
    EventKind,
    ExternalSpec,
    LocalSpec,
    Replica,
    ReplicaEvent,
    ReplicaHealth,
    ReplicaState,
    parse_address,
)
from sluicegate.compute.container import ContainerCompute, ContainerSpec, HostRef
from sluicegate.compute.external import ExternalCompute
from sluicegate.compute.local import LocalCompute, RestartPolicy
from sluicegate.compute.select import Backend, ComputeSelector, Placement

__all__ = [
    "Adoption",
    "Backend",
    "Compute",
    "ComputeSelector",
    "ContainerCompute",
    "ContainerSpec",
    "EventKind",
    "ExternalCompute",
    "ExternalSpec",
    "HostRef",
    "LocalCompute",
    "LocalSpec",
    "Placement",
    "Replica",
    "ReplicaEvent",
    "ReplicaHealth",
    "ReplicaState",
    "RestartPolicy",
    "parse_address",
    "redact",
]
