"""Strategies as pure step plans: how much traffic (or how many users) the new version gets, when.

One plan format serves both engines: a deployment shifts router weights by it, and a flag
rollout (later) widens a flag change by it. A :class:`Step` first sets the new version's
share (``weight``, 0–100; ``None`` keeps the current share), then waits: ``pause`` seconds,
or until a human promotes (``until_promoted``), or not at all. The plan is done when the
last step's wait is over; every plan reaches 100.

Timings, with their sources (see the delivery anchors):

- CodeDeploy ECS (``CodeDeployDefault.ECS…``): the first increment goes out when traffic
  shifting starts, each further one an interval later. ``Canary10Percent5Minutes`` is 10 %
  at 0 s and 100 % at 5 min; ``Linear10PercentEvery1Minute`` is 10 % at 0 s, 20 % at 1 min …
  100 % at 9 min.
- AppConfig: the deployment duration is divided evenly among the increments and the first
  increment comes one interval after the start (AWS's timeline for 20 % linear over 10 h:
  0 % at 0 h, 20 % at 2 h … 100 % at 10 h); then the final bake time is a pause at 100 %,
  during which alarms still roll back. For the exponential ``Canary10Percent20Minutes``
  (growth factor 10, G·2^N: 10, 20, 40, 80, 100) the even split (4 min) is **derived**,
  AWS does not publish it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sluicegate.spec._duration import format_duration
from sluicegate.spec.service import (
    PREDEFINED_CONFIGS,
    UNTIL_PROMOTED,
    CanaryConfig,
    LinearConfig,
    StepsConfig,
)

__all__ = [
    "APPCONFIG_PRESETS",
    "CODEDEPLOY_PRESETS",
    "Plan",
    "Step",
    "appconfig_plan",
    "canary_plan",
    "describe",
    "linear_plan",
    "plan_for",
    "steps_plan",
]


@dataclass(frozen=True)
class Step:
    """Set the new version's share to ``weight`` (``None``: keep it), then wait.

    The wait is ``pause`` seconds, or until promoted when ``until_promoted`` is true, or
    nothing when both are unset (the next step follows at once).
    """

    weight: int | None
    pause: float | None = None
    until_promoted: bool = False

    def __post_init__(self) -> None:
        if self.weight is not None and not 0 <= self.weight <= 100:
            raise ValueError(f"weight must be 0..100, not {self.weight}")
        if self.pause is not None and not (math.isfinite(self.pause) and self.pause >= 0):
            raise ValueError(f"pause must be a finite number of seconds >= 0, not {self.pause}")
        if self.until_promoted and self.pause is not None:
            raise ValueError("a step waits either for a pause or until promoted, not both")


@dataclass(frozen=True)
class Plan:
    """A named, ordered list of steps whose weights never go down and end at 100."""

    name: str
    steps: tuple[Step, ...]
    # True when the last step (to 100) was added because the written steps stopped short.
    implicit_final_step: bool = False

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a plan needs at least one step")
        highest = 0
        for i, step in enumerate(self.steps):
            if step.weight is not None:
                if step.weight < highest:
                    raise ValueError(f"step {i}: weight {step.weight} is below {highest}")
                highest = step.weight
        if highest != 100:
            raise ValueError("a plan must reach weight 100")

    @property
    def total_duration(self) -> float:
        """Seconds from the first step to the end of the last, counting timed pauses only.

        Waits until promoted are not counted (see :attr:`manual_gates`): they last as long as
        a human takes.
        """
        return sum(s.pause or 0.0 for s in self.steps)

    @property
    def manual_gates(self) -> int:
        """How many steps wait until promoted."""
        return sum(1 for s in self.steps if s.until_promoted)

    def weight_at(self, elapsed: float) -> int:
        """The new version's share ``elapsed`` seconds after the plan started, if no one
        promotes (a manual gate holds its weight forever)."""
        weight, clock = 0, 0.0
        for step in self.steps:
            if step.weight is not None:
                weight = step.weight
            if step.until_promoted:
                return weight
            clock += step.pause or 0.0
            if clock > elapsed:
                return weight
        return weight

    def worst_case_time_to_rollback(
        self, detection_seconds: float, *, check_interval: float = 1.0
    ) -> float:
        """Seconds a bad revision serves production traffic before all of it is back on blue.

        Model: the new revision is bad from its first request (the worst case: it gets
        traffic from the first step). The guard alarm goes to ALARM ``detection_seconds``
        later (for a CloudWatch-style alarm about Period × M plus one evaluation tick); the
        controller notices at its next check, at most ``check_interval`` later, and puts
        every request back on blue with one weight change (counted as instant). Blue keeps
        running through the whole plan, the after-traffic hooks and the termination wait, so
        this holds for any plan as long as the alarm fires before blue is stopped; see
        :meth:`weight_at` for how much traffic the bad revision had by then.
        """
        if detection_seconds < 0 or check_interval < 0:
            raise ValueError("detection_seconds and check_interval must be >= 0")
        return detection_seconds + check_interval

    @property
    def first_traffic_at(self) -> float:
        """Seconds from the start until the new version first gets a share above 0."""
        clock = 0.0
        for step in self.steps:
            if step.weight:
                return clock
            clock += step.pause or 0.0
        return clock

    def weight_at_rollback(self, detection_seconds: float, *, check_interval: float = 1.0) -> int:
        """The bad revision's share when the worst-case rollback happens (its blast radius):
        the weight :meth:`worst_case_time_to_rollback` seconds after its first traffic."""
        t = self.worst_case_time_to_rollback(detection_seconds, check_interval=check_interval)
        return self.weight_at(self.first_traffic_at + t)


def canary_plan(percent: int, interval: float, name: str | None = None) -> Plan:
    """CodeDeploy TimeBasedCanary: ``percent`` at once, the rest ``interval`` later."""
    return Plan(
        name or f"Canary{percent}Percent{format_duration(interval)}",
        (Step(percent, interval), Step(100)),
    )


def linear_plan(percent: int, interval: float, name: str | None = None) -> Plan:
    """CodeDeploy TimeBasedLinear: ``percent`` more every ``interval``, the first at once.

    When ``percent`` does not divide 100 the last increment is smaller (30 → 30, 60, 90, 100).
    """
    weights = [*range(percent, 100, percent), 100]
    steps = tuple(Step(w, interval if w < 100 else None) for w in weights)
    return Plan(name or f"Linear{percent}PercentEvery{format_duration(interval)}", steps)


def steps_plan(config: StepsConfig, name: str = "Custom steps") -> Plan:
    """An explicit step list; a last step to 100 is added when the written ones stop short."""
    steps = [
        Step(s.weight, None, True)
        if s.pause == UNTIL_PROMOTED
        else Step(s.weight, None if s.pause is None else float(s.pause))
        for s in config.steps
    ]
    reached = max((s.weight for s in steps if s.weight is not None), default=0)
    implicit = reached < 100
    if implicit:
        steps.append(Step(100))
    return Plan(name, tuple(steps), implicit_final_step=implicit)


def appconfig_plan(name: str, growth: str, factor: int, duration: float, bake: float) -> Plan:
    """An AppConfig-style strategy: ``growth`` is ``"linear"`` or ``"exponential"`` (G·2^N).

    The duration is split evenly among the increments, the first one interval after the
    start; ``bake`` is a final pause at 100 % (alarms still roll back during it).
    """
    if growth == "linear":
        weights = list(range(factor, 100, factor))
    elif growth == "exponential":
        weights = []
        w = factor
        while w < 100:
            weights.append(w)
            w *= 2
    else:
        raise ValueError(f"growth must be linear or exponential, not {growth!r}")
    weights.append(100)
    if duration == 0:
        return Plan(name, (Step(100, bake or None),))
    interval = duration / len(weights)
    steps = [Step(None, interval)]
    steps += [Step(w, interval) for w in weights[:-1]]
    steps.append(Step(100, bake or None))
    return Plan(name, tuple(steps))


CODEDEPLOY_PRESETS: dict[str, Plan] = {
    "AllAtOnce": Plan("AllAtOnce", (Step(100),)),
    "Canary10Percent5Minutes": canary_plan(10, 300.0, "Canary10Percent5Minutes"),
    "Canary10Percent15Minutes": canary_plan(10, 900.0, "Canary10Percent15Minutes"),
    "Linear10PercentEvery1Minute": linear_plan(10, 60.0, "Linear10PercentEvery1Minute"),
    "Linear10PercentEvery3Minutes": linear_plan(10, 180.0, "Linear10PercentEvery3Minutes"),
}
"""CodeDeploy's ECS predefined deployment configs, by the names a service spec uses."""
assert tuple(CODEDEPLOY_PRESETS) == PREDEFINED_CONFIGS

APPCONFIG_PRESETS: dict[str, Plan] = {
    "AppConfig.Linear50PercentEvery30Seconds": appconfig_plan(
        "AppConfig.Linear50PercentEvery30Seconds", "linear", 50, 60.0, 60.0
    ),
    "AppConfig.Linear20PercentEvery6Minutes": appconfig_plan(
        "AppConfig.Linear20PercentEvery6Minutes", "linear", 20, 1800.0, 1800.0
    ),
    "AppConfig.Canary10Percent20Minutes": appconfig_plan(
        "AppConfig.Canary10Percent20Minutes", "exponential", 10, 1200.0, 600.0
    ),
    "AppConfig.AllAtOnce": appconfig_plan("AppConfig.AllAtOnce", "linear", 100, 0.0, 600.0),
}
"""AppConfig's predefined strategies (deployment duration, growth, final bake time)."""


def plan_for(config: str | CanaryConfig | LinearConfig | StepsConfig) -> Plan:
    """The plan of a deployment config as the service spec holds it, or of a preset name.

    Names are the CodeDeploy ones (:data:`CODEDEPLOY_PRESETS`) or the AppConfig ones
    (:data:`APPCONFIG_PRESETS`); an unknown name raises ``KeyError`` listing the known ones.
    """
    if isinstance(config, str):
        plan = CODEDEPLOY_PRESETS.get(config) or APPCONFIG_PRESETS.get(config)
        if plan is None:
            known = ", ".join([*CODEDEPLOY_PRESETS, *APPCONFIG_PRESETS])
            raise KeyError(f"unknown deployment config {config!r} (known: {known})")
        return plan
    if isinstance(config, CanaryConfig):
        return canary_plan(config.canary.percent, config.canary.interval)
    if isinstance(config, LinearConfig):
        return linear_plan(config.linear.percent, config.linear.interval)
    return steps_plan(config)


def _fmt(seconds: float) -> str:
    return format_duration(seconds) if seconds else "0s"


def describe(plan: Plan, *, detection_seconds: float | None = None) -> list[str]:
    """Lines for the CLI's "here is the plan" print, one per step, then the totals."""
    lines = [f"Plan {plan.name}:"]
    clock = 0.0
    for i, step in enumerate(plan.steps, 1):
        at = f"+{_fmt(clock)}"
        what = f"new version {step.weight}%" if step.weight is not None else "hold"
        if step.until_promoted:
            wait = ", then wait until promoted"
        elif step.pause:
            wait = f", then wait {format_duration(step.pause)}"
        else:
            wait = ""
        note = (
            " (added: the last step sends all traffic)"
            if (plan.implicit_final_step and i == len(plan.steps))
            else ""
        )
        lines.append(f"  {i:>2}. {at:>7}  {what}{wait}{note}")
        clock += step.pause or 0.0
    total = f"Total: {_fmt(plan.total_duration)}"
    if plan.manual_gates:
        gates = "gate" if plan.manual_gates == 1 else "gates"
        total += f" plus {plan.manual_gates} manual {gates}"
    lines.append(total)
    if detection_seconds is not None:
        t = plan.worst_case_time_to_rollback(detection_seconds)
        lines.append(
            f"Worst-case time to rollback: {_fmt(t)}"
            f" (alarm detection {_fmt(detection_seconds)} + 1s check);"
            f" the new version has {plan.weight_at_rollback(detection_seconds)}% by then"
        )
    return lines
