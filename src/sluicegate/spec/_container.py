"""``compute.container``: a revision as containers on Podman or Docker hosts (pure).

The keys are a user-facing contract (docs/containers.md). ``image``, ``command`` and the
env values may hold the placeholders :data:`CONTAINER_PLACEHOLDERS`; the port is the one the
app listens on *inside* the container (the host port is chosen by Sluicegate).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from sluicegate.errors import Problem
from sluicegate.spec._duration import Duration
from sluicegate.spec._errors import LocatedError
from sluicegate.spec._model import SpecModel, check
from sluicegate.spec._placeholders import unknown_placeholders
from sluicegate.spec._secret_ref import SecretRef, check_env

__all__ = [
    "CONTAINER_PLACEHOLDERS",
    "ContainerComputeSpec",
    "ContainerHostSpec",
    "parse_host_url",
    "parse_memory",
]

CONTAINER_PLACEHOLDERS: frozenset[str] = frozenset({"revision", "replica", "service"})
"""Placeholders in an image, command or env value: revision, replica index (from 0), service."""

_MEMORY = re.compile(r"^\s*(\d+)\s*([bkmg]?)\s*$", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_MIN_MEMORY = 6 << 20  # Docker refuses less than 6 MiB
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@{}-]*$")
_TCP = re.compile(r"^(?:tcp|http)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})/?$")


def parse_memory(value: Any) -> int:
    """``256m``, ``1g``, ``512k`` or a number of bytes → bytes; ValueError says the forms."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 256m, 1g or 512k")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _MEMORY.match(value)):
        size = int(m.group(1)) * _MEMORY_UNITS[m.group(2).lower()]
    else:
        raise ValueError(f"{value!r} is not a size; write 256m, 1g or 512k")
    if size < _MIN_MEMORY:
        raise ValueError(f"{value!r} is below the 6m the engines accept")
    return size


def parse_host_url(url: str) -> tuple[str, str]:
    """``unix:///path`` → ``("unix", path)``; ``tcp://host:port`` (or ``http://``) →
    ``("tcp", "host:port")``. ValueError names the accepted forms."""
    if url.startswith("unix://"):
        path = url.removeprefix("unix://")
        if not path.startswith("/"):
            raise ValueError(f"{url!r}: a unix socket needs an absolute path (unix:///run/...)")
        return "unix", path
    m = _TCP.match(url)
    if m is None:
        raise ValueError(
            f"{url!r} is not an engine address; write unix:///path/to.sock or tcp://host:port"
            " (TLS is not supported yet)"
        )
    if not 0 < int(m.group(2)) < 65536:
        raise ValueError(f"{url!r} has a bad port (1-65535)")
    return "tcp", f"{m.group(1)}:{m.group(2)}"


def _host_url(value: str) -> str:
    parse_host_url(value)
    return value


class ContainerHostSpec(SpecModel):
    """One engine: its API ``url`` and the ``address`` its published ports are bound to (and
    the router connects to); loopback by default."""

    url: Annotated[str, AfterValidator(_host_url)]
    address: Annotated[str, Field(pattern=r"^[A-Za-z0-9.:-]+$")] = "127.0.0.1"


def _host(value: Any) -> Any:
    return {"url": value} if isinstance(value, str) else value


def _check_texts(value: list[str]) -> list[str]:
    problems = [
        Problem(f"[{i}]", msg)
        for i, arg in enumerate(value)
        if (msg := unknown_placeholders(arg, CONTAINER_PLACEHOLDERS))
    ]
    if problems:
        raise LocatedError(problems)
    return value


def _check_image(value: str) -> str:
    if not _IMAGE.match(value):
        raise ValueError(f"{value!r} is not an image reference like localhost/shop:{{revision}}")
    msg = unknown_placeholders(value, CONTAINER_PLACEHOLDERS)
    if msg:
        raise ValueError(msg)
    return value


class ContainerComputeSpec(SpecModel):
    """Containers started from ``image`` on the given hosts (or the server's default one)."""

    image: Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_check_image)]
    port: Annotated[int, Field(ge=1, le=65535)]
    env: dict[str, str | SecretRef] = Field(default_factory=dict)
    command: Annotated[list[str], Field(min_length=1), AfterValidator(_check_texts)] | None = None
    replicas: Annotated[int, Field(ge=1, le=64)] = 1
    memory: Annotated[int, BeforeValidator(parse_memory)] | None = None
    cpus: Annotated[float, Field(gt=0, le=256)] | None = None
    stop_grace: Annotated[Duration, Field(ge=0, le=600)] = 10.0
    pull: Literal["never", "missing", "always"] = "missing"
    init: bool = True  # an init process as PID 1: SIGTERM reaches the app, zombies reaped
    hosts: Annotated[
        list[Annotated[ContainerHostSpec, BeforeValidator(_host)]], Field(max_length=32)
    ] = Field(default_factory=list)

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str | SecretRef]) -> dict[str, str | SecretRef]:
        return check_env(v, CONTAINER_PLACEHOLDERS)

    @check
    def _distinct_hosts(self) -> list[Problem]:
        seen: set[str] = set()
        problems = []
        for i, host in enumerate(self.hosts):
            if host.url in seen:
                problems.append(Problem(f"hosts[{i}]", f"{host.url} is listed twice"))
            seen.add(host.url)
        return problems
