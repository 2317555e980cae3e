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
from functools import lru_cache
from typing import Any

from sluicegate.flags._conditions import targeting_key
from sluicegate.flags.bucketing import (
    ROLLOUT_NAMESPACE,
    SEPARATOR,
    bucket,
    bucket_value,
    percent_to_buckets,
)
from sluicegate.flags.evaluator import CompiledFlagSet, FlagType, Resolution

__all__ = ["RolloutRule", "RolloutView", "gets_new_version", "resolve", "rollout_rule"]


class RolloutRule:
    """Who gets version N+1 of rollout ``rollout_id`` at ``percent``, with the salt and the
    bucket threshold worked out once (``sees_new_version`` per call redoes both). The one
    implementation of the rule: the flag store, agents and SDKs all ask it."""

    __slots__ = ("_everyone", "_no_one", "_salt", "_threshold")

    def __init__(self, rollout_id: str | int, percent: float) -> None:
        self._salt = str(rollout_id)
        self._everyone = percent >= 100
        # An id holding the separator cannot be bucketed: nobody moves (the old version).
        self._no_one = percent <= 0 or SEPARATOR in self._salt
        self._threshold = 0 if self._no_one or self._everyone else percent_to_buckets(percent)

    def gets_new(self, context: Mapping[str, Any] | None) -> bool:
        if self._everyone:
            return True
        if self._no_one or not isinstance(context, Mapping):
            return False
        key = bucket_value(targeting_key(context))
        if key is None:
            return False
        try:
            return bucket(ROLLOUT_NAMESPACE, self._salt, key) < self._threshold
        except UnicodeEncodeError:  # a key that is not valid Unicode: keep the old version
            return False


@lru_cache(maxsize=64)
def rollout_rule(rollout_id: str, percent: float) -> RolloutRule:
    """The (cached) rule of a rollout at a share."""
    return RolloutRule(rollout_id, percent)


@dataclass(frozen=True)
class RolloutView:
    """What an evaluator needs of a rollout: ``rollout`` in ``GET /v1/flags/{env}``."""

    id: str
    from_version: int
    to_version: int
    percent: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolloutView:
        return cls(
            str(data["id"]),
            int(data["from_version"]),
            int(data["to_version"]),
            float(data["percent"]),
        )


def gets_new_version(rollout: RolloutView | None, context: Mapping[str, Any] | None) -> bool:
    """Whether ``context`` gets the rollout's new version (False when there is no rollout)."""
    return rollout is not None and rollout_rule(rollout.id, rollout.percent).gets_new(context)


def resolve(
    flags_n: CompiledFlagSet,
    flags_n1: CompiledFlagSet | None,
    rollout: RolloutView | None,
    key: str,
    context: Mapping[str, Any] | None,
    default: Any = None,
    expected_type: FlagType | str | None = None,
) -> Resolution:
    """Evaluate flag ``key`` in the version this context gets: ``flags_n1`` (the rollout's
    new version) when :func:`gets_new_version`, else ``flags_n``. Never raises; the
    resolution's ``flag_metadata["version"]`` says which version answered."""
    chosen = flags_n1 if flags_n1 is not None and gets_new_version(rollout, context) else flags_n
    return chosen.evaluate(key, context, default, expected_type)
