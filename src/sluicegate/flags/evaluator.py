"""Evaluate flags of a compiled flag set: never raises, OpenFeature's reasons and errors.

An evaluation is a dict lookup and a call of the flag's compiled closure; outcomes are
:class:`Resolution` objects built once at compile time, so the hot path allocates nothing.
What went wrong is *returned* (``reason=ERROR`` with an :class:`ErrorCode`, the caller's
default as the value), never raised: an app asking for a flag must not fail because of it.

Imports only the standard library (the SDK and agent import this module in apps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluicegate.flags._explain import Explanation

__all__ = [
    "TARGETING_KEY",
    "TARGETING_KEY_ALIAS",
    "CompiledFlagSet",
    "ErrorCode",
    "FlagType",
    "Reason",
    "Resolution",
    "Unresolvable",
]

TARGETING_KEY = "targetingKey"
# Read when a context has no targetingKey, so `--ctx userId=u123` targets user u123.
TARGETING_KEY_ALIAS = "userId"


class Reason(StrEnum):
    """Why a value was served (OpenFeature's resolution reasons)."""

    STATIC = "STATIC"  # no rules, no prerequisites: the flag serves one value to everybody
    DEFAULT = "DEFAULT"  # no rule matched (or a prerequisite failed): fallthrough / default
    TARGETING_MATCH = "TARGETING_MATCH"  # a rule matched and served a variant
    SPLIT = "SPLIT"  # a percentage split chose the variant (in a rule or the fallthrough)
    DISABLED = "DISABLED"  # the kill switch is off: default_variant
    ERROR = "ERROR"  # see error_code; the value is the caller's default


class ErrorCode(StrEnum):
    """What went wrong (OpenFeature's error codes)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    TYPE_MISMATCH = "TYPE_MISMATCH"  # the caller expected another type than the flag's
    PARSE_ERROR = "PARSE_ERROR"  # clients holding no valid flag set (never emitted here)
    TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"  # a split buckets by an absent key
    INVALID_CONTEXT = "INVALID_CONTEXT"  # context not a mapping / a bucketing value unusable
    GENERAL = "GENERAL"  # a bug: an unexpected exception, reported instead of raised


class FlagType(StrEnum):
    BOOLEAN = "boolean"
    STRING = "string"
    NUMBER = "number"
    OBJECT = "object"


_NO_METADATA: Mapping[str, str | int | float | bool] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of one evaluation: the served value and how it was chosen.

    ``flag_metadata`` carries ``rule`` (index of the rule that decided) and ``version``
    (of the flag set, when compiled with one). Values of object flags are fresh copies.
    """

    value: Any
    variant: str | None
    reason: Reason
    error_code: ErrorCode | None = None
    error_message: str | None = None
    flag_metadata: Mapping[str, str | int | float | bool] = field(
        default_factory=lambda: _NO_METADATA, compare=False
    )


class Unresolvable(Exception):  # noqa: N818 - it is a signal, not an error to report
    """Raised inside a compiled flag when it cannot decide (e.g. a split with no targeting
    key); :meth:`CompiledFlagSet.evaluate` turns it into an ERROR resolution."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code = code
        super().__init__(message)


Resolver = Callable[[Mapping[str, Any]], Resolution]
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class CompiledFlagSet:
    """A flag-set version compiled for evaluation; immutable and safe to share between
    threads. Build it with :func:`sluicegate.flags.compile_flag_set`.

    Contexts are flat mappings of attribute names to JSON values; the targeting key is
    ``targetingKey`` (or ``userId`` when there is no ``targetingKey``).
    """

    __slots__ = (
        "_booleans",
        "_internal",
        "_numbers",
        "_objects",
        "_plans",
        "_resolvers",
        "_strings",
        "_types",
        "version",
    )

    def __init__(
        self,
        resolvers: Mapping[str, Resolver],
        internal: Mapping[str, Resolver],
        types: Mapping[str, FlagType],
        plans: Mapping[str, Any],
        version: int | str | None = None,
    ) -> None:
        self._resolvers = dict(resolvers)
        self._internal = dict(internal)
        self._types = dict(types)
        self._plans = dict(plans)
        self.version = version
        # Per type, for the typed getters: one lookup answers "exists and has this type".
        by_type: dict[FlagType, dict[str, Resolver]] = {t: {} for t in FlagType}
        for key, resolver in self._resolvers.items():
            by_type[self._types[key]][key] = resolver
        self._booleans = by_type[FlagType.BOOLEAN]
        self._strings = by_type[FlagType.STRING]
        self._numbers = by_type[FlagType.NUMBER]
        self._objects = by_type[FlagType.OBJECT]

    def __contains__(self, key: object) -> bool:
        return key in self._resolvers

    def __len__(self) -> int:
        return len(self._resolvers)

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolvers)

    def keys(self) -> list[str]:
        """The flag keys, in document order."""
        return list(self._resolvers)

    def flag_type(self, key: str) -> FlagType | None:
        return self._types.get(key)

    def evaluate(
        self,
        key: str,
        context: Mapping[str, Any] | None = None,
        default: Any = None,
        expected_type: FlagType | str | None = None,
    ) -> Resolution:
        """Evaluate flag ``key`` for ``context``; never raises.

        ``expected_type`` (``"boolean"``, ``"string"``, ``"number"``, ``"object"``) makes a
        flag of another type answer TYPE_MISMATCH; on any error the value is ``default``.
        """
        try:
            resolver = self._resolvers[key]
        except (KeyError, TypeError):  # TypeError: an unhashable key
            return _error(default, ErrorCode.FLAG_NOT_FOUND, f"no flag {key!r} in this set")
        if expected_type is not None and self._types[key] != expected_type:
            return _error(
                default,
                ErrorCode.TYPE_MISMATCH,
                f"flag {key!r} is a {self._types[key]} flag, not {expected_type}",
            )
        try:
            return resolver(_EMPTY if context is None else context)
        except Unresolvable as exc:
            return _error(default, exc.code, str(exc))
        except Exception as exc:
            return _unexpected(default, context, exc)

    def evaluate_variant(self, key: str, context: Mapping[str, Any] | None = None) -> str | None:
        """Just the variant name (for flag-driven routing); None when the flag is unknown
        or the evaluation fails."""
        resolver = self._internal.get(key)
        if resolver is None:
            return None
        try:
            return resolver(_EMPTY if context is None else context).variant
        except Exception:
            return None

    # The typed getters are ``evaluate(key, context, default, TYPE).value``, written out
    # for speed: the value served, or ``default`` on any error.

    def get_boolean(self, key: str, context: Mapping[str, Any] | None, default: bool) -> bool:
        resolver = self._booleans.get(key)
        if resolver is not None:
            try:
                value: bool = resolver(_EMPTY if context is None else context).value
                return value
            except Exception:
                pass
        return default

    def get_string(self, key: str, context: Mapping[str, Any] | None, default: str) -> str:
        resolver = self._strings.get(key)
        if resolver is not None:
            try:
                value: str = resolver(_EMPTY if context is None else context).value
                return value
            except Exception:
                pass
        return default

    def get_number(self, key: str, context: Mapping[str, Any] | None, default: float) -> float:
        resolver = self._numbers.get(key)
        if resolver is not None:
            try:
                value: float = resolver(_EMPTY if context is None else context).value
                return value
            except Exception:
                pass
        return default

    def get_object(
        self, key: str, context: Mapping[str, Any] | None, default: dict[str, Any]
    ) -> dict[str, Any]:
        resolver = self._objects.get(key)
        if resolver is not None:
            try:
                value: dict[str, Any] = resolver(_EMPTY if context is None else context).value
                return value
            except Exception:
                pass
        return default

    def explain(
        self,
        key: str,
        context: Mapping[str, Any] | None = None,
        default: Any = None,
        expected_type: FlagType | str | None = None,
    ) -> Explanation:
        """Evaluate like :meth:`evaluate` and say why: each prerequisite, each rule tried
        (with the condition that failed), the bucket of a split. Slow; for people."""
        from sluicegate.flags._explain import explain

        resolution = self.evaluate(key, context, default, expected_type)
        return explain(self, self._plans.get(key), key, context, resolution)


def _error(default: Any, code: ErrorCode, message: str) -> Resolution:
    return Resolution(default, None, Reason.ERROR, code, message)


def _unexpected(default: Any, context: object, exc: Exception) -> Resolution:
    if not isinstance(context, Mapping | None):
        return _error(
            default,
            ErrorCode.INVALID_CONTEXT,
            f"the context is a {type(context).__name__}, not a mapping",
        )
    if isinstance(exc, UnicodeEncodeError):
        return _error(
            default,
            ErrorCode.INVALID_CONTEXT,
            "a value to bucket by is not valid Unicode (it cannot be UTF-8 encoded)",
        )
    return _error(default, ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}"[:500])
