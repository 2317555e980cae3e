"""The router's one flag set, shared by every flag rule of a data plane (pure, no I/O).

Rules hold the slot, not the flag set: loading a new version swaps one attribute, so a
request sees the old or the new set, never a mix, and routes need not be rebuilt. The
counters say why flag conditions did not match, so an operator can see a missing cookie
or a flag the router does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluicegate.flags import CompiledFlagSet, compile_flag_set

__all__ = ["FlagSlot", "compile_document"]


def compile_document(version: int, document: Mapping[str, Any]) -> CompiledFlagSet:
    """Validate a flag-set document (as written or in normal form) and compile it; raises
    SpecError naming every problem under ``document.``."""
    from sluicegate.errors import Problem, SpecError
    from sluicegate.flags import validate_flag_set

    try:
        normal = validate_flag_set(dict(document)).document()
    except SpecError as exc:
        raise SpecError(
            [
                Problem(f"document.{p.path}" if p.path else "document", p.message)
                for p in exc.problems
            ]
        ) from exc
    return compile_flag_set(normal, version=version)


class FlagSlot:
    """The current compiled flag set (or None) and the no-match counters."""

    __slots__ = ("eval_failed", "flags", "no_user_id", "unknown_flag")

    def __init__(self) -> None:
        self.flags: CompiledFlagSet | None = None  # knows its own version
        self.no_user_id = 0  # the request carried no user id where the rule reads it
        self.unknown_flag = 0  # no flag set loaded, or the set has no such flag
        self.eval_failed = 0  # the flag is known but could not decide for this user

    def load(self, flags: CompiledFlagSet) -> None:
        self.flags = flags

    def variant(self, key: str, user: str) -> str | None:
        """The variant of flag ``key`` for ``user``; None (and counted) when unknown."""
        flags = self.flags
        if flags is not None:
            variant = flags.evaluate_variant(key, {"targetingKey": user})
            if variant is not None:
                return variant
            if key in flags:  # only on the rare miss: which counter
                self.eval_failed += 1
                return None
        self.unknown_flag += 1
        return None

    def status(self) -> dict[str, Any]:
        return {
            "version": None if self.flags is None else self.flags.version,
            "flags": [] if self.flags is None else self.flags.keys(),
            "unmatched": {
                "no_user_id": self.no_user_id,
                "unknown_flag": self.unknown_flag,
                "eval_failed": self.eval_failed,
            },
        }
