"""The server's own health: every engine's last good tick, the store, and Prometheus metrics.

``GET /v1/healthz`` needs no token (a load balancer or systemd watchdog asks it) and answers
503 when an engine is stalled, the store does not take writes, or the server stopped acting
because its state dir or database went away. ``GET /metrics`` (reader token) exposes the
same as Prometheus series, with each engine's restart count.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from sluicegate.api._deps import Reader
from sluicegate.api._shapes import json_errors
from sluicegate.engines import EngineHealth, EngineSupervisor

__all__ = ["router"]

router = APIRouter(tags=["health"])


class EngineState(BaseModel):
    ok: bool
    last_good_tick: float | None
    seconds_since_good_tick: float | None
    restarts: int = Field(description="restarts after a failed tick or task")
    last_error: str | None


class Health(BaseModel):
    status: Literal["ok", "unhealthy"]
    problems: list[str] = Field(default_factory=list, description="what is wrong, for a person")
    paused: str | None = Field(description="why the server stopped acting, if it did")
    engines: dict[str, EngineState]


def _engines(request: Request) -> EngineSupervisor | None:
    engines: EngineSupervisor | None = request.app.state.engines
    return engines


def _report(engines: EngineSupervisor | None) -> Health:
    if engines is None:  # an app without a server around it (tests, tools)
        return Health(status="ok", paused=None, engines={})
    health = engines.health()
    problems = [
        f"engine {h.name} stalled: no good tick for "
        f"{h.seconds_since_good_tick or 0:.0f}s"
        + (f" (last error: {h.last_error})" if h.last_error else "")
        for h in health
        if not h.ok
    ]
    if engines.paused:
        problems.insert(0, engines.paused)
    return Health(
        status="ok" if not problems else "unhealthy",
        problems=problems,
        paused=engines.paused,
        engines={h.name: _engine(h) for h in health},
    )


def _engine(h: EngineHealth) -> EngineState:
    return EngineState(
        ok=h.ok,
        last_good_tick=h.last_good_tick,
        seconds_since_good_tick=h.seconds_since_good_tick,
        restarts=h.restarts,
        last_error=h.last_error,
    )


@router.get(
    "/v1/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "An engine stalled, or the server paused"}},
)
def healthz(request: Request) -> JSONResponse:
    """No token needed: 200 when every engine ticks and the store takes writes, else 503."""
    report = _report(_engines(request))
    return JSONResponse(
        report.model_dump(mode="json"), status_code=200 if report.status == "ok" else 503
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **json_errors(401, 403, 413, 503),
    },
)
def metrics(request: Request, caller: Reader) -> PlainTextResponse:
    """The engines' health as Prometheus series (text exposition format 0.0.4)."""
    engines = _engines(request)
    lines = [
        "# HELP sluicegate_engine_up 1 while the engine ticks, 0 when it is stalled.",
        "# TYPE sluicegate_engine_up gauge",
        "# HELP sluicegate_engine_restarts_total Engine restarts after a failed tick or task.",
        "# TYPE sluicegate_engine_restarts_total counter",
        "# HELP sluicegate_engine_last_good_tick_seconds When the engine last ticked well.",
        "# TYPE sluicegate_engine_last_good_tick_seconds gauge",
        "# HELP sluicegate_paused 1 when the server stopped acting (state dir or database gone).",
        "# TYPE sluicegate_paused gauge",
    ]
    for h in engines.health() if engines is not None else []:
        label = f'{{engine="{h.name}"}}'
        lines.append(f"sluicegate_engine_up{label} {int(h.ok)}")
        lines.append(f"sluicegate_engine_restarts_total{label} {h.restarts}")
        if h.last_good_tick is not None:
            lines.append(f"sluicegate_engine_last_good_tick_seconds{label} {h.last_good_tick}")
    paused = engines is not None and engines.paused is not None
    lines.append(f"sluicegate_paused {int(paused)}")
    return PlainTextResponse(
        "\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8"
    )
