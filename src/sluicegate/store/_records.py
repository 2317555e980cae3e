"""What repositories return: frozen dataclasses, never SQLAlchemy rows.

Timestamps are float seconds since the epoch (from the store's :class:`Clock`). JSON fields
are fresh dicts decoded for each call: changing one changes nothing stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Alarm",
    "Delivery",
    "Deployment",
    "DeploymentCommand",
    "Event",
    "ExposureReporter",
    "ExposureTotal",
    "FlagEnvironment",
    "FlagRollout",
    "FlagSetVersion",
    "FlagVersionInfo",
    "MetricRollup",
    "Replica",
    "Revision",
    "Role",
    "RouterState",
    "Service",
    "Token",
    "Webhook",
]

Role = Literal["admin", "deployer", "reader", "agent", "metrics", "alertmanager"]


@dataclass(frozen=True)
class Service:
    """A declared service: its validated spec as JSON (owned by ``sluicegate.spec``)."""

    name: str
    spec: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Revision:
    """A named revision of a service with its spec overrides (``--set env.KEY=VAL``)."""

    service: str
    revision: str
    overrides: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class DeploymentCommand:
    """A command given to a deployment; ``handled_at`` is None until the engine applied it."""

    id: int
    deployment_id: str
    command: str
    actor: str
    created_at: float
    handled_at: float | None


@dataclass(frozen=True)
class Deployment:
    """A deployment and its lifecycle's recorded state (opaque to the store).

    ``active`` is set by the lifecycle: at most one active deployment per service.
    ``version`` grows by one on every update (optimistic concurrency).
    """

    id: str
    service: str
    revision: str
    from_revision: str | None
    config: dict[str, Any]
    state: dict[str, Any]
    phase: str
    status: str
    active: bool
    created_at: float
    updated_at: float
    version: int


@dataclass(frozen=True)
class Event:
    """One entry of the append-only event log; ``id`` orders events."""

    id: int
    at: float
    actor: str
    kind: str
    subject: str
    message: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Replica:
    """A replica process recorded by compute; ``pid_start_time`` tells a reused PID apart."""

    service: str
    revision: str
    index: int
    port: int | None
    pid: int | None
    pid_start_time: float | None
    state: str
    started_at: float | None
    updated_at: float


@dataclass(frozen=True)
class Token:
    """An API token's metadata; neither the token nor its hash is ever returned."""

    id: str
    role: Role
    name: str
    created_at: float
    revoked_at: float | None
    env: str | None = None  # the environment an agent token may read
    service: str | None = None  # the one service a metrics token may push for
    expires_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def valid_at(self, now: float) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class RouterState:
    """What the server needs to re-adopt its router process after a restart."""

    pid: int | None
    pid_start_time: float | None
    admin_url: str
    config: dict[str, Any]
    generation: int
    updated_at: float


@dataclass(frozen=True)
class Alarm:
    """An alarm and its current state. ``kind`` is ``metric`` (declared in the service spec,
    evaluated by the alarm loop) or ``external`` (set from outside, e.g. Alertmanager)."""

    service: str
    name: str
    kind: str
    spec: dict[str, Any] | None
    guard: bool
    state: str
    reason: str
    evaluation: dict[str, Any]
    binding: dict[str, Any]
    state_changed_at: float
    evaluated_at: float | None
    forced_until: float | None
    error_since: float | None
    created_at: float
    updated_at: float

    @property
    def id(self) -> str:
        """``<service>/<name>``: the alarm's identity and its events' subject."""
        return f"{self.service}/{self.name}"


@dataclass(frozen=True)
class ExposureReporter:
    """An agent process that reported exposures: its name, instance, newest report."""

    agent: str
    instance: str
    last_seq: int
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class ExposureTotal:
    """Evaluations of one flag's variant over a range of minutes, and the newest minute
    (its start, epoch seconds) in which it was seen."""

    flag: str
    variant: str
    count: int
    last_minute: int


@dataclass(frozen=True)
class MetricRollup:
    """One series' minute: count, sum, min, max and histogram (bucket -> count, in the
    source's bucket scheme). ``minute`` is the minute's start in epoch seconds."""

    source: str
    name: str
    dimensions: dict[str, str]
    minute: int
    count: int
    total: float
    minimum: float | None
    maximum: float | None
    hist: dict[int, int]


@dataclass(frozen=True)
class FlagEnvironment:
    """A flag environment (``prod``, ``staging``): ``current_version`` is what everyone is
    served outside a rollout, ``latest_version`` the newest saved (None: none yet)."""

    name: str
    description: str
    current_version: int | None
    latest_version: int | None
    created_at: float


@dataclass(frozen=True)
class FlagVersionInfo:
    """A saved flag-set version without its document (for history listings)."""

    env: str
    version: int
    created_at: float
    actor: str
    message: str


@dataclass(frozen=True)
class FlagSetVersion(FlagVersionInfo):
    """An immutable flag-set version: its document is the validated normal form."""

    document: dict[str, Any]


@dataclass(frozen=True)
class FlagRollout:
    """A gradual publication of ``to_version``; ``strategy`` and ``state`` are opaque to the
    store (see ``sluicegate.flags.rollout``). ``version`` grows on every update."""

    id: str
    env: str
    from_version: int
    to_version: int
    strategy: dict[str, Any]
    state: dict[str, Any]
    phase: str
    active: bool
    created_at: float
    updated_at: float
    version: int


@dataclass(frozen=True)
class Webhook:
    """A webhook subscription: event kinds matching ``events`` are POSTed to ``url``, signed
    with ``secret`` (left out of ``repr`` so it never reaches a log line)."""

    id: str
    url: str
    events: tuple[str, ...]
    secret: str = field(repr=False)
    enabled: bool
    after_event_id: int
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Delivery:
    """One event for one webhook: pending (retried until ``next_attempt_at``), delivered, or
    failed (given up). ``last_status`` is the receiver's HTTP status, None when none came."""

    id: int
    webhook_id: str
    event_id: int
    kind: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: float | None
    delivered_at: float | None
    created_at: float
    updated_at: float
