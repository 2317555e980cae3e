"""How a new flag-set version reaches users: a strategy, a bake time, guarding alarms.

::

    strategy: Linear20PercentEvery6Minutes    # one of AppConfig's predefined strategies
    # strategy: {steps: [{weight: 10, pause: 30s}, {weight: 50, pause: 1m}]}
    # strategy: {linear: {percent: 25, interval: 1m}}  or  {canary: {percent: 10, interval: 5m}}
    bake_time: 5m                             # the watch at 100 %; overrides the strategy's
    alarms: [shop/high-5xx]                   # any of them firing reverts everyone

Strategy names are AppConfig's (``AppConfig.`` prefix optional); the shapes are the ones a
service's ``deployment.config`` takes, except that a flag rollout has no manual gates
(``until_promoted``). ``deploy.strategies`` turns either into the one plan format both
engines follow; :func:`sluicegate.flags.rollout.rollout_plan` adds the bake time.
These keys are a user-facing contract: extend, never rename.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from sluicegate.errors import Problem
from sluicegate.spec._deployment_config import (
    UNTIL_PROMOTED,
    CanaryConfig,
    LinearConfig,
    StepsConfig,
)
from sluicegate.spec._duration import Duration, format_duration
from sluicegate.spec._errors import LocatedError, spec_error_from
from sluicegate.spec._model import SpecModel, check

__all__ = ["APPCONFIG_STRATEGIES", "MAX_ALARMS", "RolloutSpec", "RolloutStrategy"]

APPCONFIG_STRATEGIES: tuple[str, ...] = (
    "AllAtOnce",
    "Linear50PercentEvery30Seconds",
    "Linear20PercentEvery6Minutes",
    "Canary10Percent20Minutes",
)
"""AppConfig's predefined deployment strategies, by the names a rollout uses."""

MAX_ALARMS = 10
_PREFIX = "AppConfig."
_ALARM_NAME = re.compile(r"^\S{1,200}$")
_SHAPES: dict[str, type[BaseModel]] = {
    "steps": StepsConfig,
    "linear": LinearConfig,
    "canary": CanaryConfig,
}


def _parse_strategy(value: Any) -> Any:
    if isinstance(value, str):
        name = value.removeprefix(_PREFIX)
        if name not in APPCONFIG_STRATEGIES:
            raise ValueError(
                f"unknown strategy {value!r}; the predefined ones are "
                f"{', '.join(APPCONFIG_STRATEGIES)} (or write steps:, linear: or canary:)"
            )
        return name
    if isinstance(value, BaseModel):
        return value
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _SHAPES:
        try:
            config = _SHAPES[next(iter(value))].model_validate(value)
        except ValidationError as exc:
            raise LocatedError(spec_error_from(exc).problems) from None
        if isinstance(config, StepsConfig):
            gates = [
                Problem(
                    f"steps[{i}].pause",
                    "a flag rollout has no manual gates; give a duration like 30s or 5m",
                )
                for i, s in enumerate(config.steps)
                if s.pause == UNTIL_PROMOTED
            ]
            if gates:
                raise LocatedError(gates)
        return config
    raise ValueError(
        f"expected one of {', '.join(APPCONFIG_STRATEGIES)}, {{steps: [...]}},"
        " {linear: {percent, interval}} or {canary: {percent, interval}}"
    )


RolloutStrategy = Annotated[
    str | StepsConfig | LinearConfig | CanaryConfig, BeforeValidator(_parse_strategy)
]


def _alarm_name(value: Any) -> Any:
    if isinstance(value, str) and not _ALARM_NAME.match(value):
        raise ValueError("an alarm name is 1 to 200 characters without spaces, like shop/high-5xx")
    return value


class RolloutSpec(SpecModel):
    """A gradual publication of a flag-set version (AppConfig's deployment strategy)."""

    strategy: RolloutStrategy = "AllAtOnce"
    bake_time: Duration | None = Field(
        None,
        description="how long everyone is on the new version, watched by the alarms, "
        "before the rollout completes; default: the strategy's",
    )
    alarms: Annotated[
        list[Annotated[str, BeforeValidator(_alarm_name)]], Field(max_length=MAX_ALARMS)
    ] = Field(default_factory=list)

    @check
    def _one_bake(self) -> list[Problem]:
        if self.bake_time is None or not isinstance(self.strategy, StepsConfig):
            return []
        reached = False
        for i, step in enumerate(self.strategy.steps):
            reached = reached or step.weight == 100
            if reached and isinstance(step.pause, float) and step.pause > 0:
                return [
                    Problem(
                        "bake_time",
                        f"strategy.steps[{i}] already waits "
                        f"{format_duration(step.pause)} at 100 %; give the wait at "
                        "100 % as bake_time or as that pause, not both",
                    )
                ]
        return []

    def as_json(self) -> dict[str, Any]:
        """The stored form (round-trips through :meth:`model_validate`)."""
        return self.model_dump(mode="json")

    @property
    def strategy_name(self) -> str:
        """A short name for messages: the preset's, or ``custom steps``/``linear``/``canary``."""
        if isinstance(self.strategy, str):
            return self.strategy
        if isinstance(self.strategy, StepsConfig):
            return "custom steps"
        return "linear" if isinstance(self.strategy, LinearConfig) else "canary"
