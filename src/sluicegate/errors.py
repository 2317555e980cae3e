"""The one exception tree of Sluicegate.

Every error Sluicegate raises on purpose derives from :class:`SluicegateError`; third-party
errors are translated at the boundary (``raise ... from exc``) so callers catch one root::

    SluicegateError
    ├── SpecError                  bad user input (file, field, problem); nothing changed
    │   ├── ConfigFileError        a config file that cannot be read or parsed
    │   └── RouteRefusedError      the data plane refused routes (names the services)
    ├── NotFoundError              a named thing (listener, target group, target) is unknown
    ├── ConflictError              the change contradicts current state (e.g. duplicate target)
    ├── AuthError                  missing or wrong token
    └── TransientError             worth retrying: a peer is down, a port is busy, a timeout
        └── RouterUnavailableError the router's admin API did not answer
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AuthError",
    "ConfigFileError",
    "ConflictError",
    "NotFoundError",
    "Problem",
    "RouteRefusedError",
    "RouterUnavailableError",
    "SluicegateError",
    "SpecError",
    "TransientError",
    "error_from_response",
]


class SluicegateError(Exception):
    """Root of every error Sluicegate raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with user input: where (a dotted path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(SluicegateError):
    """User input failed validation; lists every problem found, and nothing was changed."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{where}{count} {noun}:\n{lines}")


class ConfigFileError(SpecError):
    """A configuration file that cannot be read or is not valid YAML/JSON."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__([Problem("", message)], source=source)


class RouteRefusedError(SpecError):
    """The data plane refused a routing table (a port it cannot listen on, say); the problems
    are in the service spec's terms and ``services`` names whose routes were refused."""

    def __init__(self, problems: Sequence[Problem], services: Sequence[str]) -> None:
        super().__init__(problems, source="router")
        self.services = tuple(services)


class NotFoundError(SluicegateError):
    """A named resource does not exist."""


class ConflictError(SluicegateError):
    """The requested change contradicts the current state."""


class AuthError(SluicegateError):
    """The caller's token is missing, malformed or lacks the required role."""


class TransientError(SluicegateError):
    """A temporary failure: the same call may succeed later."""


class RouterUnavailableError(TransientError):
    """The router's admin API could not be reached or did not answer in time."""


def error_from_response(
    status: int,
    body: Any,
    where: str,
    transient: type[TransientError] = TransientError,
    auth_hint: str = "",
) -> SluicegateError:
    """The Sluicegate error for an error answer of one of our own HTTP APIs, whose bodies are
    ``{"error": ..., "problems": [{"path", "message"}]}``; ``where`` names the call."""
    data: dict[str, Any] = body if isinstance(body, dict) else {"error": str(body)}
    message = str(data.get("error", f"HTTP {status}"))
    if status == 422:
        return SpecError(
            [Problem(p["path"], p["message"]) for p in data.get("problems", [])], source=where
        )
    if status in (401, 403):
        return AuthError(f"{message}{auth_hint}")
    if status == 404:
        return NotFoundError(message)
    if status == 409:
        return ConflictError(message)
    if status == 503:
        return transient(message)
    return SluicegateError(f"{where} answered {status}: {message}")
