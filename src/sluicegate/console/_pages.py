"""The console's pages and actions under ``/ui/`` (HTML; not part of the API schema)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from sluicegate.console._gather import activity_events, deployment_page, overview
from sluicegate.console._session import COOKIE
from sluicegate.console._web import (
    RANK,
    LoginRequired,
    Viewer,
    console_of,
    form_of,
    reason_of,
    render,
    require_action,
    same_origin,
    viewer_of,
)
from sluicegate.deploy import Command
from sluicegate.deploy.controller import Controller
from sluicegate.store import Store

__all__ = ["router"]

router = APIRouter(prefix="/ui", include_in_schema=False)

COMMANDS = ("promote", "promote_full", "rollback", "stop")


def _ctl(request: Request) -> Controller:
    ctl: Controller = request.app.state.controller
    return ctl


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("/login")
def login_form(request: Request) -> Response:
    return render(request, "login.html", viewer=None, error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Paste a token once: a reader, deployer or admin token opens a session."""
    if not same_origin(request):
        raise HTTPException(403, "this form was sent from another site")
    form = await form_of(request)
    token = form.get("token", "").strip()
    found = None
    if not request.app.state.insecure:
        found = _store(request).tokens.authenticate(token) if token else None
        error = None
        if found is None:
            error = "token: unknown, revoked or expired (paste the whole token)"
        elif found.role not in RANK:
            error = (
                f"token: {found.name!r} is a {found.role} token; the console needs a "
                "reader, deployer or admin token"
            )
        if error:
            return render(request, "login.html", status=401, viewer=None, error=error)
    console = console_of(request)
    session = console.sessions.create(token)
    out = RedirectResponse("/ui/", status_code=303)
    out.set_cookie(
        COOKIE,
        session.id,
        max_age=int(console.sessions.lifetime),
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return out


@router.post("/logout")
async def logout(request: Request) -> Response:
    viewer, _ = await _any_session(request)
    console_of(request).sessions.end(viewer.session.id)
    out = RedirectResponse("/ui/login", status_code=303)
    out.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return out


async def _any_session(request: Request) -> tuple[Viewer, dict[str, str]]:
    """Logout needs the session's CSRF token but no role."""
    try:
        viewer = viewer_of(request)
    except LoginRequired:
        raise HTTPException(401, "not logged in") from None
    form = await form_of(request)
    if not same_origin(request) or not viewer.session.csrf_ok(form.get("csrf")):
        raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page")
    return viewer, form


@router.get("/")
async def overview_page(
    request: Request, filter: Annotated[str, Query(pattern="^(all|needs-action)$")] = "all"
) -> Response:
    viewer = viewer_of(request)
    rows = await overview(_store(request), _ctl(request), console_of(request).guards)
    if filter == "needs-action":
        rows = [r for r in rows if r.needs_action]
    return render(request, "overview.html", viewer=viewer, rows=rows, filter=filter)


@router.get("/deployments/{dep_id}")
async def deployment(request: Request, dep_id: str) -> Response:
    viewer = viewer_of(request)
    page = await deployment_page(_store(request), _ctl(request), console_of(request).guards, dep_id)
    return render(request, "deployment.html", viewer=viewer, commands=COMMANDS, **page)


@router.post("/deployments/{dep_id}/{command}")
async def deployment_action(request: Request, dep_id: str, command: str) -> Response:
    """promote, promote_full, rollback, stop (stored; the engine applies them) or retry,
    each with the reason the person gave: it lands in the event log with their name."""
    viewer, form = await require_action(request)
    if command not in (*COMMANDS, "retry"):
        raise HTTPException(404, f"no such action {command!r}")
    reason = reason_of(form)
    ctl = _ctl(request)
    if command == "retry":
        new = await ctl.retry(dep_id, viewer.name, reason)
        return RedirectResponse(f"/ui/deployments/{new.id}", status_code=303)
    ctl.command(dep_id, Command(command), viewer.name, reason)
    return RedirectResponse(f"/ui/deployments/{dep_id}", status_code=303)


@router.get("/activity")
def activity(
    request: Request,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    service: Annotated[str | None, Query(max_length=200)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """The one event stream, newest first, filtered by kind (``deployment.*``), service
    and actor (the token's name)."""
    viewer = viewer_of(request)
    found = activity_events(_store(request), kind, service, actor, limit)
    return render(
        request,
        "activity.html",
        viewer=viewer,
        events=found,
        kind=kind or "",
        service=service or "",
        actor=actor or "",
        query=urlencode(
            {k: v for k, v in (("kind", kind), ("service", service), ("actor", actor)) if v}
        ),
    )
