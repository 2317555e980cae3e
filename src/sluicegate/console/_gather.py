"""Reading what the pages show, through the same calls the API routes make (the store's
repositories, the controller, the flag service) plus the canary guard's live view: the
router's seconds and its last verdict per deployment."""

from __future__ import annotations

import contextlib
from typing import Any

from sluicegate.api import deployment_view
from sluicegate.console._explain import explain_alarm, explain_guard_text, explain_judgement
from sluicegate.console._model import (
    OverviewRow,
    actual_weight,
    overview_row,
    second_series,
    weight_history,
)
from sluicegate.console._svg import Series, line_chart
from sluicegate.deploy.controller import Controller
from sluicegate.errors import SluicegateError
from sluicegate.monitor.canary import Judgement
from sluicegate.monitor.guards import DefaultGuards
from sluicegate.monitor.sources import Second
from sluicegate.router.traffic import group_name
from sluicegate.store import Deployment, Event, Store

__all__ = ["activity_events", "deployment_page", "overview"]

WINDOW = 60  # seconds of router metrics the guard judges, and the charts show


async def _seconds(
    guards: DefaultGuards | None, dep: Deployment
) -> tuple[list[Second], list[Second]]:
    """Green's and blue's seconds, as the guard reads them; empty without a router."""
    if guards is None or dep.from_revision is None:
        return [], []
    try:
        series = await guards.source.seconds(dep.service, WINDOW)
    except (SluicegateError, OSError):
        return [], []
    return (
        series.get(group_name(dep.service, dep.revision), []),
        series.get(group_name(dep.service, dep.from_revision), []),
    )


def _verdict(guards: DefaultGuards | None, dep: Deployment) -> Judgement | None:
    return guards.last.get(dep.id) if guards is not None else None


async def overview(
    store: Store, ctl: Controller, guards: DefaultGuards | None
) -> list[OverviewRow]:
    rows = []
    for s in store.services.list():
        dep = store.deployments.active_for(s.name)
        if dep is None:
            latest = store.deployments.list(s.name, limit=1)
            dep = latest[0] if latest else None
        actual = verdict = None
        if dep is not None and dep.active:
            green, blue = await _seconds(guards, dep)
            actual = actual_weight(green, blue)
            verdict = _verdict(guards, dep)
        last = store.events.query(service=s.name, limit=1)
        rows.append(
            overview_row(
                s.name,
                ctl.current_revision(s.name),
                deployment_view(dep) if dep is not None else None,
                actual=actual,
                verdict=verdict,
                last=last[-1] if last else None,
            )
        )
    return rows


def _evidence_lines(data: dict[str, Any]) -> list[str]:
    """A guarding alarm's evidence event, in words (its rule is not in the event)."""
    return explain_alarm(
        str(data.get("alarm", "?")),
        str(data.get("state", "ALARM")),
        str(data.get("reason", "")),
        None,
        [p for p in data.get("datapoints", []) if isinstance(p, dict)],
    )


_DECISIONS = {
    "deployment.alarm",
    "deployment.rollback",
    "deployment.rolled_back",
    "deployment.holding",
    "deployment.failed",
}


async def deployment_page(
    store: Store, ctl: Controller, guards: DefaultGuards | None, dep_id: str, *, full: bool = True
) -> dict[str, Any]:
    """Everything the deployment page shows (NotFoundError for an unknown id); the live
    panel (``full=False``) leaves out what costs a probe or a file read: replicas' health
    and logs."""
    dep = store.deployments.get(dep_id)
    view = deployment_view(dep)
    events = store.events.list(subject=dep_id, limit=1000)
    progress: dict[str, Any] = {}
    if dep.active and full:
        with contextlib.suppress(SluicegateError, OSError):
            progress = await ctl.progress(dep)
    # the router keeps a minute of seconds: an ended deployment shows what the guard saw
    recent = dep.active or dep.updated_at > ctl.clock.now() - WINDOW
    green, blue = await _seconds(guards, dep) if recent else ([], [])
    charts = []
    if green or blue:
        series = second_series(green, blue)
        charts = [
            line_chart("requests per second", series["requests"]),
            line_chart("5xx share", series["errors"], unit="%"),
            line_chart("latency p50", series["p50"], unit="s"),
            line_chart("latency p99", series["p99"], unit="s"),
        ]
    weights = weight_history(events)
    if weights and dep.active:
        weights.append((ctl.clock.now(), weights[-1][1]))
    weight_chart = line_chart(
        "green weight (%) over time", [Series("green", "green", weights)], unit="%", y_max=100
    )
    verdict = _verdict(guards, dep) if dep.active else None
    decisions, said = [], set()
    for e in events:
        if e.kind in _DECISIONS and e.message not in said:  # a rollback repeats its alarm
            said.add(e.message)
            decisions.append({"event": e, "why": explain_guard_text(e.message)})
        elif e.kind == "deployment.alarm_evidence":
            decisions.append({"event": e, "why": _evidence_lines(e.data)})
    hooks = [e for e in events if e.kind.startswith("deployment.hook_")]
    logs: dict[str, list[str]] = {}
    for revision in filter(None, (dep.from_revision, dep.revision) if full else ()):
        with contextlib.suppress(SluicegateError, OSError):
            read = ctl.world.read_logs(dep.service, revision, None, None, 20)
            logs[revision] = [
                f"[{r.replica}] {line}" for r in read.replicas for line in r.lines
            ] or ([read.note] if read.note else [])
    return {
        "dep": view,
        "events": events,
        "timeline": [e for e in events if e.kind not in ("deployment.alarm_evidence",)],
        "progress": progress,
        "charts": charts,
        "weight_chart": weight_chart,
        "actual": actual_weight(green, blue),
        "verdict": verdict,
        "verdict_lines": explain_judgement(verdict) if verdict is not None else [],
        "decisions": decisions,
        "hooks": hooks,
        "logs": logs,
    }


def activity_events(
    store: Store, kind: str | None, service: str | None, actor: str | None, limit: int
) -> list[Event]:
    """The event log newest first, by kind (exact or ``prefix.*``), service and who; who
    is matched among the newest 1,000 events of that kind and service."""
    found = store.events.query(
        kind=kind or None, service=service or None, limit=limit if not actor else 1000
    )
    if actor:
        found = [e for e in found if e.actor == actor][-limit:]
    return list(reversed(found))
