"""A service as the user declares it: listener, health check, compute, deployment config.

The keys below are a user-facing contract (``sluice apply -f shop.yaml``): extend, never
rename. Every problem is reported at the dotted path of the field that causes it.

Decisions written down here because the user sees them:

- ``deployment.config`` is a predefined CodeDeploy name (:data:`PREDEFINED_CONFIGS`; the
  verbatim ``CodeDeployDefault.ECS…`` spellings are accepted and stored as the short name),
  or ``{canary: {percent, interval}}``, ``{linear: {percent, interval}}``, or
  ``{steps: [...]}``.
- An explicit step list need not end at weight 100: as in Argo Rollouts, the plan sends all
  traffic to the new revision after the last written step (``deploy.strategies`` appends
  that step and ``describe`` says so). Weights must never go down.
- ``{name}`` in a compute command or env value is a placeholder and must be one of
  :data:`COMPUTE_PLACEHOLDERS`; braces around anything that is not a bare name (JSON, say)
  are left alone. The port must reach the process: ``{port}`` must appear in the command or
  an env value.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

from sluicegate.errors import Problem
from sluicegate.spec._container import (
    CONTAINER_PLACEHOLDERS,
    ContainerComputeSpec,
    ContainerHostSpec,
    parse_host_url,
    parse_memory,
)
from sluicegate.spec._deployment_config import (
    PREDEFINED_CONFIGS,
    UNTIL_PROMOTED,
    CanaryConfig,
    CanaryParams,
    DeploymentConfig,
    LinearConfig,
    LinearParams,
    StepsConfig,
    StepSpec,
)
from sluicegate.spec._duration import Duration, format_duration
from sluicegate.spec._errors import LocatedError
from sluicegate.spec._model import SpecModel, check
from sluicegate.spec._placeholders import (
    expand_placeholders,
    placeholders_in,
    unknown_placeholders,
)
from sluicegate.spec._secret_ref import SecretRef, check_env
from sluicegate.spec._service_alarm import ALARM_PLACEHOLDERS, ServiceAlarmSpec, bind_alarm
from sluicegate.spec.router import (
    FlagMatchSpec,
    HealthCheckSpec,
    StickinessSpec,
    TlsSpec,
    parse_target,
)

__all__ = [
    "ALARM_PLACEHOLDERS",
    "COMPUTE_PLACEHOLDERS",
    "CONTAINER_PLACEHOLDERS",
    "HOOK_PLACEHOLDERS",
    "PREDEFINED_CONFIGS",
    "UNTIL_PROMOTED",
    "CanaryConfig",
    "CanaryParams",
    "CommandHookSpec",
    "ComputeSpec",
    "ContainerComputeSpec",
    "ContainerHostSpec",
    "DeploymentConfig",
    "DeploymentSpec",
    "ExternalComputeSpec",
    "HookSpec",
    "HooksSpec",
    "HttpHookSpec",
    "LinearConfig",
    "LinearParams",
    "LocalComputeSpec",
    "SecretRef",
    "ServiceAlarmSpec",
    "ServiceListenerSpec",
    "ServiceSpec",
    "StepSpec",
    "StepsConfig",
    "bind_alarm",
    "expand_placeholders",
    "parse_host_url",
    "parse_memory",
    "placeholders_in",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
Name = Annotated[str, Field(pattern=_NAME)]
Port = Annotated[int, Field(ge=1, le=65535)]

COMPUTE_PLACEHOLDERS: frozenset[str] = frozenset({"port", "revision", "replica", "service"})
"""Placeholders in a local command/env: the replica's port, revision, index (from 0), service."""
HOOK_PLACEHOLDERS: frozenset[str] = frozenset({"port", "test_port", "revision", "service"})
"""Placeholders in a hook command: production and test listener ports, green's revision."""

_MAX_HOOK_TIMEOUT = 3600.0  # a CodeDeploy hook must answer within 1 h
_MAX_TERMINATION_WAIT = 2 * 86400.0  # CodeDeploy allows at most 2 days


def _positive(what: str, limit: float | None = None) -> Any:
    def check(v: float) -> float:
        if v <= 0:
            raise ValueError(f"{what} must be above 0")
        if limit is not None and v > limit:
            raise ValueError(f"{what} must be at most {format_duration(limit)}")
        return v

    return AfterValidator(check)


# --- listener and compute ----------------------------------------------------------------


class ServiceListenerSpec(SpecModel):
    """The production port, and an optional test port that reaches green before traffic.

    ``flag_route`` sends the users a flag selects to green (the revision being deployed)
    whatever the weights, from the moment green takes test traffic until the deployment
    ends: ``{key: new-checkout, variant: "on", user_from: {cookie: uid}}``, evaluated by the
    router in the flag environment ``sluice server --router-flags-env`` names.

    ``tls`` makes both ports HTTPS, as a router listener's ``tls:`` block (docs/tls.md):
    certificate files are read by the router, relative to its working directory.
    ``redirect_port``: a plain-HTTP port whose every request is redirected (308) to the same
    path on ``port`` over HTTPS."""

    port: Port
    test_port: Port | None = None
    flag_route: FlagMatchSpec | None = None
    tls: TlsSpec | None = None
    redirect_port: Port | None = None

    @check
    def _distinct(self) -> list[Problem]:
        problems = []
        if self.test_port == self.port:
            problems.append(Problem("test_port", f"test_port must differ from port ({self.port})"))
        if self.redirect_port is not None:
            if self.tls is None:
                problems.append(
                    Problem("redirect_port", "redirects to HTTPS: the listener needs tls")
                )
            if self.redirect_port in (self.port, self.test_port):
                problems.append(
                    Problem("redirect_port", "redirect_port must differ from port and test_port")
                )
        return problems


def _check_command(value: list[str]) -> list[str]:
    if not value[0]:
        raise LocatedError([Problem("[0]", "the program must not be empty")])
    problems = [
        Problem(f"[{i}]", msg)
        for i, arg in enumerate(value)
        if (msg := unknown_placeholders(arg, COMPUTE_PLACEHOLDERS))
    ]
    if problems:
        raise LocatedError(problems)
    return value


class LocalComputeSpec(SpecModel):
    """Processes on this machine, started and supervised by Sluicegate."""

    command: Annotated[list[str], Field(min_length=1), AfterValidator(_check_command)]
    env: dict[str, str | SecretRef] = Field(default_factory=dict)
    replicas: Annotated[int, Field(ge=1, le=64)] = 1
    cwd: str | None = None
    stop_grace: Annotated[Duration, _positive("stop_grace", 600.0)] = 10.0  # SIGTERM → SIGKILL

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str | SecretRef]) -> dict[str, str | SecretRef]:
        return check_env(v, COMPUTE_PLACEHOLDERS)

    @check
    def _port_reaches_process(self) -> list[Problem]:
        texts = [*self.command, *(v for v in self.env.values() if isinstance(v, str))]
        if any("port" in placeholders_in(t) for t in texts):
            return []
        return [
            Problem(
                "command",
                "the process must learn its port: put {port} in the command or in an env value",
            )
        ]


def _check_targets(value: list[str]) -> list[str]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, target in enumerate(value):
        try:
            parse_target(target)
        except ValueError as exc:
            problems.append(Problem(f"[{i}]", str(exc)))
            continue
        if target in seen:
            problems.append(Problem(f"[{i}]", f"target {target!r} is listed twice"))
        seen.add(target)
    if problems:
        raise LocatedError(problems)
    return value


class ExternalComputeSpec(SpecModel):
    """Endpoints deployed by other means, listed per revision."""

    revisions: Annotated[
        dict[Name, Annotated[list[str], Field(min_length=1), AfterValidator(_check_targets)]],
        Field(min_length=1),
    ]


class ComputeSpec(SpecModel):
    """Exactly one backend: ``local``, ``external`` or ``container``."""

    local: LocalComputeSpec | None = None
    external: ExternalComputeSpec | None = None
    container: ContainerComputeSpec | None = None

    @check
    def _exactly_one(self) -> list[Problem]:
        given = [k for k in ("local", "external", "container") if getattr(self, k) is not None]
        if len(given) != 1:
            return [Problem("", "give exactly one compute backend: local, external or container")]
        return []

    @property
    def kind(self) -> str:
        """The backend's name: the one key given (``local``, ``external``, ``container``)."""
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)


# --- hooks -------------------------------------------------------------------------------


class HttpHookSpec(SpecModel):
    """GET ``path`` on green (through the test port before traffic, else the production port)."""

    path: str
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    timeout: Annotated[Duration, _positive("timeout", _MAX_HOOK_TIMEOUT)] = 30.0

    @field_validator("path")
    @classmethod
    def _slash(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("path must start with /")
        return v


def _check_hook_command(value: list[str]) -> list[str]:
    if not value[0]:
        raise LocatedError([Problem("[0]", "the program must not be empty")])
    problems = [
        Problem(f"[{i}]", msg)
        for i, arg in enumerate(value)
        if (msg := unknown_placeholders(arg, HOOK_PLACEHOLDERS))
    ]
    if problems:
        raise LocatedError(problems)
    return value


CommandHookSpec = Annotated[list[str], Field(min_length=1), AfterValidator(_check_hook_command)]


class HookSpec(SpecModel):
    """One lifecycle hook: ``{http: {path, expect_status, timeout}}`` or ``{command, timeout}``.

    A command succeeds when it exits 0 within its timeout.
    """

    http: HttpHookSpec | None = None
    command: CommandHookSpec | None = None
    timeout: Annotated[Duration, _positive("timeout", _MAX_HOOK_TIMEOUT)] | None = None

    @check
    def _one_kind(self) -> list[Problem]:
        if (self.http is None) == (self.command is None):
            return [Problem("", "a hook is either {http: {...}} or {command: [...]}")]
        if self.http is not None and self.timeout is not None:
            return [Problem("timeout", "for an http hook, put timeout inside http: {...}")]
        return []

    @property
    def effective_timeout(self) -> float:
        """Seconds the hook may take: its own timeout, else 30 s (http) or 5 min (command)."""
        if self.http is not None:
            return self.http.timeout
        return self.timeout if self.timeout is not None else 300.0


class HooksSpec(SpecModel):
    before_allow_traffic: list[HookSpec] = Field(default_factory=list)
    after_allow_traffic: list[HookSpec] = Field(default_factory=list)


class DeploymentSpec(SpecModel):
    config: DeploymentConfig = "AllAtOnce"
    # Keep blue running this long after success: rollback stays a single weight flip.
    termination_wait: Annotated[
        Duration, AfterValidator(lambda v: _max("termination_wait", v, _MAX_TERMINATION_WAIT))
    ] = 300.0
    # Green must be healthy (every replica) within this, or the deployment fails.
    health_timeout: Annotated[Duration, _positive("health_timeout", 86400.0)] = 300.0
    hooks: HooksSpec = HooksSpec()
    # A timed step ends only once the canary guard has a verdict on green ("never promote on
    # no data"); with no traffic at all that means waiting for `sluice promote`.
    wait_for_verdict: bool = True


def _max(what: str, v: float, limit: float) -> float:
    if v > limit:
        raise ValueError(f"{what} must be at most {format_duration(limit)}")
    return v


# --- the service -------------------------------------------------------------------------


class ServiceSpec(SpecModel):
    """One service: what ``sluice apply -f`` reads."""

    service: Name
    listener: ServiceListenerSpec
    health_check: HealthCheckSpec = HealthCheckSpec()
    stickiness: StickinessSpec = StickinessSpec()
    compute: ComputeSpec
    deployment: DeploymentSpec = DeploymentSpec()
    # Alarms of this service (docs/monitor.md); `apply` replaces the set, kept ones keep state.
    alarms: list[ServiceAlarmSpec] = Field(default_factory=list, max_length=50)

    @check
    def _alarm_names(self) -> list[Problem]:
        problems: list[Problem] = []
        seen: set[str] = set()
        for i, alarm in enumerate(self.alarms):
            if alarm.name in seen:
                problems.append(
                    Problem(f"alarms[{i}].name", f"another alarm is named {alarm.name!r}")
                )
            seen.add(alarm.name)
        return problems

    @check
    def _test_port_for_http_hooks(self) -> list[Problem]:
        if self.listener.test_port is not None:
            return []
        return [
            Problem(
                f"deployment.hooks.before_allow_traffic[{i}].http",
                "an http hook before traffic runs through the test listener:"
                " set listener.test_port",
            )
            for i, hook in enumerate(self.deployment.hooks.before_allow_traffic)
            if hook.http is not None
        ]
