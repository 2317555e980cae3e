"""``TrafficControl``: how the control plane states where a service's traffic goes.

The control plane describes, per service, which revisions receive traffic at which weight
(``ServiceRoute``); ``router_config`` turns that into a whole router configuration (pure), and
``RouterTraffic`` applies it to the built-in router and reads it back: a weight counts as set
once the router reports it. Another data plane (HAProxy later) is another implementation of
the same protocol, not an ``if`` in the engine.

Each service gets a listener named after it (and ``<service>-test`` for its test port); each
revision a target group ``<service>.<revision>``, so per-target-group metrics name revisions.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sluicegate.errors import Problem, RouteRefusedError, SluicegateError, SpecError
from sluicegate.router.client import RouterClient

__all__ = [
    "RevisionGroup",
    "RouterMetrics",
    "RouterTraffic",
    "ServiceRoute",
    "TrafficControl",
    "group_name",
    "refusal",
    "router_config",
]


def group_name(service: str, revision: str) -> str:
    return f"{service}.{revision}"


@dataclass(frozen=True)
class RevisionGroup:
    revision: str
    endpoints: tuple[str, ...]
    weight: int  # 0..100, the share of production traffic


@dataclass(frozen=True)
class ServiceRoute:
    service: str
    port: int
    groups: tuple[RevisionGroup, ...]
    test_port: int | None = None
    test_revision: str | None = None  # the revision the test listener sends everything to
    health_path: str = "/"
    health_interval: float = 5.0
    sticky: bool = False
    sticky_duration: float = 3600.0
    deregistration_delay: float = 30.0
    address: str = "127.0.0.1"
    extra: Mapping[str, Any] = field(default_factory=dict)
    green: str | None = None  # the revision being deployed, when a deployment is active
    flag_route: Mapping[str, Any] | None = None  # a flag match: its users reach green
    tls: Mapping[str, Any] | None = None  # the listeners' tls block (router config form)
    redirect_port: int | None = None  # plain HTTP here redirects to https on ``port``

    def weights(self) -> dict[str, int]:
        return {g.revision: g.weight for g in self.groups}

    @property
    def serving(self) -> bool:
        """Some revision takes production traffic (else only the test listener exists)."""
        return sum(g.weight for g in self.groups) > 0


class TrafficControl(Protocol):
    """Where traffic goes. ``apply`` returns once the data plane reports the new state.

    A refusal (a port the data plane cannot listen on, say) raises
    :class:`~sluicegate.errors.RouteRefusedError` naming the services and the spec fields at
    fault, and leaves the previous routes in force.
    """

    async def apply(self, routes: Sequence[ServiceRoute], keep: Collection[str] = ()) -> None:
        """Route exactly ``routes``; services named in ``keep`` keep what they have now."""
        ...

    async def check(self, routes: Sequence[ServiceRoute]) -> None:
        """Would ``apply(routes)`` be accepted (ports included)? Changes nothing."""
        ...

    async def weights(self, service: str) -> dict[str, int]: ...

    async def metrics(
        self,
        window: int = 60,
        listener: str | None = None,
        hist: bool = False,
        include_open: bool = False,
    ) -> dict[str, Any]:
        """Per-second counts and latency histograms by listener and target group, as the
        built-in router's ``GET /v1/metrics`` document (docs/router.md): what the default
        guards, router alarms and rollups read. Another data plane returns the same shape."""
        ...


class RouterMetrics(Protocol):
    """What reads per-second traffic metrics needs (a ``TrafficControl`` or a
    ``RouterClient``)."""

    async def metrics(
        self,
        window: int = 60,
        listener: str | None = None,
        hist: bool = False,
        include_open: bool = False,
    ) -> dict[str, Any]: ...


def router_config(
    routes: Sequence[ServiceRoute],
    admin: Mapping[str, Any],
    base: Mapping[str, Any] | None = None,
    keep: Collection[str] = (),
) -> dict[str, Any]:
    """The whole router configuration for ``routes`` (pure). ``base`` carries other top-level
    keys (timeouts, limits...) through unchanged, and the listeners and target groups of the
    services named in ``keep`` (a service whose spec cannot be read keeps its traffic)."""
    kept = set(keep) - {r.service for r in routes}
    listeners: list[dict[str, Any]] = [
        dict(lst)
        for lst in (base or {}).get("listeners", [])
        if _service_of_listener(lst["name"]) in kept
    ]
    groups: list[dict[str, Any]] = [
        dict(g) for g in (base or {}).get("target_groups", []) if g["name"].split(".", 1)[0] in kept
    ]
    for r in routes:
        if not r.groups:
            raise SluicegateError(f"service {r.service!r} has no revision to route to")
        timeout = min(2.0, r.health_interval)
        for g in r.groups:
            groups.append(
                {
                    "name": group_name(r.service, g.revision),
                    "targets": list(g.endpoints),
                    "health_check": {
                        "path": r.health_path,
                        "interval": r.health_interval,
                        "timeout": timeout,
                    },
                    "deregistration_delay": r.deregistration_delay,
                }
            )
        if r.serving:  # before any revision takes traffic, the port stays closed
            listener: dict[str, Any] = {
                "name": r.service,
                "port": r.port,
                "address": r.address,
                **({"tls": dict(r.tls)} if r.tls is not None else {}),
                "default": {
                    "forward": [
                        {"target_group": group_name(r.service, g.revision), "weight": g.weight}
                        for g in r.groups
                    ],
                    "stickiness": {"enabled": r.sticky, "duration": r.sticky_duration},
                },
            }
            if r.flag_route is not None and r.green in {g.revision for g in r.groups}:
                assert r.green is not None
                listener["rules"] = [
                    {
                        "match": {"flag": dict(r.flag_route)},
                        "forward": [
                            {"target_group": group_name(r.service, r.green), "weight": 100}
                        ],
                    }
                ]
            listeners.append(listener)
            if r.redirect_port is not None:
                listeners.append(
                    {
                        "name": f"{r.service}-redirect",
                        "port": r.redirect_port,
                        "address": r.address,
                        "redirect": {"to_port": r.port, "status": 308},
                    }
                )
        if r.test_port is not None:
            test_rev = r.test_revision or max(r.groups, key=lambda g: g.weight).revision
            listeners.append(
                {
                    "name": f"{r.service}-test",
                    "port": r.test_port,
                    "address": r.address,
                    **({"tls": dict(r.tls)} if r.tls is not None else {}),
                    "default": {
                        "forward": [
                            {"target_group": group_name(r.service, test_rev), "weight": 100}
                        ]
                    },
                }
            )
    config = {
        k: v for k, v in (base or {}).items() if k not in ("listeners", "target_groups", "admin")
    }
    return {**config, "listeners": listeners, "target_groups": groups, "admin": dict(admin)}


def _service_of_listener(name: str) -> str:
    for suffix in ("-test", "-redirect"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


_LISTENER_PATH = re.compile(r"^listeners\[(\d+)\](?:\.(\w+))?(.*)$")


def refusal(exc: SpecError, desired: Mapping[str, Any]) -> RouteRefusedError:
    """The router's refusal of ``desired`` in the terms of the service specs: its
    ``listeners[2].port`` becomes ``listener.port`` of the service that listener belongs to."""
    problems, services = [], []
    listeners = desired.get("listeners", [])
    for p in exc.problems:
        m = _LISTENER_PATH.match(p.path)
        if m is None or int(m.group(1)) >= len(listeners):
            problems.append(p)
            continue
        name = listeners[int(m.group(1))]["name"]
        service = _service_of_listener(name)
        field = m.group(2) or ""
        if field == "port" and name.endswith("-test"):
            field = "test_port"
        elif field == "port" and name.endswith("-redirect"):
            field = "redirect_port"
        path = f"listener.{field}{m.group(3)}" if field else "listener"
        problems.append(Problem(f"{path}", f"{p.message} (service {service!r})"))
        if service not in services:
            services.append(service)
    return RouteRefusedError(problems, services)


class RouterTraffic:
    """``TrafficControl`` on the built-in router, through its admin API."""

    def __init__(self, client: RouterClient) -> None:
        self.client = client

    async def check(self, routes: Sequence[ServiceRoute]) -> None:
        current = await self.client.config()
        desired = router_config(routes, current["admin"], current)
        try:
            await self.client.check_config(desired)
        except SpecError as exc:
            raise refusal(exc, desired) from exc

    async def apply(self, routes: Sequence[ServiceRoute], keep: Collection[str] = ()) -> None:
        current = await self.client.config()
        desired = router_config(routes, current["admin"], current, keep)
        try:
            await self.client.apply_config(desired)
        except SpecError as exc:
            raise refusal(exc, desired) from exc
        for r in routes:
            if not r.serving:
                continue
            observed = await self.weights(r.service)
            if observed != r.weights():
                raise SluicegateError(
                    f"router reports {observed} for {r.service}, not {r.weights()}"
                )

    async def metrics(
        self,
        window: int = 60,
        listener: str | None = None,
        hist: bool = False,
        include_open: bool = False,
    ) -> dict[str, Any]:
        return await self.client.metrics(window, listener, hist, include_open)

    async def weights(self, service: str) -> dict[str, int]:
        by_group = await self.client.weights(service)
        prefix = f"{service}."
        return {name[len(prefix) :]: w for name, w in by_group.items() if name.startswith(prefix)}
