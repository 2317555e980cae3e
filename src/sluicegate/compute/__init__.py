"""Where a revision runs: local processes (default) or external endpoints.

The deploy controller talks to a :class:`Compute` backend and records the
:class:`Replica` values it gets back (``start``'s result and ``on_change`` events), so that
after a control-plane restart ``adopt`` can take the replicas over.
"""

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
from sluicegate.compute.external import ExternalCompute
from sluicegate.compute.local import LocalCompute, RestartPolicy

__all__ = [
    "Adoption",
    "Compute",
    "EventKind",
    "ExternalCompute",
    "ExternalSpec",
    "LocalCompute",
    "LocalSpec",
    "Replica",
    "ReplicaEvent",
    "ReplicaHealth",
    "ReplicaState",
    "RestartPolicy",
    "parse_address",
]
