"""The web console at ``/ui/``: every service, deployment, alarm and event in a browser.

Server-rendered pages (Jinja2), live over Server-Sent Events with vendored, pinned htmx and
its SSE extension (``static/README.md``); charts are SVG made on the server. Every page
works without JavaScript (read-only, no live updates). Log in by pasting an API token once;
the session is an HttpOnly, SameSite=Strict cookie. Actions need the deployer role, the
session's CSRF token and a reason, which the event log records with the token's name. It
reads and acts through the same store repositories, controller and flag service as the API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluicegate.clock import Clock
from sluicegate.console._flag_alarm_pages import router as flag_alarm_router
from sluicegate.console._live import router as live_router
from sluicegate.console._pages import router as pages_router
from sluicegate.console._session import COOKIE, Sessions
from sluicegate.console._web import ConsoleState, LoginRequired, render
from sluicegate.errors import SluicegateError
from sluicegate.monitor.guards import DefaultGuards

__all__ = ["COOKIE", "CSP", "ConsoleState", "Sessions", "install_console"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # no-referrer makes forms send Origin: null,
]
_STATIC = {
    "htmx.min.js": "text/javascript",
    "sse.min.js": "text/javascript",
    "console.css": "text/css",
}


class _ConsoleHeaders:
    """Pure ASGI: every ``/ui`` answer gets the CSP and its friends; pages are not cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/ui" or path.startswith("/ui/")):
            await self.app(scope, receive, send)
            return
        static = path.startswith("/ui/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def install_console(
    app: FastAPI,
    clock: Clock,
    *,
    guards: DefaultGuards | None = None,
    sessions: Sessions | None = None,
) -> ConsoleState:
    """Serve the console from ``app`` (made by ``create_app``). ``guards`` is the server's
    default canary guard: its router seconds and last verdicts feed the live views."""
    state = ConsoleState(sessions or Sessions(clock), guards)
    app.state.console = state
    here = Path(__file__).parent / "static"
    files = {name: (here / name).read_bytes() for name in _STATIC}

    @app.get("/ui", include_in_schema=False)
    def ui_root() -> Response:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/ui/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in files:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(
            files[name],
            media_type=_STATIC[name],
            headers={"Cache-Control": "public, max-age=3600"},
        )

    app.include_router(pages_router)
    app.include_router(flag_alarm_router)
    app.include_router(live_router)

    @app.exception_handler(LoginRequired)
    def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/ui/login", status_code=303)

    _html_errors(app)
    app.add_middleware(_ConsoleHeaders)
    return state


_TITLES = {401: "not logged in", 403: "refused", 404: "not found", 409: "conflict",
           422: "invalid input", 503: "unavailable"}  # fmt: skip


def _html_errors(app: FastAPI) -> None:
    """The API's error answers, as a page for the console's pages and forms (the streams
    and static files keep the API's JSON): same status, same message."""
    for kind in (SluicegateError, StarletteHTTPException, RequestValidationError):
        previous = app.exception_handlers[kind]

        async def handler(request: Request, exc: Exception, previous: Any = previous) -> Response:
            answer: Response = await previous(request, exc)
            path = request.url.path
            if not path.startswith("/ui/") or path.startswith(("/ui/live/", "/ui/static/")):
                return answer
            data = json.loads(bytes(answer.body))
            return render(
                request,
                "error.html",
                status=answer.status_code,
                code=answer.status_code,
                viewer=None,
                title=_TITLES.get(answer.status_code, "error"),
                error=data.get("error", ""),
                problems=data.get("problems", []),
            )

        app.add_exception_handler(kind, handler)
