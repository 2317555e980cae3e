"""Console sessions: a pasted API token becomes a random session id in an HttpOnly cookie.

The token itself stays in the server's memory, never in the browser after the login form;
every request authenticates it again against the store, so revoking the token (or its
expiry) ends the session at once. A session also ends ``idle`` seconds after its last use
and ``lifetime`` seconds after login, whichever comes first, and on logout. At most
``max_sessions`` live at once: a new login past that drops the least recently used one.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, replace

from sluicegate.clock import Clock

__all__ = ["COOKIE", "Session", "Sessions"]

COOKIE = "sluice_session"


@dataclass(frozen=True)
class Session:
    id: str
    token: str  # the pasted API token: server memory only
    csrf: str  # the value every action form carries
    created_at: float
    used_at: float

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class Sessions:
    """In-memory sessions with an injected clock (one server process: a restart logs out)."""

    def __init__(
        self,
        clock: Clock,
        *,
        idle: float = 3600.0,
        lifetime: float = 12 * 3600.0,
        max_sessions: int = 1000,
    ) -> None:
        if idle <= 0 or lifetime <= 0 or max_sessions < 1:
            raise ValueError("idle, lifetime and max_sessions must be positive")
        self.clock = clock
        self.idle, self.lifetime, self.max_sessions = idle, lifetime, max_sessions
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def create(self, token: str) -> Session:
        now = self.clock.now()
        session = Session(secrets.token_urlsafe(32), token, secrets.token_urlsafe(32), now, now)
        self._by_id[session.id] = session
        while len(self._by_id) > self.max_sessions:
            self._by_id.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session named by the cookie (and marks it used); None when unknown,
        idle too long or too old (then it is forgotten)."""
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        now = self.clock.now()
        if now - session.used_at > self.idle or now - session.created_at > self.lifetime:
            del self._by_id[session_id]
            return None
        session = replace(session, used_at=now)
        self._by_id[session_id] = session
        self._by_id.move_to_end(session_id)
        return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._by_id.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._by_id)
