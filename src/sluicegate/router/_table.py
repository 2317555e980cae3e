"""Runtime routing objects: targets, target groups, forward actions, listener routes.

A ``ListenerRoute`` is an immutable snapshot; a change (weights, rules, reload) builds a new
one and swaps one attribute, so a request sees either the old or the new routing, never a mix.
Target groups and targets outlive snapshots: they carry health, pools and in-flight counts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from sluicegate.errors import NotFoundError, Problem, SpecError
from sluicegate.router._flagslot import FlagSlot
from sluicegate.router._match import RequestView, compile_match
from sluicegate.router._metrics import MetricsRegistry, Series
from sluicegate.router._sticky import StickyCodec, find_cookie
from sluicegate.spec.router import ForwardSpec, ListenerSpec, StickinessSpec, TargetGroupSpec

if TYPE_CHECKING:
    from sluicegate.router._upstream import UpstreamProtocol

__all__ = [
    "Entry",
    "ForwardAction",
    "ListenerRoute",
    "Target",
    "TargetGroup",
    "build_route",
    "reweigh",
]

Codecs = Callable[[str], StickyCodec]  # cookie name -> the codec that signs it
# The action of a redirect listener: no groups (its requests never reach routing).
_NO_FORWARD = ForwardSpec.model_construct(forward=[], stickiness=StickinessSpec())


class Target:
    """One backend address; owns its idle keep-alive connections."""

    __slots__ = ("active", "addr", "draining", "healthy", "host", "idle", "in_flight", "port")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.addr = f"{host}:{port}"
        self.healthy = True  # until the first checks say otherwise, as ALB's "initial"
        self.draining = False
        self.in_flight = 0
        self.idle: list[UpstreamProtocol] = []  # LIFO: the warmest connection first
        self.active: set[UpstreamProtocol] = set()


class TargetGroup:
    """Registered targets and the subset in rotation. Fail-open when none is healthy."""

    __slots__ = ("fail_open", "least_outstanding", "live", "name", "rr", "spec", "targets")

    def __init__(self, spec: TargetGroupSpec) -> None:
        self.name = spec.name
        self.spec = spec
        self.targets: dict[str, Target] = {}
        self.live: tuple[Target, ...] = ()
        self.fail_open = False
        self.rr = 0
        self.least_outstanding = spec.algorithm == "least_outstanding_requests"

    def refresh(self) -> bool:
        """Recompute the rotation; returns True when the group has just failed open."""
        serving = [t for t in self.targets.values() if not t.draining]
        healthy = tuple(t for t in serving if t.healthy)
        was_open = self.fail_open
        # Like ALB: a group whose every target is unhealthy routes to all of them anyway.
        self.fail_open = bool(serving) and not healthy
        self.live = healthy if healthy else tuple(serving)
        return self.fail_open and not was_open

    def next_target(self, exclude: Target | None = None) -> Target | None:
        live = self.live
        n = len(live)
        if n == 0:
            return None
        if self.least_outstanding:
            best = min(live, key=lambda t: t.in_flight if t is not exclude else 1 << 30)
            return None if best is exclude else best
        i = self.rr = (self.rr + 1) % n
        target = live[i]
        if target is exclude:
            if n == 1:
                return None
            target = live[(i + 1) % n]
        return target


class Entry:
    """One weighted group of a forward action, with the series it records into."""

    __slots__ = ("group", "series", "weight")

    def __init__(self, group: TargetGroup, weight: int, series: Series) -> None:
        self.group = group
        self.weight = weight
        self.series = series


class ForwardAction:
    """Weighted choice among target groups, optionally sticky."""

    __slots__ = (
        "by_name",
        "cookie_attrs",
        "cookie_eq",
        "cookie_name",
        "cumulative",
        "entries",
        "max_age",
        "rand",
        "sticky",
        "total",
    )

    def __init__(
        self,
        entries: Sequence[Entry],
        spec: ForwardSpec,
        codec: StickyCodec | None,
        rand: Callable[[], float] = random.random,
        secure: bool = False,
    ) -> None:
        """``codec`` signs this action's cookie; ignored unless stickiness is enabled.
        ``secure``: the listener speaks TLS, so the cookie is only ever sent back over it."""
        self.entries = tuple(entries)
        self.by_name = {e.group.name: e for e in self.entries}
        positive = [e for e in self.entries if e.weight > 0]
        self.total = sum(e.weight for e in positive)
        acc = 0
        cumulative = []
        for e in positive:
            acc += e.weight
            cumulative.append((acc / self.total, e))
        self.cumulative = tuple(cumulative)
        self.sticky = codec if spec.stickiness.enabled else None
        self.cookie_name = spec.stickiness.cookie_name
        self.cookie_eq = spec.stickiness.cookie_name.encode() + b"="
        self.max_age = int(spec.stickiness.duration)
        self.cookie_attrs = b"; Max-Age=%d; Path=/; HttpOnly; %bSameSite=Lax\r\n" % (
            self.max_age,
            b"Secure; " if secure else b"",
        )
        self.rand = rand

    def pick(self) -> Entry:
        r = self.rand()
        for bound, entry in self.cumulative:
            if r < bound:
                return entry
        return self.cumulative[-1][1]

    def decide(self, cookie_header: bytes | None, now: int) -> tuple[Entry, bytes | None]:
        """The group for a request and, when a sticky client is (re)assigned, the Set-Cookie
        header line to send. A cookie counts only if genuine, unexpired and naming a group of
        this action whose weight is above 0; anything else is re-balanced by weight."""
        codec = self.sticky
        if codec is None:
            return self.pick(), None
        if cookie_header is not None:
            value = find_cookie(cookie_header, self.cookie_eq)
            if value:
                group = codec.verify(value, now)
                if group is not None:
                    entry = self.sticky_entry(group)
                    if entry is not None:
                        return entry, None
        entry = self.pick()
        value = codec.issue(entry.group.name, now + self.max_age)
        return entry, b"".join((b"Set-Cookie: ", self.cookie_eq, value, self.cookie_attrs))

    def sticky_entry(self, group_name: str) -> Entry | None:
        """The entry a verified cookie names, unless its weight is 0 (then re-balance)."""
        e = self.by_name.get(group_name)
        return e if e is not None and e.weight > 0 else None

    def weights(self) -> dict[str, int]:
        return {e.group.name: e.weight for e in self.entries}


class ListenerRoute:
    """Immutable routing of one listener: ordered rules, then the default action."""

    __slots__ = ("default", "name", "rules")

    def __init__(
        self,
        name: str,
        rules: Sequence[tuple[Callable[[RequestView], bool], ForwardAction]],
        default: ForwardAction,
    ) -> None:
        self.name = name
        self.rules = tuple(rules)
        self.default = default

    def choose(self, view: RequestView | None) -> ForwardAction:
        if view is not None:
            for predicate, action in self.rules:
                if predicate(view):
                    return action
        return self.default


def build_action(
    listener: str,
    spec: ForwardSpec,
    groups: Mapping[str, TargetGroup],
    metrics: MetricsRegistry,
    codecs: Codecs,
    weights: Mapping[str, int] | None = None,
    secure: bool = False,
) -> ForwardAction:
    entries = []
    for wg in spec.forward:
        weight = wg.weight if weights is None else weights.get(wg.target_group, wg.weight)
        entries.append(
            Entry(groups[wg.target_group], weight, metrics.get(listener, wg.target_group))
        )
    codec = codecs(spec.stickiness.cookie_name)
    return ForwardAction(entries, spec, codec, secure=secure)


def build_route(
    spec: ListenerSpec,
    groups: Mapping[str, TargetGroup],
    metrics: MetricsRegistry,
    codecs: Codecs,
    flags: FlagSlot | None = None,
) -> ListenerRoute:
    """``flags`` is the plane's flag set, read by flag rules at request time."""
    secure = spec.tls is not None
    rules = [
        (
            compile_match(r.match, flags),
            build_action(spec.name, r, groups, metrics, codecs, secure=secure),
        )
        for r in spec.rules
    ]
    if spec.default is None:  # a redirect listener: never routes
        return ListenerRoute(spec.name, [], ForwardAction([], _NO_FORWARD, None))
    default = build_action(spec.name, spec.default, groups, metrics, codecs, secure=secure)
    return ListenerRoute(spec.name, rules, default)


def reweigh(
    route: ListenerRoute,
    spec: ListenerSpec,
    weights: Mapping[str, int],
    rule: int | None,
    groups: Mapping[str, TargetGroup],
    metrics: MetricsRegistry,
    codecs: Codecs,
) -> ListenerRoute:
    """A new route with ``weights`` applied to one action (the default, or rule N)."""
    if spec.default is None:
        raise SpecError(
            [Problem("listener", f"listener {spec.name!r} redirects; it has no weights")]
        )
    if rule is None:
        action_spec: ForwardSpec = spec.default
        current = route.default
    else:
        if not 0 <= rule < len(spec.rules):
            raise NotFoundError(f"listener {spec.name!r} has no rule {rule}")
        action_spec, current = spec.rules[rule], route.rules[rule][1]
    unknown = sorted(set(weights) - set(current.by_name))
    if unknown:
        raise SpecError(
            [
                Problem(
                    "weights",
                    f"target group {n!r} is not in this action "
                    f"(it has: {', '.join(current.by_name)})",
                )
                for n in unknown
            ]
        )
    merged = {**current.weights(), **weights}
    if sum(merged.values()) <= 0:
        raise SpecError([Problem("weights", "at least one target group needs a weight above 0")])
    for name, w in merged.items():
        if not 0 <= w <= 999:
            raise SpecError([Problem(f"weights.{name}", "weight must be between 0 and 999")])
    action = build_action(
        spec.name, action_spec, groups, metrics, codecs, merged, secure=spec.tls is not None
    )
    if rule is None:
        return ListenerRoute(route.name, route.rules, action)
    rules = list(route.rules)
    rules[rule] = (rules[rule][0], action)
    return ListenerRoute(route.name, rules, route.default)
