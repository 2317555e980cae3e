"""The ``Compute`` interface: where a revision runs, and the records it hands back.

A backend starts a revision's replicas, answers for their health, stops them, and after a
control-plane restart adopts the replicas it started before (the caller kept the
:class:`Replica` records in its store). Backends: :class:`~sluicegate.compute.LocalCompute`
(processes on this machine) and :class:`~sluicegate.compute.ExternalCompute` (endpoints
deployed by other means).

Every method is idempotent where it can be: ``start`` of a running revision starts only the
missing replicas, ``stop`` of an unknown revision does nothing. That is what lets the deploy
controller re-apply a recorded decision after a crash.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from sluicegate.errors import Problem, SpecError

__all__ = [
    "Adoption",
    "Compute",
    "EventKind",
    "ExternalSpec",
    "LocalSpec",
    "Replica",
    "ReplicaEvent",
    "ReplicaHealth",
    "ReplicaState",
    "parse_address",
]

LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class Replica:
    """One running copy of a revision, as the caller records it.

    ``pid``/``pid_start_time`` (the process start time in clock ticks since boot, field 22 of
    ``/proc/PID/stat``) identify a local process across PID reuse; both are ``None`` for an
    external endpoint, and so are ``log_path`` and ``started_at``. A start time read back
    from a store as a float is fine: it is compared as an integer. ``container``, ``image``
    (its image id, a digest) and ``engine`` (the engine's URL) are set for a container.
    """

    service: str
    revision: str
    index: int
    port: int
    pid: int | None = None
    pid_start_time: int | None = None
    log_path: str | None = None
    host: str = LOCALHOST
    started_at: float | None = None  # wall-clock seconds (the injected clock's ``now``)
    container: str | None = None
    image: str | None = None
    engine: str | None = None

    @property
    def address(self) -> str:
        """``host:port`` as a router target (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class ReplicaState(enum.StrEnum):
    """What the supervisor knows about a replica's process."""

    RUNNING = "running"  # the process is alive (it may still be unhealthy)
    RESTARTING = "restarting"  # it exited; a new process starts after a back-off
    FAILED = "failed"  # it crashed too often in a row; no more restarts until ``start``
    STOPPING = "stopping"  # ``stop`` is under way


@dataclass(frozen=True)
class ReplicaHealth:
    """The answer of one replica to an HTTP GET of the service's health path.

    ``healthy`` means a 2xx answer within the timeout. ``status_code`` is ``None`` when
    nothing answered; ``detail`` says why in words ("connection refused", "crashed 5 times
    in a row, gave up", "200 in 3 ms").
    """

    replica: Replica
    healthy: bool
    status_code: int | None
    detail: str
    state: ReplicaState = ReplicaState.RUNNING
    restarts: int = 0


class EventKind(enum.StrEnum):
    """Why :attr:`ReplicaEvent.replica` changed; record PIDs on STARTED/RESTARTED/ADOPTED."""

    STARTED = "started"  # a new replica's first process
    RESTARTED = "restarted"  # a new process (new pid; the port changes only if it was taken)
    EXITED = "exited"  # the process died; a restart is scheduled
    FAILED = "failed"  # the process died once too often quickly; the supervisor gave up
    STOPPED = "stopped"  # stopped on request (SIGTERM, then SIGKILL after the grace)
    ADOPTED = "adopted"  # taken over from a record after a control-plane restart
    GONE = "gone"  # a record whose process no longer exists (or is another process now)


@dataclass(frozen=True)
class ReplicaEvent:
    """A change the caller may want to record (handed to ``on_change``)."""

    kind: EventKind
    replica: Replica
    detail: str = ""
    restarts: int = 0


def tell(on_change: Callable[[ReplicaEvent], object] | None, event: ReplicaEvent) -> None:
    """Hand ``event`` to a backend's ``on_change``: a failing listener is logged, never
    allowed to break the supervision that noticed the change."""
    if on_change is None:
        return
    try:
        on_change(event)
    except Exception:
        logging.getLogger(__name__).exception("compute: on_change failed for %s", event.kind)


@dataclass(frozen=True)
class Adoption:
    """Result of :meth:`Compute.adopt`: records taken over, and records found dead."""

    adopted: list[Replica] = field(default_factory=list)
    gone: list[Replica] = field(default_factory=list)


@dataclass(frozen=True)
class LocalSpec:
    """How to run a revision as local processes.

    ``command`` and the values of ``env`` may contain the placeholders ``{port}``,
    ``{revision}``, ``{replica}`` (the index, from 0) and ``{service}``; any other text in
    braces is left alone. ``env`` is laid over a short allowlist of the control plane's
    environment (``sluicegate._child_env``), never its whole environment.
    """

    command: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1
    cwd: str | None = None
    health_path: str = "/healthz"
    stop_grace: float = 10.0

    def problems(self) -> list[Problem]:
        """What is wrong with this spec (empty when it is good)."""
        where = "compute.local"
        found: list[Problem] = []
        if not self.command or not all(isinstance(a, str) for a in self.command):
            found.append(Problem(f"{where}.command", "must be a non-empty list of strings"))
        elif not self.command[0]:
            found.append(Problem(f"{where}.command[0]", "the program must not be empty"))
        for key, value in self.env.items():
            if not key or "=" in key or "\0" in key or not isinstance(value, str):
                found.append(Problem(f"{where}.env.{key}", "needs a name without '=' and a string"))
        if not isinstance(self.replicas, int) or self.replicas < 1:
            found.append(Problem(f"{where}.replicas", f"must be at least 1, not {self.replicas!r}"))
        if not self.health_path.startswith("/"):
            found.append(Problem("health_check.path", f"must start with '/': {self.health_path!r}"))
        if self.stop_grace < 0:
            found.append(Problem(f"{where}.stop_grace", "must not be negative"))
        return found


@dataclass(frozen=True)
class ExternalSpec:
    """A revision deployed by other means: its endpoints, ``host:port`` each."""

    endpoints: Sequence[str]
    health_path: str = "/healthz"

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        if not self.endpoints:
            found.append(Problem("compute.external.endpoints", "needs at least one host:port"))
        seen: set[str] = set()
        for i, endpoint in enumerate(self.endpoints):
            try:
                parse_address(endpoint)
            except ValueError as exc:
                found.append(Problem(f"compute.external.endpoints[{i}]", str(exc)))
            if endpoint in seen:
                found.append(Problem(f"compute.external.endpoints[{i}]", f"{endpoint} twice"))
            seen.add(endpoint)
        if not self.health_path.startswith("/"):
            found.append(Problem("health_check.path", f"must start with '/': {self.health_path!r}"))
        return found


_HOST = re.compile(r"^[A-Za-z0-9._-]+$")


def parse_address(address: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` → ``(host, port)``; ValueError says what is wrong."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host or not all(c in "0123456789abcdefABCDEF:." for c in host):
            raise ValueError(f"{address!r} has a bad IPv6 address")
    elif not _HOST.match(host):
        raise ValueError(f"{address!r} has a bad host (IPv6 needs [brackets])")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{address!r} has a bad port (1-65535)")
    return host, int(port_text)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_names(service: str, revision: str) -> None:
    """Service and revision names become directory names: keep them to a safe alphabet."""
    found = [
        Problem(what, f"{value!r} must be 1-128 of A-Z a-z 0-9 . _ - (starting alphanumeric)")
        for what, value in (("service", service), ("revision", revision))
        if not _NAME.match(value)
    ]
    if found:
        raise SpecError(found)


SpecT_contra = TypeVar("SpecT_contra", contravariant=True)


class Compute(Protocol[SpecT_contra]):
    """Where a revision runs. ``SpecT`` is the backend's spec (:class:`LocalSpec`, ...)."""

    async def start(self, service: str, revision: str, spec: SpecT_contra) -> list[Replica]:
        """Start the revision's replicas; returns once they are started (not yet healthy).

        Idempotent: replicas already running are kept, missing ones are started, replicas
        beyond ``spec.replicas`` are stopped. Raises SpecError for a bad spec.
        """
        ...

    async def health(
        self, service: str, revision: str, *, timeout: float = 2.0
    ) -> list[ReplicaHealth]:
        """GET the health path of every replica, concurrently, each within ``timeout``.

        Raises NotFoundError for a revision this backend does not run.
        """
        ...

    async def stop(self, service: str, revision: str, grace: float | None = None) -> None:
        """Stop every replica: SIGTERM, then SIGKILL after ``grace`` seconds (default: the
        spec's). Returns when they are gone; a revision not running is not an error."""
        ...

    def endpoints(self, service: str, revision: str) -> list[str]:
        """``host:port`` of each replica, by index. NotFoundError for an unknown revision."""
        ...

    async def adopt(
        self, service: str, revision: str, spec: SpecT_contra, records: Sequence[Replica]
    ) -> Adoption:
        """After a control-plane restart, take over recorded replicas still alive (and
        supervise them as if started here); report the others gone, killing nothing.
        Call ``start`` afterwards to replace the gone ones."""
        ...

    def logs(self, service: str, revision: str, replica: int | None = None, tail: int = 100) -> str:
        """The last ``tail`` lines each replica wrote (all replicas when ``replica`` is None)."""
        ...

    async def aclose(self) -> None:
        """Stop supervising; running replicas keep running (they outlive the control plane)."""
        ...
