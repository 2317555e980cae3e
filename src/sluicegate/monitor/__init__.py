"""Monitor: time series, alarm evaluation with CloudWatch semantics, canary judgement.

Pure cores exported here: :mod:`~sluicegate.monitor.alarms` and
:mod:`~sluicegate.monitor.canary`. The adapters and engines above them are imported from
their modules: :mod:`~sluicegate.monitor.sources` (the datapoint seam; router metrics over
its admin API), :mod:`~sluicegate.monitor.series` (pushed metrics in memory),
:mod:`~sluicegate.monitor.engine` (the alarm loop), :mod:`~sluicegate.monitor.guard_set`
(guarding alarms, then the default green-vs-blue guards of
:mod:`~sluicegate.monitor.guards`) and :mod:`~sluicegate.monitor.rollups` (metric history).

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
from sluicegate.monitor.canary import (
    GroupCounts,
    Judgement,
    Outcome,
    combine_judgements,
    judge,
    judge_errors,
    judge_latency,
)

__all__ = [
    "AlarmState",
    "AlarmTransition",
    "Datapoint",
    "EvaluatedPoint",
    "Evaluation",
    "GroupCounts",
    "Histogram",
    "Judgement",
    "Outcome",
    "PercentileFn",
    "StatSet",
    "aggregate",
    "aggregate_percentile",
    "breaches",
    "combine",
    "combine_judgements",
    "evaluate",
    "evaluation_range",
    "judge",
    "judge_errors",
    "judge_latency",
    "low_sample_threshold",
    "period_starts",
    "transition",
]
