"""A service's own alarms: an :class:`AlarmSpec` plus ``guard``, with placeholders (pure).

In a service spec::

    alarms:
      - name: high-5xx
        metrics:
          e: {source: router, name: 5xx,
              dimensions: {listener: "{service}", target_group: "{green}"}}
          r: {source: router, name: requests,
              dimensions: {listener: "{service}", target_group: "{green}"}}
        expression: e / r
        statistic: Sum
        period: 10s
        evaluation_periods: 3
        threshold: 0.05
        comparison: GreaterThanThreshold
        guard: true           # in ALARM it rolls back the service's deployment (default)

Dimension values (and a prometheus ``query``) may hold :data:`ALARM_PLACEHOLDERS`, filled
in at each evaluation: ``{service}``; ``{green}`` the target group of the revision being
deployed, or of the current one when no deployment runs; ``{blue}`` the previous revision's
group; ``{green_revision}``/``{blue_revision}`` the bare revision names (for pushed metrics
tagged by revision). Without a blue the metrics naming it have no data (missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluicegate.errors import Problem
from sluicegate.spec._model import check
from sluicegate.spec._placeholders import (
    expand_placeholders,
    placeholders_in,
    unknown_placeholders,
)
from sluicegate.spec.alarm import AlarmSpec, MetricSpec

__all__ = ["ALARM_PLACEHOLDERS", "ServiceAlarmSpec", "bind_alarm"]

ALARM_PLACEHOLDERS: frozenset[str] = frozenset(
    {"service", "green", "blue", "green_revision", "blue_revision"}
)


class ServiceAlarmSpec(AlarmSpec):
    """An alarm of one service (identity ``<service>/<name>``)."""

    guard: bool = True

    @check
    def _placeholders(self) -> list[Problem]:
        return [
            Problem(f"{where}.{field}", message)
            for where, metric in _metrics(self)
            for field, text in _texts(metric)
            if (message := unknown_placeholders(text, ALARM_PLACEHOLDERS))
        ]

    def placeholders(self) -> set[str]:
        """The placeholders this alarm's metrics use."""
        return {
            p
            for _, metric in _metrics(self)
            for _, text in _texts(metric)
            for p in placeholders_in(text)
        }


def _metrics(alarm: AlarmSpec) -> list[tuple[str, MetricSpec]]:
    if alarm.metric is not None:
        return [("metric", alarm.metric)]
    return [(f"metrics.{key}", q) for key, q in (alarm.metrics or {}).items()]


def _texts(metric: MetricSpec) -> list[tuple[str, str]]:
    out = [(f"dimensions.{k}", v) for k, v in metric.dimensions.items()]
    if metric.query is not None:
        out.append(("query", metric.query))
    return out


def bind_alarm(
    alarm: ServiceAlarmSpec, values: Mapping[str, str | None]
) -> tuple[ServiceAlarmSpec, frozenset[str]]:
    """The alarm with its placeholders filled from ``values``, and the ids of the metrics
    (``m1`` for a single metric) naming a placeholder whose value is None: they have no
    series now (no blue yet) and read as missing data."""
    known = {k: v for k, v in values.items() if v is not None}
    unbound: set[str] = set()

    def fill(key: str, metric: dict[str, Any]) -> dict[str, Any]:
        texts = [*metric.get("dimensions", {}).values(), metric.get("query") or ""]
        if any(values.get(p, "") is None for t in texts for p in placeholders_in(t)):
            unbound.add(key)
        dims = {k: expand_placeholders(v, known) for k, v in metric.get("dimensions", {}).items()}
        out = {**metric, "dimensions": dims}
        if metric.get("query") is not None:
            out["query"] = expand_placeholders(metric["query"], known)
        return out

    data = alarm.model_dump(mode="json")
    if data.get("metric") is not None:
        data["metric"] = fill("m1", data["metric"])
    else:
        data["metrics"] = {k: fill(k, m) for k, m in data["metrics"].items()}
    return ServiceAlarmSpec.model_validate(data), frozenset(unbound)
