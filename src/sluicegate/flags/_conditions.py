"""Compile conditions and segments to tests ``(context) -> bool``.

Every operator is total: an attribute that is missing, null or of another kind than the
operator works on makes the condition false (also for ``neq`` and ``not_in``), never an
error. ``True`` never equals ``1``. Standard library only (the evaluator's side).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sluicegate.flags._values import is_number, parse_instant, parse_semver
from sluicegate.flags.bucketing import bucket_value
from sluicegate.flags.evaluator import TARGETING_KEY, TARGETING_KEY_ALIAS

__all__ = ["Node", "compile_condition", "compile_segment", "targeting_key"]

Context = Mapping[str, Any]
Test = Callable[[Context], bool]


@dataclass(frozen=True, slots=True)
class Node:
    """A compiled condition: its test, a label for people, its parts."""

    kind: str  # condition | all | any | not | segment | ids
    label: str
    test: Test
    children: tuple[Node, ...] = ()
    attribute: str | None = None


# --- reading the context ------------------------------------------------------------------


def targeting_key(ctx: Context) -> Any:
    value = ctx.get(TARGETING_KEY)
    return ctx.get(TARGETING_KEY_ALIAS) if value is None else value


def _getter(attribute: str) -> Callable[[Context], Any]:
    if attribute == TARGETING_KEY:
        return targeting_key
    return lambda ctx: ctx.get(attribute)


def _kind(value: Any) -> type | None:
    """bool, str or float (for every number) of a JSON scalar; None for anything else."""
    if isinstance(value, bool):
        return bool
    if isinstance(value, str):
        return str
    if is_number(value):
        return float
    return None


def _plain(value: Any) -> Any:
    """A str/int/float subclass value as its base type (so hashing and equality are the
    base type's; a bool stays a bool)."""
    kind = _kind(value)
    if kind is bool:
        return bool(value)
    if kind is str:
        return str.__str__(value)
    if kind is float:
        return int.__int__(value) if isinstance(value, int) else float.__float__(value)
    return value


def _members(values: list[Any]) -> Callable[[Any], bool]:
    """Membership in a list of scalars that never confuses kinds (``True`` is not ``1``)."""
    by_kind: dict[type, frozenset[Any]] = {}
    for kind in (bool, str, float):
        by_kind[kind] = frozenset(v for v in values if _kind(v) is kind)
    strings, numbers, booleans = by_kind[str], by_kind[float], by_kind[bool]

    def member(v: Any) -> bool:
        t = type(v)
        if t is str:
            return v in strings
        if t is int or t is float:
            return v in numbers
        if t is bool:
            return v in booleans
        kind = _kind(v)
        return kind is not None and _plain(v) in by_kind[kind]

    return member


def _value_test(op: str, value: Any) -> Callable[[Any], bool]:
    """The test of a present (non-null) attribute value for ``op``; a value of another kind
    than the operator works on never matches (also for neq and not_in)."""
    if op in ("eq", "in"):
        return _members(value if op == "in" else [value])
    if op in ("neq", "not_in"):
        values = value if op == "not_in" else [value]
        member = _members(values)
        kinds = {_kind(v) for v in values}
        return lambda v: _kind(v) in kinds and not member(v)
    if op == "contains":
        item = _members([value])
        text = value if isinstance(value, str) else None

        def contains(v: Any) -> bool:
            if isinstance(v, str):
                return text is not None and text in v
            if isinstance(v, list | tuple):
                return any(item(x) for x in v)
            return False

        return contains
    if op in ("starts_with", "ends_with"):
        affixes = (value,) if isinstance(value, str) else tuple(value)
        if op == "starts_with":
            return lambda v: isinstance(v, str) and v.startswith(affixes)
        return lambda v: isinstance(v, str) and v.endswith(affixes)
    if op == "matches":
        search = re.compile(value).search
        return lambda v: isinstance(v, str) and search(v) is not None
    if op in ("lt", "lte", "gt", "gte"):
        if not is_number(value):
            raise ValueError(f"{op} needs a number")
        n = value
        return {
            "lt": lambda v: is_number(v) and v < n,
            "lte": lambda v: is_number(v) and v <= n,
            "gt": lambda v: is_number(v) and v > n,
            "gte": lambda v: is_number(v) and v >= n,
        }[op]
    if op.startswith("semver_"):
        key = parse_semver(value)
        if key is None:
            raise ValueError(f"{value!r} is not a semantic version")
        compare: dict[str, Callable[[Any, Any], bool]] = {
            "semver_eq": lambda a, b: a == b,
            "semver_lt": lambda a, b: a < b,
            "semver_lte": lambda a, b: a <= b,
            "semver_gt": lambda a, b: a > b,
            "semver_gte": lambda a, b: a >= b,
        }
        cmp = compare[op]

        def semver(v: Any) -> bool:
            parsed = parse_semver(v)
            return parsed is not None and cmp(parsed, key)

        return semver
    if op in ("before", "after"):
        instant = parse_instant(value)
        if instant is None or not isinstance(value, str):
            raise ValueError(f"{value!r} is not an ISO 8601 date")
        if op == "before":
            return lambda v: (t := parse_instant(v)) is not None and t < instant
        return lambda v: (t := parse_instant(v)) is not None and t > instant
    raise ValueError(f"unknown operator {op!r}")


def _label(attribute: str, op: str, value: Any, given: bool) -> str:
    if not given:
        return f"{attribute} {op}"
    shown = repr(value)
    return f"{attribute} {op} {shown if len(shown) <= 80 else shown[:77] + '...'}"


# --- conditions and segments ----------------------------------------------------------------


def _all(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda ctx: a(ctx) and b(ctx)
    frozen = tuple(tests)

    def every(ctx: Context) -> bool:
        for test in frozen:  # noqa: SIM110 - a loop is faster than all() over a generator
            if not test(ctx):
                return False
        return True

    return every


def _any(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    frozen = tuple(tests)

    def some(ctx: Context) -> bool:
        for test in frozen:  # noqa: SIM110 - a loop is faster than any() over a generator
            if test(ctx):
                return True
        return False

    return some


def compile_condition(spec: Mapping[str, Any], segments: Mapping[str, Node]) -> Node:
    if "all" in spec or "any" in spec:
        kind = "all" if "all" in spec else "any"
        children = tuple(compile_condition(s, segments) for s in spec[kind])
        tests = [c.test for c in children]
        return Node(kind, kind, _all(tests) if kind == "all" else _any(tests), children)
    if "not" in spec:
        inner = compile_condition(spec["not"], segments)
        inner_test = inner.test
        return Node("not", "not", lambda ctx: not inner_test(ctx), (inner,))
    if "segment" in spec:
        return segments[spec["segment"]]
    attribute, op = spec["attribute"], spec["op"]
    label = _label(attribute, op, spec.get("value"), "value" in spec)
    get = _getter(attribute)
    if op == "exists":
        return Node("condition", label, lambda ctx: get(ctx) is not None, (), attribute)
    test = _value_test(op, spec["value"])
    if attribute == TARGETING_KEY:

        def leaf(ctx: Context) -> bool:
            v = targeting_key(ctx)
            return v is not None and test(v)
    else:

        def leaf(ctx: Context) -> bool:
            v = ctx.get(attribute)
            return v is not None and test(v)

    return Node("condition", label, leaf, (), attribute)


def _id_test(attribute: str, ids: frozenset[str]) -> Test:
    if attribute == TARGETING_KEY:

        def member(ctx: Context) -> bool:
            v = ctx.get(TARGETING_KEY)
            if v is None:
                v = ctx.get(TARGETING_KEY_ALIAS)
            if type(v) is str:
                return v in ids
            v = bucket_value(v)
            return v is not None and v in ids
    else:

        def member(ctx: Context) -> bool:
            v = ctx.get(attribute)
            if type(v) is str:
                return v in ids
            v = bucket_value(v)
            return v is not None and v in ids

    return member


def compile_segment(key: str, spec: Mapping[str, Any], segments: Mapping[str, Node]) -> Node:
    children: list[Node] = []
    if "ids" in spec:
        attribute = spec.get("attribute", TARGETING_KEY)
        ids = frozenset(spec["ids"])
        if not all(type(i) is str for i in ids):
            raise ValueError("segment ids are strings")
        children.append(
            Node(
                "ids",
                f"{attribute} among the {len(ids):,} listed ids",
                _id_test(attribute, ids),
                (),
                attribute,
            )
        )
    if "when" in spec:
        children.append(compile_condition(spec["when"], segments))
    if not children:
        raise ValueError("a segment needs ids or when")
    return Node("segment", f"segment {key}", _any([c.test for c in children]), tuple(children))
