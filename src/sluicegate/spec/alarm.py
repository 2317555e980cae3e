"""Alarms as users write them, with CloudWatch's metric-alarm semantics.

An alarm watches one metric, or a small arithmetic expression over up to 10 named metrics::

    name: green-5xx-rate
    metrics:
      e: {source: router, name: 5xx, dimensions: {listener: web, target_group: green}}
      r: {source: router, name: requests, dimensions: {listener: web, target_group: green}}
    expression: e / r
    statistic: Sum            # per metric unless a metric names its own
    period: 1s                # whole seconds, at least 1 s
    evaluation_periods: 3     # N
    datapoints_to_alarm: 2    # M of N, not necessarily consecutive (default N)
    threshold: 0.05
    comparison: GreaterThanThreshold
    treat_missing_data: notBreaching

Keys follow CloudWatch's PutMetricAlarm in snake case. ``min_samples`` is ours: a datapoint
computed from fewer samples than this counts as *missing* (then ``treat_missing_data``
decides). Its default is 10 when the alarm reads a percentile or divides (a ratio), so one
slow or failed request out of three never fires an alarm; 0 otherwise. What a "sample" is
comes from the metric: observations for a statistic, histogram entries for a percentile; an
expression's datapoint has the samples of its ``samples_from`` metric, by default the largest
population among its metrics (for ``e / r`` that is ``r``, the requests).

A ``prometheus`` metric is a PromQL ``query`` whose value at each period's *end* is the
datapoint: PromQL has already aggregated (``sum``, ``rate``, ``histogram_quantile``), so there
is one number per period and no samples behind it. Its statistic is therefore the identity:
it may be left out (it reads ``Average``), and Sum, Average, Minimum or Maximum all mean "the
value"; a percentile or SampleCount is refused (put ``histogram_quantile`` in the query). Such a
datapoint counts as one sample, so an alarm whose samples come from prometheus metrics has
``min_samples`` 0 by default and refuses more than 1 (every datapoint would be missing); guard
low traffic inside the query instead.

These keys are a user-facing contract: extend, never rename. Validation names the field.
"""

from __future__ import annotations

import math
import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from sluicegate.errors import Problem
from sluicegate.spec._duration import Duration
from sluicegate.spec._exposure_metric import exposure_metric_problems, exposure_statistic_problem
from sluicegate.spec._expression import Expr, parse_expression, refs
from sluicegate.spec._model import SpecModel, check

__all__ = [
    "AGGREGATE_STATISTICS",
    "COMPARISONS",
    "PROMETHEUS_STATISTICS",
    "ROUTER_COUNTERS",
    "ROUTER_DIMENSIONS",
    "ROUTER_METRICS",
    "AlarmSpec",
    "MetricQuery",
    "MetricSpec",
    "parse_statistic",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_METRIC_ID = re.compile(r"^[a-z][A-Za-z0-9_]{0,31}$")
_PERCENTILE = re.compile(r"^[pP](\d{1,3}(?:\.\d+)?)$")

#: The router's metrics (see docs/monitor.md): counters, and latency in milliseconds.
ROUTER_COUNTERS = ("requests", "1xx", "2xx", "3xx", "4xx", "5xx", "router_502", "router_504")
ROUTER_METRICS = (*ROUTER_COUNTERS, "latency")
ROUTER_DIMENSIONS = ("listener", "target_group")

AGGREGATE_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
COMPARISONS = (
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
)
Comparison = Literal[
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
]
TreatMissingData = Literal["missing", "ignore", "breaching", "notBreaching"]

# CloudWatch: Period x EvaluationPeriods <= 1 day below 1 h periods, <= 7 days otherwise.
_MAX_SPAN_SHORT = 86400
_MAX_SPAN_LONG = 7 * 86400
MAX_METRICS = 10
DEFAULT_MIN_SAMPLES = 10
#: Statistics a prometheus metric accepts: on one value per period they all mean that value.
PROMETHEUS_STATISTICS = ("Average", "Sum", "Minimum", "Maximum")
_PROMETHEUS_DEFAULT_STATISTIC = "Average"
_PROMETHEUS_STATISTIC_HINT = (
    "a prometheus metric is one PromQL value per period, already aggregated by the query;"
    " use Average, Sum, Minimum or Maximum (all mean that value) or leave statistic out, and"
    " compute percentiles in PromQL (histogram_quantile)"
)


def parse_statistic(value: str) -> tuple[str, float | None]:
    """``"p99.9"`` -> ``("p99.9", 0.999)``; ``"Sum"`` -> ``("Sum", None)``; else ValueError."""
    if value in AGGREGATE_STATISTICS:
        return value, None
    m = _PERCENTILE.match(value)
    if m:
        pct = float(m.group(1))
        if 0 < pct <= 100:
            return "p" + m.group(1), pct / 100
        raise ValueError(
            f"percentile {value!r} must be above p0 and at most p100"
            " (use Minimum for the smallest value)"
        )
    raise ValueError(
        f"{value!r} is not a statistic; use one of "
        f"{', '.join(AGGREGATE_STATISTICS)} or a percentile like p99 or p99.9"
    )


def _check_statistic(value: str) -> str:
    return parse_statistic(value)[0]


class MetricSpec(SpecModel):
    """Where a series comes from: the router, an app's push, or a PromQL query."""

    source: Literal["router", "push", "prometheus", "exposures"]
    # router/push/exposures: the metric name (router: e.g. requests, 5xx, latency) and its
    # dimensions (router: listener, target_group; exposures: env, flag, variant).
    # prometheus: the PromQL ``query`` instead.
    name: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    query: str | None = None

    @check
    def _by_source(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.source == "prometheus":
            if not (self.query or "").strip():
                problems.append(Problem("query", "a prometheus metric needs a PromQL query"))
            if self.name is not None:
                problems.append(Problem("name", "a prometheus metric is its query; drop name"))
            if self.dimensions:
                problems.append(Problem("dimensions", "put label matchers in the query instead"))
        else:
            if not (self.name or "").strip():
                problems.append(Problem("name", f"a {self.source} metric needs a name"))
            if self.query is not None:
                problems.append(Problem("query", "only a prometheus metric has a query"))
        if self.source == "router" and not problems:
            problems += self._router_problems()
        if self.source == "exposures" and not problems:
            problems += exposure_metric_problems(self.name, self.dimensions)
        return problems

    def _router_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.name and self.name.strip() and self.name not in ROUTER_METRICS:
            problems.append(
                Problem(
                    "name",
                    f"unknown router metric {self.name!r}; use one of {', '.join(ROUTER_METRICS)}",
                )
            )
        for key in self.dimensions:
            if key not in ROUTER_DIMENSIONS:
                problems.append(
                    Problem(
                        f"dimensions.{key}",
                        "a router metric has the"
                        f" dimensions listener and target_group, not {key!r}",
                    )
                )
        if not self.dimensions.get("listener"):
            problems.append(
                Problem(
                    "dimensions.listener", "a router metric needs its listener (the service's name)"
                )
            )
        return problems


class MetricQuery(MetricSpec):
    """A metric inside an expression; ``statistic`` defaults to the alarm's."""

    statistic: str | None = None

    _stat = field_validator("statistic")(
        classmethod(lambda cls, v: None if v is None else _check_statistic(v))
    )


class AlarmSpec(SpecModel):
    name: Annotated[str, Field(pattern=_NAME)]
    description: str = ""
    metric: MetricSpec | None = None
    metrics: dict[str, MetricQuery] | None = None
    expression: str | None = None
    samples_from: str | None = None
    statistic: str | None = None
    period: Duration
    evaluation_periods: Annotated[int, Field(ge=1)]
    datapoints_to_alarm: Annotated[int, Field(ge=1, description="M; default N")]
    threshold: float
    comparison: Comparison
    treat_missing_data: TreatMissingData = "missing"
    min_samples: Annotated[
        int, Field(ge=0, description="default 10 for percentiles and ratios, else 0")
    ]
    # CloudWatch's EvaluateLowSampleCountPercentile, percentile alarms only: "ignore" keeps
    # the alarm's state while a datapoint has fewer samples than low_sample_threshold(q).
    evaluate_low_sample_count_percentile: Literal["evaluate", "ignore"] | None = None

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """M defaults to N; min_samples to 10 for percentiles and ratios, else 0."""
        data = dict(data)
        if data.get("datapoints_to_alarm") is None:
            n = data.get("evaluation_periods")
            # Without a usable N the alarm fails on evaluation_periods; 1 only keeps a second,
            # misleading "datapoints_to_alarm: Field required" out of the report.
            usable = isinstance(n, int) and not isinstance(n, bool) and n >= 1
            data["datapoints_to_alarm"] = n if usable else 1
        if data.get("min_samples") is None:
            floor = _reads_percentile_or_ratio(data) and not _samples_from_prometheus(data)
            data["min_samples"] = DEFAULT_MIN_SAMPLES if floor else 0
        return data

    @field_validator("statistic")
    @classmethod
    def _statistic(cls, v: str | None) -> str | None:
        return None if v is None else _check_statistic(v)

    @field_validator("period")
    @classmethod
    def _period(cls, v: float) -> float:
        if v < 1 or v != int(v):
            raise ValueError("period must be a whole number of seconds, at least 1s")
        return v

    @field_validator("threshold")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("threshold must be a finite number")
        return v

    @field_validator("metrics")
    @classmethod
    def _metric_ids(cls, v: dict[str, MetricQuery] | None) -> dict[str, MetricQuery] | None:
        if v is None:
            return v
        if not 1 <= len(v) <= MAX_METRICS:
            raise ValueError(f"an expression reads 1 to {MAX_METRICS} metrics")
        for key in v:
            if not _METRIC_ID.match(key):
                raise ValueError(
                    f"metric id {key!r} must start with a lower-case letter and"
                    " hold only letters, digits and _ (at most 32)"
                )
        return v

    @check
    def _shape(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.metric is not None and (self.metrics is not None or self.expression is not None):
            problems.append(
                Problem("metric", "give either metric, or metrics with an expression, not both")
            )
        elif self.metric is None and self.metrics is None and self.expression is None:
            problems.append(
                Problem("metric", "an alarm needs a metric, or metrics with an expression")
            )
        elif self.metric is None:
            problems += self._expression_problems()
        if self.metric is not None and self.statistic is None and not _is_prom(self.metric):
            problems.append(Problem("statistic", "a metric alarm needs a statistic"))
        return problems

    @check
    def _m_of_n(self) -> list[Problem]:
        if self.datapoints_to_alarm <= self.evaluation_periods:
            return []
        return [
            Problem(
                "datapoints_to_alarm",
                f"datapoints_to_alarm ({self.datapoints_to_alarm}) cannot exceed"
                f" evaluation_periods ({self.evaluation_periods})",
            )
        ]

    @check
    def _span(self) -> list[Problem]:
        span = int(self.period) * self.evaluation_periods  # exact: a float overflows
        limit = _MAX_SPAN_SHORT if self.period < 3600 else _MAX_SPAN_LONG
        if span <= limit:
            return []
        return [
            Problem(
                "evaluation_periods",
                f"period x evaluation_periods is {int(span)}s, more than the {limit}s allowed",
            )
        ]

    @check
    def _statistics_suit_metrics(self) -> list[Problem]:
        problems: list[Problem] = []
        for where, (metric, stat) in self._statistics():
            if (
                metric.source == "router"
                and metric.name in ROUTER_COUNTERS
                and parse_statistic(stat)[1] is not None
            ):
                problems.append(
                    Problem(
                        where,
                        f"{stat} needs a distribution; the router"
                        f" counter {metric.name!r} has none (use Sum)",
                    )
                )
            if metric.source == "exposures" and (
                why := exposure_statistic_problem(self.period, parse_statistic(stat)[1] is not None)
            ):
                problem = Problem("period" if self.period % 60 else where, why)
                if problem not in problems:
                    problems.append(problem)
        return problems

    @check
    def _low_sample_setting(self) -> list[Problem]:
        if self.evaluate_low_sample_count_percentile is not None and (
            self.metric is None or self.percentile is None
        ):
            return [
                Problem(
                    "evaluate_low_sample_count_percentile",
                    "only a percentile alarm on one metric has this setting",
                )
            ]
        return []

    def _statistics(self) -> list[tuple[str, tuple[MetricSpec, str]]]:
        """(path of the statistic, (metric, statistic)) for each metric with a statistic."""
        if self.metric is not None:
            return [("statistic", (self.metric, self.statistic))] if self.statistic else []
        out: list[tuple[str, tuple[MetricSpec, str]]] = []
        for key, q in (self.metrics or {}).items():
            stat = q.statistic or self.statistic
            if stat is not None:
                where = f"metrics.{key}.statistic" if q.statistic else "statistic"
                out.append((where, (q, stat)))
        return out

    def _expression_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.metrics is None:
            return [Problem("metrics", "an expression needs the metrics it reads")]
        if self.expression is None:
            return [Problem("expression", "metrics need an expression combining them, e.g. e / r")]
        try:
            tree = parse_expression(self.expression)
        except ValueError as exc:
            return [Problem("expression", str(exc))]
        unknown = sorted(refs(tree) - set(self.metrics))
        if unknown:
            problems.append(
                Problem(
                    "expression",
                    f"unknown metric id {unknown[0]!r} (known: {', '.join(sorted(self.metrics))})",
                )
            )
        if self.samples_from is not None and self.samples_from not in self.metrics:
            problems.append(Problem("samples_from", f"unknown metric id {self.samples_from!r}"))
        if self.statistic is None:
            for key, q in self.metrics.items():
                if q.statistic is None and not _is_prom(q):
                    problems.append(
                        Problem(
                            f"metrics.{key}.statistic",
                            "give a statistic here or at the alarm level",
                        )
                    )
        return problems

    @check
    def _prometheus_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if (
            self.metric is not None
            and _is_prom(self.metric)
            and self.statistic is not None
            and self.statistic not in PROMETHEUS_STATISTICS
        ):
            problems.append(
                Problem(
                    "statistic",
                    f"{self.statistic} on a prometheus metric: " + _PROMETHEUS_STATISTIC_HINT,
                )
            )
        for key, q in (self.metrics or {}).items():
            if _is_prom(q) and q.statistic is not None and q.statistic not in PROMETHEUS_STATISTICS:
                problems.append(
                    Problem(
                        f"metrics.{key}.statistic",
                        f"{q.statistic} on a prometheus metric: " + _PROMETHEUS_STATISTIC_HINT,
                    )
                )
        if self.min_samples > 1 and _samples_from_prometheus(self):
            problems.append(
                Problem(
                    "min_samples",
                    "a prometheus datapoint is one PromQL value"
                    " (1 sample), so min_samples above 1 would make every"
                    " datapoint missing; guard low traffic in the query"
                    " instead (e.g. ... and sum(rate(x[1m])) > 1)",
                )
            )
        return problems

    # --- derived ---------------------------------------------------------------------------

    @property
    def percentile(self) -> float | None:
        """q in (0, 1] when this is a single-metric percentile alarm (p99 -> 0.99), else None."""
        if self.metric is None or self.statistic is None:
            return None
        return parse_statistic(self.statistic)[1]

    @property
    def low_sample_mode(self) -> Literal["evaluate", "ignore"]:
        return self.evaluate_low_sample_count_percentile or "evaluate"

    @cached_property
    def tree(self) -> Expr | None:
        """The parsed expression (None for a single-metric alarm)."""
        return None if self.expression is None else parse_expression(self.expression)

    @property
    def queries(self) -> dict[str, tuple[MetricSpec, str]]:
        """Metric id -> (metric, statistic) to aggregate; a single metric has the id ``m1``."""
        if self.metric is not None:
            if _is_prom(self.metric):
                return {"m1": (self.metric, self.statistic or _PROMETHEUS_DEFAULT_STATISTIC)}
            assert self.statistic is not None
            return {"m1": (self.metric, self.statistic)}
        assert self.metrics is not None
        out: dict[str, tuple[MetricSpec, str]] = {}
        for key, q in self.metrics.items():
            stat = q.statistic or self.statistic
            if _is_prom(q) and stat not in PROMETHEUS_STATISTICS:
                stat = _PROMETHEUS_DEFAULT_STATISTIC  # the alarm's percentile is for the others
            assert stat is not None
            out[key] = (q, stat)
        return out


def _is_prom(metric: Any) -> bool:
    """Whether a metric (a model, or its dict before validation) reads Prometheus."""
    source = metric.get("source") if isinstance(metric, dict) else getattr(metric, "source", None)
    return bool(source == "prometheus")


def _samples_from_prometheus(data: dict[str, Any] | AlarmSpec) -> bool:
    """Whether the alarm's sample counts come from prometheus metrics (1 per datapoint)."""
    get = data.get if isinstance(data, dict) else lambda key: getattr(data, key)
    metric, metrics = get("metric"), get("metrics")
    if metric is not None:
        return _is_prom(metric)
    if not isinstance(metrics, dict) or not metrics:
        return False
    samples_from = get("samples_from")
    if isinstance(samples_from, str) and samples_from in metrics:
        return _is_prom(metrics[samples_from])
    return all(_is_prom(m) for m in metrics.values())


def _reads_percentile_or_ratio(data: dict[str, Any]) -> bool:
    stats = [data.get("statistic")]
    metrics = data.get("metrics")
    if isinstance(metrics, dict):
        stats += [m.get("statistic") for m in metrics.values() if isinstance(m, dict)]
    if any(isinstance(s, str) and _PERCENTILE.match(s) for s in stats):
        return True
    expression = data.get("expression")
    return isinstance(expression, str) and "/" in expression
