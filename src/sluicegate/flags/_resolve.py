"""Which version a user gets while a flag-set rollout is in progress, and its evaluation.

During a rollout from version N to N+1 at ``percent``, a context gets N+1 exactly when
``sees_new_version(rollout_id, targeting_key, percent)``: sticky (a user keeps their side
while the share holds) and monotone (a growing share only adds users), identical on every
host and in every SDK. At 100 % everyone gets N+1 and at 0 % everyone N, also contexts
without a targeting key; in between those get N, the version everybody had before.

Imports only the standard library, the evaluator and bucketing: agents and SDKs use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluicegate.flags.bucketing import bucket_value, sees_new_version
from sluicegate.flags.evaluator import (
    TARGETING_KEY,
    TARGETING_KEY_ALIAS,
    CompiledFlagSet,
    FlagType,
    Resolution,
)

__all__ = ["RolloutView", "gets_new_version", "resolve"]


@dataclass(frozen=True)
class RolloutView:
    """What an evaluator needs of a rollout: ``rollout`` in ``GET /v1/flags/{env}``."""

    id: str
    from_version: int
    to_version: int
    percent: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolloutView:
        return cls(str(data["id"]), int(data["from_version"]), int(data["to_version"]),
                   float(data["percent"]))


def gets_new_version(rollout: RolloutView | None, context: Mapping[str, Any] | None) -> bool:
    """Whether ``context`` gets the rollout's new version (False when there is no rollout)."""
    if rollout is None or rollout.percent <= 0:
        return False
    if rollout.percent >= 100:
        return True
    ctx = context if isinstance(context, Mapping) else {}
    raw = ctx.get(TARGETING_KEY)
    key = bucket_value(raw if raw is not None else ctx.get(TARGETING_KEY_ALIAS))
    if key is None:
        return False
    try:
        return sees_new_version(rollout.id, key, rollout.percent)
    except UnicodeEncodeError:  # a key that is not valid Unicode: keep the old version
        return False


def resolve(flags_n: CompiledFlagSet, flags_n1: CompiledFlagSet | None,
            rollout: RolloutView | None, key: str, context: Mapping[str, Any] | None,
            default: Any = None, expected_type: FlagType | str | None = None) -> Resolution:
    """Evaluate flag ``key`` in the version this context gets: ``flags_n1`` (the rollout's
    new version) when :func:`gets_new_version`, else ``flags_n``. Never raises; the
    resolution's ``flag_metadata["version"]`` says which version answered."""
    chosen = flags_n1 if flags_n1 is not None and gets_new_version(rollout, context) else flags_n
    return chosen.evaluate(key, context, default, expected_type)
