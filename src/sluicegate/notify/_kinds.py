"""Every kind of event the log holds, by family: what a webhook's event patterns can match.

The one list of them. ``tests/notify/test_kinds.py`` reads the source for every event
appended and fails when a kind is missing here, so a pattern that matches nothing
(``deploymnet.*``) is refused at subscription instead of silently never firing.
"""

from __future__ import annotations

import difflib
from fnmatch import fnmatchcase

__all__ = ["EVENT_FAMILIES", "EVENT_KINDS", "pattern_problem"]

EVENT_FAMILIES: dict[str, tuple[str, ...]] = {
    # sluice apply / delete (deploy.controller)
    "service": ("applied", "deleted", "scaled"),
    # the deployment controller and its lifecycle (deploy.lifecycle RecordEvent kinds)
    "deployment": (
        "created",
        "provisioning",
        "healthy",
        "hook_passed",
        "hook_failed",
        "hook_timeout",
        "health_gate_timeout",
        "traffic",
        "step",
        "holding",
        "promoted",
        "traffic_shifted",
        "termination_wait",
        "succeeded",
        "rollback",
        "stop",
        "alarm",
        "alarm_evidence",
        "failure",
        "green_failed",
        "failed_to_apply",
        "retrying",
        "command",
        "command_ignored",
        "command_refused",
        "rolled_back",
        "failed",
        "stopped",
        "traffic_restored",
    ),
    # a replica's process (compute EventKind)
    "replica": ("started", "restarted", "exited", "failed", "stopped", "adopted", "gone"),
    # the alarm set of a service, and each alarm's state
    "alarm": ("created", "updated", "deleted", "state", "source_error"),
    # flag environments, versions and gradual rollouts (flags.rollout RecordEvent kinds)
    "flags": (
        "env.created",
        "env.deleted",
        "version",
        "rollout.started",
        "rollout.step",
        "rollout.baking",
        "rollout.resumed",
        "rollout.completed",
        "rollout.rolled_back",
        "rollout.stopped",
        "rollout.command",
    ),
    # webhooks themselves: changes, test deliveries, deliveries given up
    "webhook": ("created", "enabled", "disabled", "deleted", "test", "failed"),
    # API tokens made and revoked (by whom: the event's actor)
    "token": ("created", "revoked"),
}
"""Family -> the kinds in it (without the family's prefix)."""

EVENT_KINDS: tuple[str, ...] = tuple(
    f"{family}.{kind}" for family, kinds in EVENT_FAMILIES.items() for kind in kinds
)
"""Every event kind, ``family.kind``."""


def pattern_problem(pattern: str) -> str | None:
    """Why a webhook's event pattern can never match (with the pattern it most likely
    meant), or None when it matches at least one event kind."""
    if any(fnmatchcase(kind, pattern) for kind in EVENT_KINDS):
        return None
    families = ", ".join(f"{f}.*" for f in sorted(EVENT_FAMILIES))
    guess = _guess(pattern)
    hint = f"; did you mean {guess!r}?" if guess else ""
    return f"{pattern!r} matches no event kind{hint} (families: {families})"


def _guess(pattern: str) -> str | None:
    family, dot, rest = pattern.partition(".")
    if family not in EVENT_FAMILIES and "*" not in family:
        close = difflib.get_close_matches(family, list(EVENT_FAMILIES), n=1)
        if not close:
            return None
        fixed = f"{close[0]}{dot}{rest}"
        if any(fnmatchcase(kind, fixed) for kind in EVENT_KINDS):
            return fixed
        pattern = fixed
    close = difflib.get_close_matches(pattern, EVENT_KINDS, n=1)
    return close[0] if close else None
