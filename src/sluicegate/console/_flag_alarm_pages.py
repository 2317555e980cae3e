"""The console's alarm and flag pages, and their actions (drill an alarm's state, revert a
flag set, stop or roll back a flag rollout), through the alarm engine and the flag service
the API uses."""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from sluicegate.console._explain import explain_alarm
from sluicegate.console._svg import Series, line_chart
from sluicegate.console._web import reason_of, render, require_action, viewer_of
from sluicegate.errors import Problem, SluicegateError, SpecError
from sluicegate.flags.rollout import RolloutCommand
from sluicegate.flagservice import FlagService
from sluicegate.monitor.engine import AlarmEngine
from sluicegate.store import Store

__all__ = ["alarm_view", "flag_rollout", "router"]

router = APIRouter(prefix="/ui", include_in_schema=False)

ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _flags(request: Request) -> FlagService:
    flags: FlagService = request.app.state.flags
    return flags


@router.get("/alarms")
def alarms(request: Request) -> Response:
    viewer = viewer_of(request)
    return render(request, "alarms.html", viewer=viewer, alarms=_store(request).alarms.list())


def alarm_view(store: Store, service: str, name: str) -> dict[str, Any]:
    """One alarm: its record, the rule and judged datapoints in words, the datapoints
    against the threshold as a chart, and its state history newest first."""
    a = store.alarms.get(service, name)
    points = [p for p in a.evaluation.get("range", []) if isinstance(p, dict)]
    spec = a.spec or {}
    threshold = spec.get("threshold")
    chart = line_chart(
        f"{a.id}: datapoints against the threshold",
        [
            Series(
                str(spec.get("statistic") or "value"),
                "blue",
                [(float(p["timestamp"]), p.get("value")) for p in points if "timestamp" in p],
            )
        ],
        threshold=threshold if isinstance(threshold, int | float) else None,
    )
    judged = [p for p in a.evaluation.get("datapoints", []) if isinstance(p, dict)]
    history = list(reversed(store.events.list(subject=a.id, kind="alarm.state", limit=100)))
    return {
        "alarm": a,
        "chart": chart,
        "why": explain_alarm(a.id, a.state, a.reason, spec, judged),
        "history": history,
    }


@router.get("/alarms/{service}/{name}")
def alarm(request: Request, service: str, name: str) -> Response:
    viewer = viewer_of(request)
    view = alarm_view(_store(request), service, name)
    return render(request, "alarm.html", viewer=viewer, states=ALARM_STATES, **view)


@router.post("/alarms/{service}/{name}/state")
async def alarm_state(request: Request, service: str, name: str) -> Response:
    """SetAlarmState for drills: it holds until the alarm's next evaluation."""
    viewer, form = await require_action(request)
    reason = reason_of(form)
    state = form.get("state", "")
    if state not in ALARM_STATES:
        raise HTTPException(422, f"state: must be one of {', '.join(ALARM_STATES)}")
    engine: AlarmEngine | None = request.app.state.engine
    if engine is None:
        raise HTTPException(503, "the alarm loop is not running on this server")
    engine.set_state(service, name, state, reason, viewer.name)
    return RedirectResponse(f"/ui/alarms/{service}/{name}", status_code=303)


def flag_rollout(flags: FlagService, env: str) -> dict[str, Any]:
    """An environment's rollout in progress (else its latest): its view, progress and
    events, newest first (the rollout panel, also sent live)."""
    rollouts = flags.store.flag_rollouts.list(env, limit=1)
    rollout = flags.rollout_json(rollouts[0]) if rollouts else None
    progress = flags.rollouts.progress(rollouts[0]) if rollouts and rollouts[0].active else None
    events = [
        e
        for e in flags.store.events.list(subject=f"flags/{env}", limit=200)
        if rollout is not None and e.data.get("rollout") == rollout["id"]
    ]
    return {"rollout": rollout, "progress": progress, "rollout_events": list(reversed(events))}


@router.get("/flags")
def flag_envs(request: Request) -> Response:
    viewer = viewer_of(request)
    envs = _flags(request).store.flags.environments()
    return render(request, "flags.html", viewer=viewer, envs=envs)


@router.get("/flags/{env}")
def flag_env(
    request: Request,
    env: str,
    from_version: Annotated[int | None, Query(alias="from", ge=0, le=2**62)] = None,
    to_version: Annotated[int | None, Query(alias="to", ge=1, le=2**62)] = None,
    key: Annotated[str | None, Query(max_length=200)] = None,
    user: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """An environment: its versions, a diff of any two, its rollout, explain for a user."""
    viewer = viewer_of(request)
    flags = _flags(request)
    info = flags.store.flags.environment(env)
    history = flags.history(env, 100)
    diff: dict[str, Any] | None = None
    problem = None
    if info.current_version is not None:
        try:
            frm, to, d = flags.diff(env, from_version, to_version)
            diff = {"from": frm, "to": to, "text": str(d) or "(no change)"}
        except SluicegateError as exc:
            problem = f"diff: {exc}"
    keys: list[str] = []
    current_text = ""
    if info.current_version is not None:
        document = flags.store.flags.version(env, info.current_version).document
        keys = sorted((document.get("flags") or {}).keys())
        current_text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    explained = None
    if key and user is not None:
        try:
            explained = flags.evaluate(env, key, {"targetingKey": user}, explain=True)
        except SluicegateError as exc:
            problem = f"explain: {exc}"
    shown = key or (keys[0] if keys else None)
    exposures = (
        _exposure_chart(flags.store, env, shown, request.app.state.clock.now()) if shown else None
    )
    return render(
        request,
        "flag_env.html",
        viewer=viewer,
        env=info,
        history=history,
        diff=diff,
        problem=problem,
        keys=keys,
        key=key or "",
        user=user or "",
        explained=explained,
        exposures=exposures,
        current_text=current_text,
        **flag_rollout(flags, env),
    )


EXPOSURE_WINDOW = 3600  # the exposure chart's last hour, per minute
_PALETTE = ("green", "blue", "orange", "purple", "other")


def _exposure_chart(store: Store, env: str, flag: str, now: float) -> Markup:
    """What agents served of ``flag`` by variant, per minute over the last hour."""
    start = int(now - EXPOSURE_WINDOW) // 60 * 60
    end = int(now) // 60 * 60 + 60
    series = []
    for i, total in enumerate(store.flag_exposures.totals(env, start, flag)):
        counts = store.flag_exposures.minutes(env, start, end, flag, total.variant)
        series.append(
            Series(
                total.variant,
                _PALETTE[i % len(_PALETTE)],
                [(float(m), float(n)) for m, n in sorted(counts.items())],
            )
        )
    return line_chart(f"exposures of {flag} by variant, per minute (last hour)", series)


class _NoAliases(yaml.SafeLoader):
    """YAML without anchors and aliases: a pasted "billion laughs" cannot grow into a huge
    document when it is stored as JSON."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted here", event.start_mark
            )
        return super().compose_node(parent, index)


def _document(text: str) -> Any:
    """The pasted flag set (YAML or JSON); a parse error names the line."""
    if not text.strip():
        raise SpecError([Problem("document", "required: paste the flag set (YAML or JSON)")])
    try:
        return yaml.load(text, Loader=_NoAliases)  # a SafeLoader without aliases
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError([Problem("document", f"not YAML{where}: {exc}")]) from exc


@router.post("/flags/{env}/apply")
async def flag_apply(request: Request, env: str) -> Response:
    """Save a pasted flag set as the next version, at once or rolled out by a strategy;
    validated like ``PUT /v1/flags/{env}`` (every problem named, nothing saved). The version
    the form was made from guards against overwriting someone else's change."""
    viewer, form = await require_action(request)
    reason = reason_of(form)
    document = _document(form.get("document", ""))
    expected = form.get("expected", "")
    if not expected.isdigit():
        raise SpecError([Problem("expected", "the version this edit started from: reload")])
    rollout: dict[str, Any] | None = None
    strategy = form.get("strategy", "").strip()
    if strategy:
        alarms = [a.strip() for a in form.get("alarms", "").split(",") if a.strip()]
        rollout = {"strategy": strategy, "alarms": alarms}
    await _flags(request).apply(
        env,
        document,
        actor=viewer.name,
        message=reason,
        expected_version=int(expected),
        rollout=rollout,
    )
    return RedirectResponse(f"/ui/flags/{env}", status_code=303)


@router.post("/flags/{env}/revert")
async def flag_revert(request: Request, env: str) -> Response:
    """Save an earlier version again as the newest; the reason is the version's message."""
    viewer, form = await require_action(request)
    reason = reason_of(form)
    try:
        to = int(form.get("to", ""))
    except ValueError:
        raise HTTPException(422, "to: the version number to revert to") from None
    await _flags(request).revert(env, to, actor=viewer.name, message=reason)
    return RedirectResponse(f"/ui/flags/{env}", status_code=303)


@router.post("/flags/{env}/rollout/{command}")
async def flag_rollout_command(request: Request, env: str, command: str) -> Response:
    viewer, form = await require_action(request)
    if command not in {c.value for c in RolloutCommand}:
        raise HTTPException(404, f"no such rollout action {command!r}")
    reason = reason_of(form)
    await _flags(request).rollouts.command(env, RolloutCommand(command), viewer.name, reason)
    return RedirectResponse(f"/ui/flags/{env}", status_code=303)
