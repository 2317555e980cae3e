"""The console's shared parts: its state on the app, templates, who is looking, forms.

Every page needs a live session (else a redirect to the login page); every action also
needs the deployer role, the session's CSRF token in the form and, when the browser sends
one, an ``Origin`` of this server. The role is read from the store on every request
(``tokens.authenticate``), so a revoked token ends its sessions at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from sluicegate.console._explain import verdict_word
from sluicegate.console._session import COOKIE, Session, Sessions
from sluicegate.console._shared import Shared
from sluicegate.console._svg import weight_bar
from sluicegate.monitor.guards import DefaultGuards
from sluicegate.store import Store

__all__ = [
    "ConsoleState",
    "LoginRequired",
    "Viewer",
    "form_of",
    "render",
    "require_action",
    "viewer_of",
]

HERE = Path(__file__).parent
RANK = {"reader": 0, "deployer": 1, "admin": 2}
MAX_FORM_FIELDS = 20
MAX_REASON = 500


def _clock(at: float | None) -> str:
    if at is None:
        return ""
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")


def templates() -> Environment:
    """The console's templates, autoescaped, with its filters."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["clock"] = _clock
    env.filters["weight_bar"] = weight_bar
    env.filters["verdict_word"] = verdict_word
    return env


@dataclass
class ConsoleState:
    """What the console keeps on ``app.state.console``."""

    sessions: Sessions
    guards: DefaultGuards | None = None
    max_streams: int = 64
    stream_lifetime: float = 300.0
    streams: int = 0
    closed: bool = False  # a flag, not an asyncio.Event: no loop is bound to it
    shared: Shared = field(default_factory=lambda: Shared(max_age=0.2))  # live views
    templates: Environment = field(default_factory=templates)

    def close(self) -> None:
        """End every live stream (server shutdown) within one interval."""
        self.closed = True


class LoginRequired(Exception):  # noqa: N818 - a signal to the handler, not an error
    """No live session: pages redirect to the login form."""


@dataclass(frozen=True)
class Viewer:
    session: Session
    name: str  # the token's name: the actor of what this person does
    role: str

    @property
    def can_act(self) -> bool:
        return RANK.get(self.role, -1) >= RANK["deployer"]


def console_of(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def viewer_of(request: Request) -> Viewer:
    """The person behind the session cookie, checked against the store now."""
    sessions = console_of(request).sessions
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired()
    if request.app.state.insecure:
        return Viewer(session, "insecure", "admin")
    store: Store = request.app.state.store
    token = store.tokens.authenticate(session.token)
    if token is None or token.role not in RANK:
        sessions.end(session.id)
        raise LoginRequired()
    return Viewer(session, token.name, token.role)


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (first value each); the body is bounded by the API's
    ``BodyLimit``, the field count here."""
    body = (await request.body()).decode("utf-8", "replace")
    try:
        fields = parse_qs(body, max_num_fields=MAX_FORM_FIELDS, keep_blank_values=True)
    except ValueError as exc:
        raise HTTPException(422, f"form: {exc}") from exc
    return {k: v[0] for k, v in fields.items()}


def same_origin(request: Request) -> bool:
    """No ``Origin`` header (old browsers, curl), or one naming this server's host."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def require_action(request: Request) -> tuple[Viewer, dict[str, str]]:
    """The viewer and form of an action: 401 without a session, 403 for a reader, a
    missing or wrong CSRF token or a foreign origin (nothing is changed)."""
    if not same_origin(request):
        raise HTTPException(403, "this form was sent from another site")
    try:
        viewer = viewer_of(request)
    except LoginRequired:
        raise HTTPException(401, "log in to the console first") from None
    form = await form_of(request)
    if not viewer.session.csrf_ok(form.get("csrf")):
        raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page")
    if not viewer.can_act:
        raise HTTPException(
            403, f"this action needs the deployer role; the token {viewer.name!r} is {viewer.role}"
        )
    return viewer, form


def reason_of(form: dict[str, str]) -> str:
    """The action's reason: required, at most ``MAX_REASON`` characters, one line."""
    reason = " ".join(form.get("reason", "").split())
    if not reason:
        raise HTTPException(422, "reason: required — say why; it goes into the audit log")
    if len(reason) > MAX_REASON:
        raise HTTPException(422, f"reason: at most {MAX_REASON} characters, got {len(reason)}")
    return reason


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    env = console_of(request).templates
    html = env.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status)
