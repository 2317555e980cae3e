"""The lifecycle's vocabulary: phases, what is observed, what is recorded, what to do.

Kept apart from the decide function so the store and the API can use these records
without the rules; import them from :mod:`sluicegate.deploy.lifecycle` or
:mod:`sluicegate.deploy`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Phase(enum.StrEnum):
    PROVISIONING = "provisioning"
    HEALTH_GATE = "health_gate"
    BEFORE_ALLOW_TRAFFIC = "before_allow_traffic"
    SHIFTING = "shifting"
    PAUSED_UNTIL_PROMOTED = "paused_until_promoted"
    AFTER_ALLOW_TRAFFIC = "after_allow_traffic"
    TERMINATION_WAIT = "termination_wait"
    SUCCEEDED = "succeeded"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def guarded(self) -> bool:
        """Green takes production traffic here and a firing alarm rolls back."""
        return self in _GUARDED


_TERMINAL = frozenset({Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED, Phase.STOPPED})
_GUARDED = frozenset(
    {
        Phase.SHIFTING,
        Phase.PAUSED_UNTIL_PROMOTED,
        Phase.AFTER_ALLOW_TRAFFIC,
        Phase.TERMINATION_WAIT,
    }
)
_PROMOTABLE = frozenset({Phase.SHIFTING, Phase.PAUSED_UNTIL_PROMOTED, Phase.TERMINATION_WAIT})


class HookStage(enum.StrEnum):
    BEFORE_ALLOW_TRAFFIC = "before_allow_traffic"
    AFTER_ALLOW_TRAFFIC = "after_allow_traffic"


class Command(enum.StrEnum):
    PROMOTE = "promote"
    PROMOTE_FULL = "promote_full"
    ROLLBACK = "rollback"
    STOP = "stop"


@dataclass(frozen=True)
class HookOutcome:
    """How hook ``index`` of ``stage`` ended; a result for another hook is ignored."""

    stage: HookStage
    index: int
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Observation:
    """What the controller saw on this tick."""

    now: float
    green_healthy: bool | None = None  # every replica of green healthy; None: not known
    green_ready_replicas: int | None = None
    hook_outcome: HookOutcome | None = None
    alarm_firing: str | None = None  # the name of a firing guard alarm
    command: Command | None = None
    actor: str | None = None  # who gave the command, for the event log
    hold: str | None = None  # why a timed step must not end yet (the guards have no verdict)
    green_failed: str | None = None  # green cannot run (cannot start, gave up after crashes)
    green_logs: tuple[str, ...] = ()  # green's last log lines, for the failure's event
    failure: str | None = None  # the world cannot be made to match the record: why


@dataclass(frozen=True)
class DeploymentState:
    """Everything the lifecycle needs to know, as recorded in the store."""

    phase: Phase
    has_blue: bool  # False for a service's first deployment
    phase_started_at: float
    step_index: int = 0
    step_started_at: float = 0.0  # when the current step or hook began
    green_weight: int = 0  # green's share of production traffic, 0..100
    hook_index: int = 0
    test_traffic_on_green: bool = False
    ending: Phase | None = None  # where ROLLING_BACK ends
    reason: str | None = None  # why it is rolling back / rolled back / failed / stopped
    holding: str | None = None  # a timed step outlived its pause: why it waits (obs.hold)


# --- actions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StartGreen:
    """Start green's replicas (only the missing ones if some run)."""


@dataclass(frozen=True)
class StopGreen:
    """Stop green's replicas; traffic no longer reaches them."""


@dataclass(frozen=True)
class StopBlue:
    """Stop blue's replicas; the deployment succeeded."""


@dataclass(frozen=True)
class SetWeights:
    """Production listener: ``green_percent`` to green, the rest to blue, in one call."""

    green_percent: int


@dataclass(frozen=True)
class RouteTestListener:
    """Point the test listener at green (``True``) or back at blue."""

    to_green: bool


@dataclass(frozen=True)
class RunHook:
    """Start hook ``index`` of ``stage``; report with :class:`HookOutcome`."""

    stage: HookStage
    index: int


@dataclass(frozen=True)
class RecordEvent:
    kind: str
    message: str
    logs: tuple[str, ...] = ()  # log lines that explain it (a revision that cannot run)


Action = StartGreen | StopGreen | StopBlue | SetWeights | RouteTestListener | RunHook | RecordEvent


@dataclass(frozen=True)
class Decision:
    state: DeploymentState
    actions: tuple[Action, ...] = ()
    changed: bool = False  # the state differs from the one decided on: decide again now
