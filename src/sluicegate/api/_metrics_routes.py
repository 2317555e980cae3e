"""Metrics: ``POST /v1/metrics`` stores a pushed batch in the server's series store;
``GET /v1/metrics/query`` reads metric history from the one-minute rollups."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request

from sluicegate.api._auth import Caller, require
from sluicegate.api._routes import _now
from sluicegate.errors import Problem, SpecError
from sluicegate.monitor._push_batch import parse_batch
from sluicegate.monitor.rollups import rollup_datapoints
from sluicegate.monitor.series import SeriesStore
from sluicegate.spec import parse_statistic
from sluicegate.store import Store

router = APIRouter(prefix="/v1")
Reader = Annotated[Caller, Depends(require("reader"))]
Deployer = Annotated[Caller, Depends(require("deployer"))]
MAX_DATAPOINTS = 1440


@router.post("/metrics")
async def push_metrics(
    request: Request, caller: Deployer, body: Annotated[Any, Body()]
) -> dict[str, int]:
    """Store datapoints (CloudWatch PutMetricData's shape): all of the batch, or nothing."""
    series: SeriesStore = request.app.state.series
    now = _now(request)
    batch = parse_batch(body, now, series.window)
    created = series.put(batch, now)
    return {"accepted": len(batch), "new_series": created, "series": len(series)}


@router.get("/metrics/query")
def query_metrics(
    request: Request,
    caller: Reader,
    name: str,
    source: Literal["push", "router"] = "push",
    dimensions: str = "{}",
    statistic: str = "Average",
    start: int | None = None,
    end: int | None = None,
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
    stop = (end if end is not None else int(_now(request))) // period * period
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
    store: Store = request.app.state.store
    rows = store.metric_rollups.query(source, name, dims, stop - count * period, stop)
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
