"""The ``exposures`` metric source as alarms name it: flag evaluations agents reported.

``{source: exposures, name: evaluations, dimensions: {env: prod, flag: checkout, variant:
new}}``: ``env`` is required, ``flag`` and ``variant`` are optional (left out, they are
summed). The server keeps these counts per minute, so an alarm on them needs a period that
is a whole number of minutes, and a counter has no distribution (no percentiles).
"""

from __future__ import annotations

from collections.abc import Mapping

from sluicegate.errors import Problem

__all__ = [
    "EXPOSURE_DIMENSIONS",
    "EXPOSURE_METRICS",
    "exposure_metric_problems",
    "exposure_statistic_problem",
]

EXPOSURE_METRICS = ("evaluations",)
EXPOSURE_DIMENSIONS = ("env", "flag", "variant")


def exposure_metric_problems(name: str | None, dimensions: Mapping[str, str]) -> list[Problem]:
    """What is wrong with an exposures metric's name and dimensions."""
    problems: list[Problem] = []
    if name and name.strip() and name not in EXPOSURE_METRICS:
        problems.append(
            Problem("name", f"unknown exposures metric {name!r}; use {', '.join(EXPOSURE_METRICS)}")
        )
    for key in dimensions:
        if key not in EXPOSURE_DIMENSIONS:
            problems.append(
                Problem(
                    f"dimensions.{key}",
                    f"an exposures metric has the dimensions env, flag and variant, not {key!r}",
                )
            )
    if not dimensions.get("env"):
        problems.append(
            Problem("dimensions.env", "an exposures metric needs its flag environment (env)")
        )
    return problems


def exposure_statistic_problem(period: float, percentile: bool) -> str | None:
    """Why an alarm with this period/statistic cannot read exposures, or None."""
    if period % 60:
        return (
            f"exposures are kept per minute: the period must be a whole number of"
            f" minutes (60s, 5m...), not {period:g}s"
        )
    if percentile:
        return "exposure counts have no distribution: use Sum (or SampleCount)"
    return None
