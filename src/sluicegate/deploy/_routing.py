"""What a service's traffic should be, derived from recorded state (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from sluicegate.deploy._lifecycle_model import DeploymentState, Phase
from sluicegate.router.traffic import RevisionGroup, ServiceRoute
from sluicegate.spec.service import ServiceSpec
from sluicegate.store import Deployment

__all__ = ["probe_route", "route_for", "state_from_json", "state_to_json"]


def state_to_json(state: DeploymentState) -> dict[str, Any]:
    data = asdict(state)
    data["phase"] = state.phase.value
    data["ending"] = state.ending.value if state.ending else None
    return data


def state_from_json(data: dict[str, Any]) -> DeploymentState:
    fields = dict(data)
    fields["phase"] = Phase(fields["phase"])
    fields["ending"] = Phase(fields["ending"]) if fields.get("ending") else None
    return DeploymentState(**fields)


def probe_route(spec: ServiceSpec) -> ServiceRoute:
    """The service's route as it will be once it serves, for a dry run of its ports (its
    one target is never contacted: a dry run opens no listener and checks no health)."""
    return _route(spec, (RevisionGroup("probe", ("127.0.0.1:9",), 100),), None, None)


def route_for(
    spec: ServiceSpec,
    current: str | None,
    active: Deployment | None,
    endpoints: Callable[[str], list[str]],
) -> ServiceRoute | None:
    """The route of a service: its current revision, or blue and green at the weight the
    active deployment recorded (green kept at 0 while the test listener points at it, so its
    group exists). None when nothing runs yet."""
    blue = current
    weights: dict[str, int] = {}
    test_rev = blue
    green: str | None = None
    if active is not None:
        state = state_from_json(active.state)
        green = active.revision
        blue = active.from_revision
        if blue is not None:
            weights[blue] = 100 - state.green_weight
        if state.green_weight > 0 or state.test_traffic_on_green or blue is None:
            weights[green] = state.green_weight
        else:
            green = None  # not routable yet: no flag route to it either
        if state.test_traffic_on_green:
            test_rev = green
    elif blue is not None:
        weights[blue] = 100
    groups = []
    for revision, weight in weights.items():
        found = endpoints(revision)
        if found:
            groups.append(RevisionGroup(revision, tuple(found), weight))
    if not groups:
        return None
    return _route(spec, tuple(groups), test_rev, green)


def _route(
    spec: ServiceSpec, groups: tuple[RevisionGroup, ...], test_rev: str | None, green: str | None
) -> ServiceRoute:
    return ServiceRoute(
        service=spec.service,
        port=spec.listener.port,
        test_port=spec.listener.test_port,
        test_revision=test_rev,
        groups=groups,
        health_path=spec.health_check.path,
        health_interval=spec.health_check.interval,
        sticky=spec.stickiness.enabled,
        sticky_duration=spec.stickiness.duration,
        green=green,
        flag_route=(
            None
            if spec.listener.flag_route is None
            else spec.listener.flag_route.model_dump(mode="json", exclude_none=True)
        ),
        tls=(
            None
            if spec.listener.tls is None
            else spec.listener.tls.model_dump(mode="json", exclude_none=True)
        ),
        redirect_port=spec.listener.redirect_port,
    )
