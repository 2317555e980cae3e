"""What the webhook engine decides, as pure functions: which webhook wants which event, the
retry schedule, the JSON body, and what a user may configure (checked, naming the field)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from sluicegate.errors import Problem
from sluicegate.notify._kinds import pattern_problem

__all__ = [
    "FAILED_KIND",
    "TEST_KIND",
    "Outcome",
    "RetryPolicy",
    "after_attempt",
    "body_of",
    "check_subscription",
    "matches",
    "redact",
    "wants",
]

#: Appended when a delivery is given up; subject = the webhook's id.
FAILED_KIND = "webhook.failed"
#: Appended by ``POST /v1/webhooks/{id}/test``; delivered to that webhook only.
TEST_KIND = "webhook.test"

_PATTERN = re.compile(r"^[a-z0-9_.*-]{1,100}$")
MAX_PATTERNS = 20
MIN_SECRET = 16
MAX_SECRET = 200
MAX_URL = 2000


def matches(patterns: Sequence[str], kind: str) -> bool:
    """Whether an event kind matches any pattern; ``*`` matches any characters, dots too
    (``deployment.*``, ``alarm.state``, ``*``)."""
    return any(fnmatchcase(kind, p) for p in patterns)


def wants(
    webhook_id: str,
    patterns: Sequence[str],
    after_event_id: int,
    *,
    event_id: int,
    kind: str,
    subject: str,
) -> bool:
    """Whether the webhook gets this event. A ``webhook.test`` goes to the webhook it names
    only; a webhook never gets the ``webhook.failed`` about itself (no failure loops); events
    from before the webhook existed are not sent."""
    if event_id <= after_event_id:
        return False
    if kind == TEST_KIND:
        return subject == webhook_id
    if kind == FAILED_KIND and subject == webhook_id:
        return False
    return matches(patterns, kind)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: after failed attempt n the next waits ``min(base * 2**(n-1),
    cap)`` seconds (1 s, 2 s, 4 s ... with the defaults); after ``max_attempts`` failures the
    delivery is given up. The defaults span about 20 minutes."""

    max_attempts: int = 12
    base: float = 1.0
    cap: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or not self.base > 0 or self.cap < self.base:
            raise ValueError("max_attempts must be at least 1 and 0 < base <= cap")

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        exponent = min(attempts - 1, 62)  # 2**62 * base is past any cap
        return min(self.base * math.pow(2, exponent), self.cap)

    def schedule(self) -> list[float]:
        """Every wait before a retry, in order (``max_attempts - 1`` of them)."""
        return [self.delay(n) for n in range(1, self.max_attempts)]


@dataclass(frozen=True)
class Outcome:
    """A delivery row after an attempt: status, attempts so far, when to try again."""

    status: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: float | None
    delivered_at: float | None

    @property
    def gave_up(self) -> bool:
        return self.status == "failed"


def after_attempt(policy: RetryPolicy, attempts_before: int, ok: bool, now: float) -> Outcome:
    """The delivery's state after one more attempt that succeeded (``ok``) or not."""
    attempts = attempts_before + 1
    if ok:
        return Outcome("delivered", attempts, None, now)
    if attempts >= policy.max_attempts:
        return Outcome("failed", attempts, None, None)
    return Outcome("pending", attempts, now + policy.delay(attempts), None)


def body_of(event: dict[str, Any]) -> bytes:
    """The JSON body of a delivery: the event as ``GET /v1/events`` shows it (the bytes the
    signature covers)."""
    keys = ("id", "kind", "subject", "message", "actor", "at", "data")
    return json.dumps(
        {k: event[k] for k in keys}, separators=(",", ":"), ensure_ascii=False
    ).encode()


def redact(url: str) -> str:
    """``url`` without credentials or query string, for logs and events."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host += f":{parts.port}"
    except ValueError:
        return "<invalid url>"
    return f"{parts.scheme}://{host}{parts.path}"


def check_subscription(url: str, patterns: Sequence[str], secret: str | None) -> list[Problem]:
    """Every problem with a webhook's settings, at its field (``url``, ``events[i]``: also a
    pattern that matches no event kind, ``secret``); an empty list when they are fine."""
    problems: list[Problem] = []
    try:
        parts = urlsplit(url)
        _ = parts.port
        fine = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        fine = False
    if not fine or len(url) > MAX_URL or any(c.isspace() for c in url):
        problems.append(
            Problem(
                "url",
                f"must be an http:// or https:// URL with a host (at"
                f" most {MAX_URL} characters), not {url[:100]!r}",
            )
        )
    if not patterns:
        problems.append(
            Problem("events", "give at least one event-kind pattern, e.g. 'deployment.*' or '*'")
        )
    if len(patterns) > MAX_PATTERNS:
        problems.append(Problem("events", f"at most {MAX_PATTERNS} patterns"))
    for i, p in enumerate(patterns):
        if not _PATTERN.match(p):
            problems.append(
                Problem(
                    f"events[{i}]",
                    f"{p!r} is not an event-kind pattern: use"
                    " lower-case letters, digits, '.', '_', '-' and '*'"
                    " (e.g. 'deployment.*')",
                )
            )
        elif why := pattern_problem(p):
            problems.append(Problem(f"events[{i}]", why))
    if secret is not None and not (
        MIN_SECRET <= len(secret) <= MAX_SECRET and secret.isprintable() and not secret.isspace()
    ):
        problems.append(
            Problem("secret", f"must be {MIN_SECRET} to {MAX_SECRET} printable characters")
        )
    return problems
