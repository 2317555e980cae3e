"""The pure parts of the container backend: its spec, host choice, labels, create bodies.

No I/O here: what a container of a replica looks like is a function of the spec, the
replica's index and its host port, tested with plain values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluicegate.errors import Problem
from sluicegate.spec.service import expand_placeholders

__all__ = [
    "LABEL",
    "ContainerSpec",
    "HostRef",
    "create_body",
    "default_socket_candidates",
    "describe_exit",
    "find_default_host",
    "labels_of",
]

LABEL = "sluicegate"  # label prefix: sluicegate.service, .revision, .replica, .deployment
_ENV_HOSTS = ("CONTAINER_HOST", "DOCKER_HOST")  # Podman's name first, then Docker's


@dataclass(frozen=True)
class HostRef:
    """An engine to run replicas on: its API url, the address its ports are published on,
    and how it was chosen (said in messages: "from DOCKER_HOST", "given in the spec")."""

    url: str
    address: str = "127.0.0.1"
    chosen: str = "given in the spec"

    def describe(self) -> str:
        return f"{self.url} ({self.chosen})"


@dataclass(frozen=True)
class ContainerSpec:
    """What the backend needs to run a revision's containers (resolved from the user's
    ``compute.container``: secrets read, hosts chosen)."""

    image: str
    port: int
    hosts: Sequence[HostRef]
    env: Mapping[str, str] = field(default_factory=dict)
    command: Sequence[str] | None = None
    replicas: int = 1
    memory: int | None = None
    cpus: float | None = None
    stop_grace: float = 10.0
    pull: str = "missing"
    init: bool = True
    health_path: str = "/healthz"

    def problems(self) -> list[Problem]:
        where = "compute.container"
        found: list[Problem] = []
        if not self.hosts:
            found.append(Problem(f"{where}.hosts", "no container host to run on"))
        if self.replicas < 1:
            found.append(Problem(f"{where}.replicas", f"must be at least 1, not {self.replicas}"))
        if self.pull not in ("never", "missing", "always"):
            found.append(Problem(f"{where}.pull", "must be never, missing or always"))
        return found

    def host_for(self, index: int) -> HostRef:
        """Replicas spread over the hosts in turn: replica i on host i mod n."""
        return self.hosts[index % len(self.hosts)]

    def image_for(self, service: str, revision: str, index: int) -> str:
        return expand_placeholders(self.image, _values(service, revision, index))


def _values(service: str, revision: str, index: int) -> dict[str, str]:
    return {"service": service, "revision": revision, "replica": str(index)}


def labels_of(service: str, revision: str, index: int | None = None) -> dict[str, str]:
    """The labels that find a revision's containers (and one replica's, with ``index``)."""
    labels = {f"{LABEL}.service": service, f"{LABEL}.revision": revision}
    if index is not None:
        labels[f"{LABEL}.replica"] = str(index)
    return labels


def container_name(service: str, revision: str, index: int) -> str:
    return f"sluicegate-{service}-{revision}-{index}"


def create_body(
    spec: ContainerSpec,
    service: str,
    revision: str,
    index: int,
    host_port: int,
    deployment: str | None,
) -> dict[str, Any]:
    """The ``POST /containers/create`` body of one replica (Docker Engine API 1.41)."""
    values = _values(service, revision, index)
    port_key = f"{spec.port}/tcp"
    host = spec.host_for(index)
    host_config: dict[str, Any] = {
        "PortBindings": {port_key: [{"HostIp": host.address, "HostPort": str(host_port)}]},
        "Init": spec.init,
        "RestartPolicy": {"Name": "no"},  # Sluicegate restarts, and counts, crashes itself
    }
    if spec.memory is not None:
        host_config["Memory"] = spec.memory
    if spec.cpus is not None:
        host_config["NanoCpus"] = int(spec.cpus * 1e9)
    body: dict[str, Any] = {
        "Image": spec.image_for(service, revision, index),
        "Env": [f"{k}={expand_placeholders(v, values)}" for k, v in spec.env.items()],
        "Labels": {
            **labels_of(service, revision, index),
            f"{LABEL}.deployment": deployment or "",
        },
        "ExposedPorts": {port_key: {}},
        "HostConfig": host_config,
        "StopTimeout": int(-(-spec.stop_grace // 1)),
    }
    if spec.command is not None:
        body["Cmd"] = [expand_placeholders(a, values) for a in spec.command]
    return body


def default_socket_candidates(environ: Mapping[str, str]) -> list[str]:
    """Where a local engine's socket usually is: rootful Podman, Docker, rootless Podman."""
    found = ["/run/podman/podman.sock", "/var/run/docker.sock"]
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        found.append(f"{runtime}/podman/podman.sock")
    return found


def find_default_host(
    configured: str | None,
    environ: Mapping[str, str],
    exists: Callable[[str], bool] = os.path.exists,
) -> tuple[HostRef | None, str]:
    """The host for a spec without ``hosts``: ``--container-host``, else CONTAINER_HOST /
    DOCKER_HOST, else the first local socket that exists. ``(None, what was tried)`` when
    none is found, for the error message."""
    if configured:
        return HostRef(configured, chosen="sluice server --container-host"), configured
    for name in _ENV_HOSTS:
        value = environ.get(name)
        if value:
            return HostRef(value, chosen=f"from {name}"), value
    candidates = default_socket_candidates(environ)
    for path in candidates:
        if exists(path):
            return HostRef(f"unix://{path}", chosen="found on this machine"), path
    return None, ", ".join(candidates)


def describe_exit(state: Mapping[str, Any]) -> str:
    """``exited with status 3`` / ``killed (OOM)`` from an inspect answer's ``State``."""
    if state.get("OOMKilled"):
        return "was killed: out of memory (raise compute.container.memory)"
    code = state.get("ExitCode")
    error = state.get("Error")
    text = f"exited with status {code}" if code is not None else "stopped"
    if code == 137:
        text += " (SIGKILL)"
    elif code == 143:
        text += " (SIGTERM)"
    if error:
        text += f": {error}"
    return text
