"""``deployment.config`` of a service: a predefined name, a canary, a linear, or steps.

Names are CodeDeploy's ECS predefined configs (:data:`PREDEFINED_CONFIGS`); the verbatim
``CodeDeployDefault.ECS…`` spellings are accepted and stored as the short name. A step list
need not end at 100 (the plan adds a last step to 100, as Argo Rollouts does), and its
weights may never go down. ``deploy.strategies`` turns each into a plan.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationError

from sluicegate.errors import Problem
from sluicegate.spec._duration import Duration, parse_duration
from sluicegate.spec._errors import LocatedError, spec_error_from
from sluicegate.spec._model import SpecModel, check

__all__ = [
    "PREDEFINED_CONFIGS",
    "UNTIL_PROMOTED",
    "CanaryConfig",
    "CanaryParams",
    "DeploymentConfig",
    "LinearConfig",
    "LinearParams",
    "StepSpec",
    "StepsConfig",
]

Percent = Annotated[int, Field(ge=1, le=99)]


def _positive(v: float) -> float:
    if v <= 0:
        raise ValueError("interval must be above 0")
    return v


UNTIL_PROMOTED = "until_promoted"

# CodeDeploy's ECS predefined configs (CodeDeployDefault.ECS<name>), by the names users write.
PREDEFINED_CONFIGS: tuple[str, ...] = (
    "AllAtOnce",
    "Canary10Percent5Minutes",
    "Canary10Percent15Minutes",
    "Linear10PercentEvery1Minute",
    "Linear10PercentEvery3Minutes",
)
# The verbatim AWS spellings (note CodeDeploy's "Every1Minutes") mean the same plans.
_CONFIG_ALIASES = {
    "CodeDeployDefault.ECSAllAtOnce": "AllAtOnce",
    "CodeDeployDefault.ECSCanary10Percent5Minutes": "Canary10Percent5Minutes",
    "CodeDeployDefault.ECSCanary10Percent15Minutes": "Canary10Percent15Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": "Linear10PercentEvery1Minute",
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": "Linear10PercentEvery3Minutes",
}


class CanaryParams(SpecModel):
    percent: Percent
    interval: Annotated[Duration, AfterValidator(_positive)]


class LinearParams(SpecModel):
    percent: Percent
    interval: Annotated[Duration, AfterValidator(_positive)]


class CanaryConfig(SpecModel):
    """``percent`` of traffic first, all of it ``interval`` later (CodeDeploy TimeBasedCanary)."""

    canary: CanaryParams


class LinearConfig(SpecModel):
    """``percent`` more traffic every ``interval`` until all (CodeDeploy TimeBasedLinear)."""

    linear: LinearParams


def _check_pause(value: Any) -> Any:
    if value == UNTIL_PROMOTED or value is None:
        return value
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc} (or until_promoted)") from None


class StepSpec(SpecModel):
    """Set green's share of traffic (``weight``), then wait (``pause``); either may be left out."""

    weight: Annotated[int, Field(ge=0, le=100)] | None = None
    pause: Annotated[float | Literal["until_promoted"] | None, BeforeValidator(_check_pause)] = None

    @check
    def _something(self) -> list[Problem]:
        if self.weight is None and self.pause is None:
            return [Problem("", "a step needs a weight, a pause, or both")]
        return []


class StepsConfig(SpecModel):
    """An explicit list of steps (Argo Rollouts style)."""

    steps: Annotated[list[StepSpec], Field(min_length=1, max_length=100)]

    @check
    def _non_decreasing(self) -> list[Problem]:
        problems: list[Problem] = []
        highest, where = 0, -1
        for i, step in enumerate(self.steps):
            if step.weight is None:
                continue
            if step.weight < highest:
                problems.append(
                    Problem(
                        f"steps[{i}].weight",
                        f"weight {step.weight} is below the {highest} of steps[{where}];"
                        " weights may only grow (use rollback to go back)",
                    )
                )
            else:
                highest, where = step.weight, i
        return problems


_SHAPES: dict[str, type[SpecModel]] = {
    "canary": CanaryConfig,
    "linear": LinearConfig,
    "steps": StepsConfig,
}


def _parse_config(value: Any) -> Any:
    if isinstance(value, str):
        name = _CONFIG_ALIASES.get(value, value)
        if name not in PREDEFINED_CONFIGS:
            raise ValueError(
                f"unknown deployment config {value!r}; the predefined ones are"
                f" {', '.join(PREDEFINED_CONFIGS)} (or write canary:, linear: or steps:)"
            )
        return name
    if isinstance(value, BaseModel):
        return value
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _SHAPES:
        model = _SHAPES[next(iter(value))]
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            raise LocatedError(spec_error_from(exc).problems) from None
    raise ValueError(
        "expected a predefined config name, {canary: {percent, interval}},"
        " {linear: {percent, interval}} or {steps: [...]}"
    )


DeploymentConfig = Annotated[
    str | CanaryConfig | LinearConfig | StepsConfig, BeforeValidator(_parse_config)
]
