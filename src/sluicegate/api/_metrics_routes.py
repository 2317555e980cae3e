"""Metrics: ``POST /v1/metrics`` stores a pushed batch in the server's series store;
``GET /v1/metrics/query`` reads metric history from the one-minute rollups."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sluicegate.api._auth import Caller, require_metrics_pusher
from sluicegate.api._deps import Reader, now_of, store_of
from sluicegate.api._shapes import COMMON_ERRORS, INT64_MAX, described_as, errors
from sluicegate.errors import Problem, SpecError
from sluicegate.monitor._push_batch import (
    MAX_COUNT,
    MAX_DIMENSIONS,
    MAX_ENTRIES,
    MAX_VALUES,
    parse_batch,
)
from sluicegate.monitor.rollups import rollup_datapoints
from sluicegate.monitor.series import SeriesStore
from sluicegate.spec import parse_statistic

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["metrics"], responses=COMMON_ERRORS)
MAX_DATAPOINTS = 1440


class StatisticValues(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_count: int = Field(ge=1, le=MAX_COUNT)
    sum: float
    minimum: float
    maximum: float


class MetricEntry(BaseModel):
    """One entry: exactly one of ``value``, ``values`` (with ``counts``) or
    ``statistic_values``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    dimensions: dict[str, str] = Field(default_factory=dict, max_length=MAX_DIMENSIONS)
    timestamp: float | str | None = Field(
        None, description="epoch seconds or ISO 8601; default now"
    )
    value: float | None = None
    values: list[float] | None = Field(None, max_length=MAX_VALUES)
    counts: list[Annotated[int, Field(ge=0, le=MAX_COUNT)]] | None = Field(
        None, max_length=MAX_VALUES
    )
    statistic_values: StatisticValues | None = None


class MetricPush(BaseModel):
    """CloudWatch PutMetricData's shape, in JSON."""

    model_config = ConfigDict(extra="forbid")

    metrics: list[MetricEntry] = Field(min_length=1, max_length=MAX_ENTRIES)


class PushAccepted(BaseModel):
    accepted: int = Field(description="datapoints stored")
    new_series: int
    series: int = Field(description="series held now")


class Datapoint(BaseModel):
    timestamp: int = Field(description="the period's start, epoch seconds")
    value: float | None = Field(description="null: no data in the period")
    samples: int


class MetricHistory(BaseModel):
    source: Literal["push", "router"]
    name: str
    dimensions: dict[str, str]
    statistic: str
    period: int
    datapoints: list[Datapoint]


Pusher = Annotated[Caller, Depends(require_metrics_pusher)]


@router.post("/metrics", response_model=PushAccepted, responses=errors(409))
async def push_metrics(
    request: Request,
    caller: Pusher,
    body: Annotated[Any, Body(), described_as(MetricPush)],
) -> dict[str, int]:
    """Store datapoints (CloudWatch PutMetricData's shape): all of the batch, or nothing;
    409 when it would create more series than the server keeps. A ``metrics`` token limited
    to one service pushes only datapoints whose ``service`` dimension names it (403)."""
    series: SeriesStore = request.app.state.series
    now = now_of(request)
    batch = parse_batch(body, now, series.window)
    if caller.service is not None:
        for i, point in enumerate(batch):
            if point.dimensions.get("service") != caller.service:
                raise HTTPException(
                    403,
                    f"metrics[{i}]: the token {caller.name!r} pushes for service "
                    f"{caller.service!r} only; give the datapoint dimensions.service: "
                    f"{caller.service}",
                )
    created = series.put(batch, now)
    return {"accepted": len(batch), "new_series": created, "series": len(series)}


@router.get("/metrics/query", response_model=MetricHistory)
def query_metrics(
    request: Request,
    caller: Reader,
    name: str,
    source: Literal["push", "router"] = "push",
    dimensions: str = "{}",
    statistic: str = "Average",
    start: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    end: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    period: Annotated[int, Query(ge=60, le=86400)] = 60,
) -> dict[str, Any]:
    """Datapoints of one series from the minute rollups (kept 14 days by default).

    ``dimensions`` is a JSON object; ``period`` a multiple of 60; ``start``/``end`` epoch
    seconds (default: the last 3 hours), at most 1440 datapoints."""
    problems: list[Problem] = []
    try:
        dims = json.loads(dimensions)
        if not isinstance(dims, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in dims.items()
        ):
            raise ValueError
    except ValueError:
        problems.append(Problem("dimensions", 'a JSON object of strings, e.g. {"route": "/"}'))
        dims = {}
    try:
        parse_statistic(statistic)
    except ValueError as exc:
        problems.append(Problem("statistic", str(exc)))
    if period % 60:
        problems.append(Problem("period", "a whole number of minutes (60, 300, 3600...)"))
    stop = (end if end is not None else int(now_of(request))) // period * period
    begin = start if start is not None else stop - 3 * 3600
    count = -(-(stop - begin) // period)
    if count < 1 or count > MAX_DATAPOINTS:
        problems.append(
            Problem(
                "start",
                f"start..end must hold 1 to {MAX_DATAPOINTS}"
                f" periods of {period}s (it holds {count})",
            )
        )
    if problems:
        raise SpecError(problems)
    rows = store_of(request).metric_rollups.query(source, name, dims, stop - count * period, stop)
    points = rollup_datapoints(rows, statistic, end=stop, period=period, count=count)
    return {
        "source": source,
        "name": name,
        "dimensions": dims,
        "statistic": statistic,
        "period": period,
        "datapoints": [
            {"timestamp": p.timestamp, "value": p.value, "samples": p.samples} for p in points
        ],
    }
