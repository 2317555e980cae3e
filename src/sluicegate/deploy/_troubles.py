"""Deployments whose ticks keep failing: said once, retried, and given up after a bound.

A failure is an event the first time its message is seen (the same trouble every quarter
second is not news); when a deployment has failed for ``bound`` seconds in a row it is given
up: recorded as rolling back to end FAILED, which the controller replays until the world
matches. Giving up does not decide through the lifecycle, because deciding may be what fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sluicegate.clock import Clock
from sluicegate.deploy._routing import state_from_json
from sluicegate.deploy.lifecycle import DeploymentState, RecordEvent, abandon
from sluicegate.errors import SluicegateError
from sluicegate.spec._duration import format_duration
from sluicegate.store import Deployment, Store

__all__ = ["Record", "Troubles"]

log = logging.getLogger(__name__)

Record = Callable[
    [Deployment, "DeploymentState | None", DeploymentState, tuple[RecordEvent, ...]], Deployment
]
"""How the controller records a state with its events (one transaction)."""


@dataclass
class _Trouble:
    since: float
    message: str = ""
    gave_up: bool = False


class Troubles:
    def __init__(self, store: Store, clock: Clock, bound: float) -> None:
        self.store = store
        self.clock = clock
        self.bound = bound
        self._by_id: dict[str, _Trouble] = {}

    def failed(self, dep: Deployment, exc: Exception, record: Record) -> bool:
        """A tick of ``dep`` raised ``exc``. Returns True when the deployment was given up
        now (the caller replays the recorded rollback on its next tick)."""
        now = self.clock.now()
        expected = isinstance(exc, SluicegateError)
        message = str(exc) if expected else f"internal error: {type(exc).__name__}: {exc}"
        trouble = self._by_id.setdefault(dep.id, _Trouble(since=now))
        if trouble.message != message:
            trouble.message = message
            if expected:
                log.warning("deployment %s: %s (will retry)", dep.id, message)
            else:
                log.error("deployment %s: tick failed (will retry)", dep.id, exc_info=exc)
            hint = "" if expected else " (traceback in the server log)"
            self._event(
                dep.id,
                f"{message}{hint}; retrying every tick, giving up after "
                f"{format_duration(self.bound)}",
            )
        if trouble.gave_up or now - trouble.since < self.bound:
            return False
        trouble.gave_up = True
        return self._give_up(
            dep, f"{message} (kept failing for {format_duration(now - trouble.since)})", record
        )

    def cleared(self, dep_id: str) -> None:
        self._by_id.pop(dep_id, None)

    def _give_up(self, dep: Deployment, reason: str, record: Record) -> bool:
        try:
            current = self.store.deployments.get(dep.id)
            try:
                state: DeploymentState | None = state_from_json(current.state)
            except (TypeError, ValueError, KeyError):
                state = None  # unreadable: the rollback starts afresh
            new = abandon(
                state,
                has_blue=current.from_revision is not None,
                now=self.clock.now(),
                reason=reason,
            )
            if state is not None and new == state:
                return False  # rolling back already: keep retrying it
            record(current, state, new, (RecordEvent("failed_to_apply", reason),))
            return True
        except Exception:
            log.exception("deployment %s: cannot record giving up", dep.id)
            return False

    def _event(self, subject: str, message: str) -> None:
        try:
            self.store.events.append(
                actor="controller", kind="deployment.retrying", subject=subject, message=message
            )
        except Exception:  # the store may be the trouble; the log has it
            log.exception("cannot record a retrying event for %s", subject)
