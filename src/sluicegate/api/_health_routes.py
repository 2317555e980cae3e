"""The server's own health: every engine's last good tick, the store, and Prometheus metrics.

``GET /v1/healthz`` needs no token (a load balancer or systemd watchdog asks it) and answers
503 when an engine is stalled, the store does not take writes, or the server stopped acting
because its state dir or database went away. ``GET /metrics`` (reader token) exposes the
same as Prometheus series, with each engine's restart count.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from sluicegate.api._auth import Caller, require
from sluicegate.engines import EngineHealth, EngineSupervisor

__all__ = ["router"]

router = APIRouter()
Reader = Annotated[Caller, Depends(require("reader"))]


def _engines(request: Request) -> EngineSupervisor | None:
    engines: EngineSupervisor | None = request.app.state.engines
    return engines


def _report(engines: EngineSupervisor | None) -> tuple[bool, dict[str, Any]]:
    if engines is None:  # an app without a server around it (tests, tools)
        return True, {"status": "ok", "engines": {}, "paused": None}
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
    body = {
        "status": "ok" if not problems else "unhealthy",
        "problems": problems,
        "paused": engines.paused,
        "engines": {h.name: _engine_json(h) for h in health},
    }
    return not problems, body


def _engine_json(h: EngineHealth) -> dict[str, Any]:
    return {
        "ok": h.ok,
        "last_good_tick": h.last_good_tick,
        "seconds_since_good_tick": h.seconds_since_good_tick,
        "restarts": h.restarts,
        "last_error": h.last_error,
    }


@router.get("/v1/healthz")
def healthz(request: Request) -> JSONResponse:
    ok, body = _report(_engines(request))
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, caller: Reader) -> PlainTextResponse:
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
