"""Pushed metrics: ``POST /v1/metrics`` stores a batch in the server's series store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from sluicegate.api._auth import Caller, require
from sluicegate.clock import Clock
from sluicegate.monitor._push_batch import parse_batch
from sluicegate.monitor.series import SeriesStore

router = APIRouter(prefix="/v1")
Deployer = Annotated[Caller, Depends(require("deployer"))]


@router.post("/metrics")
async def push_metrics(request: Request, caller: Deployer,
                       body: Annotated[Any, Body()]) -> dict[str, int]:
    """Store datapoints (CloudWatch PutMetricData's shape): all of the batch, or nothing."""
    series: SeriesStore = request.app.state.series
    clock: Clock = request.app.state.clock
    now = clock.now()
    batch = parse_batch(body, now, series.window)
    created = series.put(batch, now)
    return {"accepted": len(batch), "new_series": created, "series": len(series)}
