"""Feature flags: the flag-set document, its compiler and evaluator, bucketing, diffs.

Typical use::

    from sluicegate.flags import load_flag_set

    flags = load_flag_set("flags.yaml").compile(version=7)   # validate once, compile once
    flags.get_boolean("new-checkout", {"targetingKey": "u123"}, False)
    flags.evaluate("new-checkout", {"targetingKey": "u123"})  # value, variant, reason, ...
    print(flags.explain("new-checkout", {"targetingKey": "u123"}).render())

The evaluator, compiler and bucketing import no pydantic (only the standard library and
``mmh3``): apps import :mod:`sluicegate.flags.evaluator` through the SDK. The document model
(pydantic) and the diff are imported from here on first use, not when this package loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluicegate.flags._compile import compile_flag_set
from sluicegate.flags._resolve import RolloutView, gets_new_version, resolve
from sluicegate.flags.bucketing import (
    BUCKETS,
    bucket,
    rollout_bucket,
    sees_new_version,
)
from sluicegate.flags.evaluator import (
    TARGETING_KEY,
    CompiledFlagSet,
    ErrorCode,
    FlagType,
    Reason,
    Resolution,
)

if TYPE_CHECKING:
    from sluicegate.flags._explain import Explanation, Step
    from sluicegate.flags.diff import (
        EntryChange,
        FieldChange,
        FlagSetDiff,
        IdsChange,
        diff_flag_sets,
    )
    from sluicegate.flags.model import (
        FlagSet,
        flag_set_schema,
        load_flag_set,
        parse_flag_set,
        validate_flag_set,
    )

__all__ = [
    "BUCKETS",
    "TARGETING_KEY",
    "CompiledFlagSet",
    "EntryChange",
    "ErrorCode",
    "Explanation",
    "FieldChange",
    "FlagSet",
    "FlagSetDiff",
    "FlagType",
    "IdsChange",
    "Reason",
    "Resolution",
    "RolloutView",
    "Step",
    "bucket",
    "compile_flag_set",
    "diff_flag_sets",
    "flag_set_schema",
    "gets_new_version",
    "load_flag_set",
    "parse_flag_set",
    "resolve",
    "rollout_bucket",
    "sees_new_version",
    "validate_flag_set",
]

_LAZY = {
    "Explanation": "sluicegate.flags._explain",
    "Step": "sluicegate.flags._explain",
    "EntryChange": "sluicegate.flags.diff",
    "FieldChange": "sluicegate.flags.diff",
    "FlagSetDiff": "sluicegate.flags.diff",
    "IdsChange": "sluicegate.flags.diff",
    "diff_flag_sets": "sluicegate.flags.diff",
    "FlagSet": "sluicegate.flags.model",
    "flag_set_schema": "sluicegate.flags.model",
    "load_flag_set": "sluicegate.flags.model",
    "parse_flag_set": "sluicegate.flags.model",
    "validate_flag_set": "sluicegate.flags.model",
}


def __getattr__(name: str) -> Any:
    """Load the pydantic model (and friends) on first use only."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
