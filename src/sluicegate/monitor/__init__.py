"""Monitor: time series, alarm evaluation with CloudWatch semantics, canary judgement.

The alarm core (:mod:`sluicegate.monitor.alarms`) is pure: it imports only ``spec`` and the
standard library, reads no clock and does no I/O; sources and the alarm loop sit above it.
"""

from sluicegate.monitor.alarms import (
    AlarmState,
    AlarmTransition,
    Datapoint,
    EvaluatedPoint,
    Evaluation,
    Histogram,
    PercentileFn,
    StatSet,
    aggregate,
    aggregate_percentile,
    breaches,
    combine,
    evaluate,
    evaluation_range,
    low_sample_threshold,
    period_starts,
    transition,
)

__all__ = [
    "AlarmState",
    "AlarmTransition",
    "Datapoint",
    "EvaluatedPoint",
    "Evaluation",
    "Histogram",
    "PercentileFn",
    "StatSet",
    "aggregate",
    "aggregate_percentile",
    "breaches",
    "combine",
    "evaluate",
    "evaluation_range",
    "low_sample_threshold",
    "period_starts",
    "transition",
]
