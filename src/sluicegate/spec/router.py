"""The router's configuration: listeners, rules, target groups, admin API (the ALB in YAML).

These keys are a user-facing contract: extend, never rename. Validation names the field.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from sluicegate.errors import Problem
from sluicegate.spec._duration import Duration, parse_duration
from sluicegate.spec._errors import LocatedError
from sluicegate.spec._listener_tls import (
    CIPHER_POLICIES,
    CertificateSpec,
    RedirectSpec,
    TlsSpec,
    check_network,
)
from sluicegate.spec._model import SpecModel, check

__all__ = [
    "CIPHER_POLICIES",
    "AdminSpec",
    "CertificateSpec",
    "FlagMatchSpec",
    "ForwardSpec",
    "HealthCheckSpec",
    "ListenerSpec",
    "MatchSpec",
    "RedirectSpec",
    "RouterConfig",
    "RuleSpec",
    "StickinessSpec",
    "TargetGroupSpec",
    "TimeoutsSpec",
    "TlsSpec",
    "UserFromSpec",
    "WeightedGroup",
    "parse_target",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
Name = Annotated[str, Field(pattern=_NAME)]
Port = Annotated[int, Field(ge=1, le=65535)]
# ALB allows target-group weights 0..999; we keep the same range.
Weight = Annotated[int, Field(ge=0, le=999)]
_TOKEN_CHARS = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_PORT = re.compile(r"^[0-9]{1,5}$")


def parse_target(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9001"`` -> ``("127.0.0.1", 9001)``; ValueError names what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"target {value!r} must be host:port")
    host = host.strip("[]")
    if not _PORT.match(port) or not 1 <= int(port) <= 65535:
        raise ValueError(f"target {value!r} has an invalid port")
    return host, int(port)


def _check_address(value: str) -> str:
    if value in ("localhost", ""):
        return value or "127.0.0.1"
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP address") from exc
    return value


class WeightedGroup(SpecModel):
    target_group: Name
    weight: Weight = 1


class StickinessSpec(SpecModel):
    """Target-group stickiness: the router issues a signed cookie naming the chosen group."""

    enabled: bool = False
    duration: Duration = 86400.0
    cookie_name: str = "sluice_tg"

    @field_validator("duration")
    @classmethod
    def _duration_range(cls, v: float) -> float:
        if not 1 <= v <= 7 * 86400:
            raise ValueError("stickiness duration must be between 1s and 7d (as on ALB)")
        return v

    @field_validator("cookie_name")
    @classmethod
    def _cookie_token(cls, v: str) -> str:
        if not _TOKEN_CHARS.match(v):
            raise ValueError(f"{v!r} is not a valid cookie name")
        return v


class ForwardSpec(SpecModel):
    forward: list[WeightedGroup] = Field(min_length=1, max_length=5)
    stickiness: StickinessSpec = StickinessSpec()

    @check
    def _weights(self) -> list[Problem]:
        problems: list[Problem] = []
        seen: set[str] = set()
        for k, g in enumerate(self.forward):
            if g.target_group in seen:
                problems.append(
                    Problem(
                        f"forward[{k}].target_group",
                        f"target group {g.target_group!r} appears twice in one forward action",
                    )
                )
            seen.add(g.target_group)
        if sum(g.weight for g in self.forward) == 0:
            problems.append(Problem("forward", "at least one target group needs a weight above 0"))
        return problems


def _check_patterns(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise ValueError("expected a glob pattern or a non-empty list of glob patterns")


# A match value is one glob pattern ("*" and "?") or a list of them (any may match).
Patterns = Annotated[str | list[str], BeforeValidator(_check_patterns)]


_FLAG_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class UserFromSpec(SpecModel):
    """Where the user id (the flag context's ``targetingKey``) is read: exactly one of
    a cookie, a header or a query parameter, by name."""

    cookie: str | None = None
    header: str | None = None
    query: str | None = None

    @check
    def _exactly_one(self) -> list[Problem]:
        given = [k for k in ("cookie", "header", "query") if getattr(self, k) is not None]
        if len(given) != 1:
            return [
                Problem(
                    "",
                    "user_from needs exactly one of cookie, header or query"
                    f" (got {', '.join(given) or 'none'})",
                )
            ]
        value = getattr(self, given[0])
        if not value or (given[0] != "query" and not _TOKEN_CHARS.match(value)):
            return [Problem("", f"{value!r} is not a valid {given[0]} name")]
        return []

    @property
    def source(self) -> tuple[str, str]:
        """``("cookie" | "header" | "query", name)``."""
        for kind in ("cookie", "header", "query"):
            value = getattr(self, kind)
            if value is not None:
                return kind, value
        raise AssertionError("validated to have one source")  # pragma: no cover


def _check_variants(value: Any) -> Any:
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list) and items and all(isinstance(v, str) and v for v in items):
        return value
    raise ValueError("expected a variant name or a non-empty list of variant names")


class FlagMatchSpec(SpecModel):
    """True when flag ``key``, evaluated for the request's user, serves one of ``variant``
    (in the flag set loaded into the router with ``PUT /v1/flags``)."""

    key: Annotated[str, Field(pattern=_FLAG_KEY)]
    variant: Annotated[str | list[str], BeforeValidator(_check_variants)]
    user_from: UserFromSpec

    @property
    def variants(self) -> frozenset[str]:
        return frozenset([self.variant] if isinstance(self.variant, str) else self.variant)


class MatchSpec(SpecModel):
    """Conditions of a rule; all given conditions must hold (``path_prefix`` is a plain
    prefix; the other values are globs, any-of lists; ``flag`` asks the router's flag set
    which variant the request's user gets)."""

    path_prefix: str | None = None
    host: Patterns | None = None
    header: dict[str, Patterns] | None = None
    cookie: dict[str, Patterns] | None = None
    query: dict[str, Patterns] | None = None
    flag: FlagMatchSpec | None = None

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        """A plain prefix of the normalized path, not a glob: ``/admin*`` would never match
        (no path has a ``*``), so it is refused rather than accepted and dead."""
        if v is None:
            return v
        if not v.startswith("/"):
            raise ValueError("path_prefix must start with /")
        glob = next((c for c in "*?[" if c in v), None)
        if glob is not None:
            plain = v.split(glob, 1)[0]
            raise ValueError(
                f"path_prefix {v!r} is a prefix, not a glob: {glob!r} is not allowed"
                f" (write {plain!r}: a prefix matches every path that starts with it)"
            )
        segments = v.split("/")
        if "." in segments or ".." in segments:
            raise ValueError(
                f"path_prefix {v!r} has a '.' or '..' segment; requests are matched after"
                " those are removed, so it could never match"
            )
        return v

    @field_validator("header")
    @classmethod
    def _header_names(cls, v: dict[str, Patterns] | None) -> dict[str, Patterns] | None:
        bad = [name for name in v or {} if not _TOKEN_CHARS.match(name)]
        if bad:
            raise LocatedError(
                [Problem("", f"{name!r} is not a valid header name") for name in bad]
            )
        return v

    @check
    def _not_empty(self) -> list[Problem]:
        if not any((self.path_prefix, self.host, self.header, self.cookie, self.query, self.flag)):
            return [Problem("", "a rule needs at least one condition")]
        return []


class RuleSpec(ForwardSpec):
    match: MatchSpec


class ListenerSpec(SpecModel):
    name: Name
    port: Port
    address: str = "127.0.0.1"
    tls: TlsSpec | None = None
    # Instead of forwarding: redirect every request (then no default and no rules).
    redirect: RedirectSpec | None = None
    # Clients whose X-Forwarded-For/-Proto/-Port are believed (a load balancer in front);
    # from anyone else those headers are replaced by what this router sees.
    trusted_proxies: list[Annotated[str, AfterValidator(check_network)]] = Field(
        default_factory=list
    )
    # Client connections open at once, per data-plane process; beyond it: 503 and close.
    max_connections: Annotated[int, Field(ge=1, le=1 << 20)] = 10_000
    # Protocols an Upgrade request may switch to; other Upgrade headers are not forwarded.
    upgrades: list[str] = Field(default_factory=lambda: ["websocket"])
    rules: list[RuleSpec] = Field(default_factory=list)
    default: ForwardSpec | None = None

    _addr = field_validator("address")(classmethod(lambda cls, v: _check_address(v)))

    @check
    def _forward_or_redirect(self) -> list[Problem]:
        if self.redirect is None:
            if self.default is None:
                return [Problem("default", "a listener needs a default action (or a redirect)")]
            return []
        problems = []
        if self.default is not None:
            problems.append(Problem("redirect", "a redirect listener has no default action"))
        if self.rules:
            problems.append(Problem("redirect", "a redirect listener has no rules"))
        if self.redirect.to_port == self.port and (self.tls is not None) == (
            self.redirect.scheme == "https"
        ):
            problems.append(
                Problem("redirect.to_port", "redirects to itself: every request would loop")
            )
        return problems

    @property
    def action(self) -> ForwardSpec:
        """The default action; only for listeners that forward (not redirect)."""
        assert self.default is not None, "a redirect listener has no default action"
        return self.default

    @field_validator("upgrades")
    @classmethod
    def _upgrade_tokens(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _TOKEN_CHARS.match(name):
                raise ValueError(f"{name!r} is not a protocol name (like websocket)")
        return v


_STATUS = re.compile(r"^[1-5][0-9][0-9]$")


class HealthCheckSpec(SpecModel):
    enabled: bool = True
    path: str = "/"
    interval: Duration = 5.0
    timeout: Duration = 2.0
    healthy_threshold: Annotated[int, Field(ge=1, le=10)] = 2
    unhealthy_threshold: Annotated[int, Field(ge=1, le=10)] = 2
    # Status codes that count as healthy, ALB-style: "200", "200-399", "200,204".
    matcher: str = "200-399"

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """An unset timeout is min(2 s, interval): ``{interval: 1s}`` alone is valid (the
        default 2 s would exceed it, and the user never wrote a timeout)."""
        if "timeout" in data or "interval" not in data:
            return data
        try:
            interval = parse_duration(data["interval"])
        except (TypeError, ValueError):
            return data  # the interval's own problem is reported where it belongs
        return {**data, "timeout": min(2.0, interval)}

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("health check path must start with /")
        return v

    @field_validator("matcher")
    @classmethod
    def _matcher(cls, v: str) -> str:
        for part in v.split(","):
            lo, dash, hi = part.strip().partition("-")
            if not _STATUS.match(lo) or (dash and not _STATUS.match(hi)):
                raise ValueError(f"matcher {v!r} must look like 200, 200-399 or 200,204")
            if int(lo) > int(hi or lo):
                raise ValueError(f"matcher {v!r} has a range that ends before it starts")
        return v

    @check
    def _timeout_below_interval(self) -> list[Problem]:
        if self.interval <= 0 or self.timeout <= 0:
            return [Problem("", "interval and timeout must be above 0")]
        if self.timeout > self.interval:
            return [
                Problem(
                    "timeout",
                    f"timeout ({self.timeout:g}s) must not exceed interval ({self.interval:g}s)",
                )
            ]
        return []

    def healthy_status(self, status: int) -> bool:
        for part in self.matcher.split(","):
            lo, _, hi = part.strip().partition("-")
            if int(lo) <= status <= int(hi or lo):
                return True
        return False


def _check_target(value: str) -> str:
    parse_target(value)
    return value


class TargetGroupSpec(SpecModel):
    name: Name
    targets: list[Annotated[str, AfterValidator(_check_target)]] = Field(default_factory=list)
    algorithm: Literal["round_robin", "least_outstanding_requests"] = "round_robin"
    health_check: HealthCheckSpec = HealthCheckSpec()
    deregistration_delay: Duration = 30.0

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        problems: list[Problem] = []
        for k, t in enumerate(v):
            if t in seen:
                problems.append(Problem(f"[{k}]", f"target {t!r} is listed twice"))
            seen.add(t)
        if problems:
            raise LocatedError(problems)
        return v


class AdminSpec(SpecModel):
    port: Port = 9900
    address: str = "127.0.0.1"
    # The environment variable holding the admin token; never the token itself in the file.
    token_env: str = "SLUICE_ADMIN_TOKEN"
    # Serve GET /metrics without a token (for a Prometheus scrape on a trusted host).
    public_metrics: bool = False
    # Bounds of the admin port (with limits.max_request_line/max_header_bytes and
    # timeouts.header/idle, shared with the listeners).
    max_connections: Annotated[int, Field(ge=1, le=4096)] = 64
    max_body_bytes: Annotated[int, Field(ge=1024, le=1 << 30)] = 4 * 1024 * 1024
    body_timeout: Duration = 30.0

    _addr = field_validator("address")(classmethod(lambda cls, v: _check_address(v)))


class TimeoutsSpec(SpecModel):
    connect: Duration = 3.0
    request: Duration = 60.0  # upstream must answer (send the response head) within this
    idle: Duration = 60.0  # client keep-alive connection with no request in progress
    header: Duration = 10.0  # client must send a complete request head within this
    upstream_idle: Duration = 30.0  # pooled upstream connection kept open at most this long


class LimitsSpec(SpecModel):
    max_request_line: Annotated[int, Field(ge=256, le=1 << 20)] = 8192
    max_header_bytes: Annotated[int, Field(ge=1024, le=1 << 22)] = 32768
    # Pipelined requests parsed ahead of the one being served, per client connection.
    max_pipelined: Annotated[int, Field(ge=1, le=1024)] = 16


class RouterConfig(SpecModel):
    # Both may start empty: the control plane starts its router before any service exists.
    listeners: list[ListenerSpec] = Field(default_factory=list)
    target_groups: list[TargetGroupSpec] = Field(default_factory=list)
    admin: AdminSpec = AdminSpec()
    timeouts: TimeoutsSpec = TimeoutsSpec()
    limits: LimitsSpec = LimitsSpec()
    # Environment variable with the key that signs stickiness cookies. Without it the router
    # makes a random key at start, so sticky clients are re-balanced after a restart.
    sticky_secret_env: str = "SLUICE_STICKY_SECRET"
    metrics_window: Duration = 300.0

    @check
    def _group_names(self) -> list[Problem]:
        problems: list[Problem] = []
        first_group: dict[str, int] = {}
        for i, g in enumerate(self.target_groups):
            if g.name in first_group:
                problems.append(
                    Problem(
                        f"target_groups[{i}].name",
                        f"target group {g.name!r} is already defined at"
                        f" target_groups[{first_group[g.name]}]",
                    )
                )
            first_group.setdefault(g.name, i)
        return problems

    @check
    def _listener_names(self) -> list[Problem]:
        problems: list[Problem] = []
        first: dict[str, int] = {}
        for i, lst in enumerate(self.listeners):
            if lst.name in first:
                problems.append(
                    Problem(
                        f"listeners[{i}].name",
                        f"listener {lst.name!r} is already defined at listeners[{first[lst.name]}]",
                    )
                )
            first.setdefault(lst.name, i)
        return problems

    @check
    def _listener_ports(self) -> list[Problem]:
        problems: list[Problem] = []
        port_owner: dict[int, str] = {}
        for i, lst in enumerate(self.listeners):
            if lst.port in port_owner:
                problems.append(
                    Problem(
                        f"listeners[{i}].port",
                        f"port {lst.port} is already used by listener {port_owner[lst.port]!r}",
                    )
                )
            port_owner.setdefault(lst.port, lst.name)
        return problems

    @check
    def _admin_port(self) -> list[Problem]:
        owner = next((lst.name for lst in self.listeners if lst.port == self.admin.port), None)
        if owner is None:
            return []
        return [
            Problem(
                "admin.port",
                f"admin port {self.admin.port} is also the port of listener {owner!r}",
            )
        ]

    @check
    def _known_groups(self) -> list[Problem]:
        problems: list[Problem] = []
        groups = {g.name for g in self.target_groups}
        known = ", ".join(sorted(groups))
        for i, lst in enumerate(self.listeners):
            actions: list[tuple[str, ForwardSpec]] = []
            if lst.default is not None:
                actions.append(("default", lst.default))
            actions += [(f"rules[{j}]", r) for j, r in enumerate(lst.rules)]
            for where, action in actions:
                for k, wg in enumerate(action.forward):
                    if wg.target_group not in groups:
                        problems.append(
                            Problem(
                                f"listeners[{i}].{where}.forward[{k}].target_group",
                                f"unknown target group {wg.target_group!r} (known: {known})",
                            )
                        )
        return problems

    def target_group(self, name: str) -> TargetGroupSpec | None:
        return next((g for g in self.target_groups if g.name == name), None)
