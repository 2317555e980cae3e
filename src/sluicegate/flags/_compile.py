"""Compile a validated flag-set document (plain data) to closures, once per version.

Each flag becomes one ``resolve(context) -> Resolution`` closure; every Resolution it can
return is built here, so evaluating allocates nothing. A rule flag costs a dict lookup, a
frozenset membership test, one MurmurHash3 call and comparisons. Alongside, each flag keeps
a *plan* (its conditions with labels) from which :mod:`._explain` tells why.

Takes the normal form (:meth:`sluicegate.flags.FlagSet.document`); a document that is not
one raises SpecError. Imports no pydantic: agents and the SDK compile what they receive.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mmh3 import hash as _mmh3_hash

from sluicegate.errors import Problem, SpecError
from sluicegate.flags._checks import find_cycles, segment_refs, weight_units
from sluicegate.flags._conditions import Node, Test, compile_condition, compile_segment
from sluicegate.flags.bucketing import BUCKETS, SEPARATOR, bucket_value
from sluicegate.flags.evaluator import (
    TARGETING_KEY,
    TARGETING_KEY_ALIAS,
    CompiledFlagSet,
    ErrorCode,
    FlagType,
    Reason,
    Resolution,
    Resolver,
    Unresolvable,
)

__all__ = ["FlagPlan", "OutcomePlan", "RulePlan", "SplitPlan", "compile_flag_set"]

Context = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SplitPlan:
    attribute: str
    namespace: str
    salt: str
    thresholds: tuple[int, ...]  # cumulative bucket counts, the last is BUCKETS
    variants: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutcomePlan:
    variant: str | None
    split: SplitPlan | None


@dataclass(frozen=True, slots=True)
class RulePlan:
    index: int
    name: str | None
    when: Node
    outcome: OutcomePlan


@dataclass(frozen=True, slots=True)
class FlagPlan:
    key: str
    type: FlagType
    enabled: bool
    default_variant: str
    variants: Mapping[str, Any]
    prerequisites: tuple[tuple[str, frozenset[str] | None], ...]
    rules: tuple[RulePlan, ...]
    fallthrough: OutcomePlan | None


def _in_order(graph: Mapping[str, list[str]], what: str) -> list[str]:
    """Keys with every dependency before its dependents; refuses cycles."""
    cycles = find_cycles(graph)
    if cycles:
        raise ValueError(f"{what} cycle: {' -> '.join([*cycles[0], cycles[0][0]])}")
    done: dict[str, None] = {}

    def visit(key: str) -> None:
        if key not in done:
            for dep in graph[key]:
                visit(dep)
            done[key] = None

    for key in graph:
        visit(key)
    return list(done)


# --- flags ------------------------------------------------------------------------------------


def one_number_kind(variants: Mapping[str, Any]) -> dict[str, Any]:
    """A number flag serves one JSON number kind to every user: floats when any variant is
    written as a float (``4``, ``4.0``, ``2.5`` → ``4.0``, ``4.0``, ``2.5``), else integers.
    A typed client (OpenFeature's ``get_float``/``get_integer`` over OFREP) then gets the same
    answer or the same type error for every user, never some of each."""
    if any(type(v) is float for v in variants.values()):
        return {k: float(v) if type(v) is int else v for k, v in variants.items()}
    return dict(variants)


class _FlagCompiler:
    """Builds the resolver of one flag; every Resolution is made here, once."""

    def __init__(self, key: str, spec: Mapping[str, Any], version: int | str | None) -> None:
        self.key = key
        self.type = FlagType(spec["type"])
        self.variants: Mapping[str, Any] = spec["variants"]
        if self.type is FlagType.NUMBER:
            self.variants = one_number_kind(self.variants)
        self.default_variant: str = spec["default_variant"]
        if self.default_variant not in self.variants:
            raise ValueError(f"unknown default variant {self.default_variant!r}")
        self.salt: str = spec.get("salt", "")
        if SEPARATOR in self.salt:
            raise ValueError(f"a salt cannot contain {SEPARATOR!r}")
        self.version = version

    def resolution(self, variant: str, reason: Reason, rule: int | None = None) -> Resolution:
        if variant not in self.variants:
            raise ValueError(f"unknown variant {variant!r}")
        meta: dict[str, str | int | float | bool] = {}
        if rule is not None:
            meta["rule"] = rule
        if self.version is not None:
            meta["version"] = self.version
        return Resolution(
            self.variants[variant], variant, reason, flag_metadata=MappingProxyType(meta)
        )

    def outcome(
        self, spec: Mapping[str, Any], reason: Reason, rule: int | None
    ) -> tuple[OutcomePlan, Resolution | None, Resolver | None]:
        if "variant" in spec:
            variant = spec["variant"]
            return OutcomePlan(variant, None), self.resolution(variant, reason, rule), None
        attribute = spec.get("bucket_by", TARGETING_KEY)
        names, thresholds, total = [], [], 0
        for entry in spec["split"]:
            units = weight_units(entry["weight"])
            if units is None or units < 0:
                raise ValueError(f"bad split weight {entry['weight']!r}")
            total += units
            names.append(entry["variant"])
            thresholds.append(total)
        if total != BUCKETS:
            raise ValueError("split weights do not sum to 100")
        plan = SplitPlan(attribute, self.key, self.salt, tuple(thresholds), tuple(names))
        results = tuple(self.resolution(n, Reason.SPLIT, rule) for n in names)
        return OutcomePlan(None, plan), None, _split(plan, results)


def _split(plan: SplitPlan, results: tuple[Resolution, ...]) -> Resolver:
    """The split closure; must compute exactly :func:`sluicegate.flags.bucketing.bucket`."""
    prefix = f"{plan.namespace}{SEPARATOR}{plan.salt}{SEPARATOR}"
    attribute = plan.attribute
    by_key = attribute == TARGETING_KEY
    code = ErrorCode.TARGETING_KEY_MISSING if by_key else ErrorCode.INVALID_CONTEXT
    missing = (
        f"the split buckets by the targeting key ({TARGETING_KEY} or "
        f"{TARGETING_KEY_ALIAS}); the context has no string or integer one"
        if by_key
        else f"the split buckets by {attribute!r}; the context has no string"
        f" or integer {attribute!r}"
    )
    h, n = _mmh3_hash, BUCKETS
    thresholds = plan.thresholds
    if len(results) == 2:
        first, second = results
        cut = thresholds[0]

        def split2(ctx: Context) -> Resolution:
            v = ctx.get(attribute)
            if by_key and v is None:
                v = ctx.get(TARGETING_KEY_ALIAS)
            if type(v) is not str:
                v = bucket_value(v)
                if v is None:
                    raise Unresolvable(code, missing)
            return first if h((prefix + v).encode(), 0, False) % n < cut else second

        return split2

    def split(ctx: Context) -> Resolution:
        v = ctx.get(attribute)
        if by_key and v is None:
            v = ctx.get(TARGETING_KEY_ALIAS)
        if type(v) is not str:
            v = bucket_value(v)
            if v is None:
                raise Unresolvable(code, missing)
        return results[bisect_right(thresholds, h((prefix + v).encode(), 0, False) % n)]

    return split


def _prerequisite(target: Resolver, variants: frozenset[str] | None) -> Test:
    def met(ctx: Context) -> bool:
        try:
            r = target(ctx)
        except Exception:
            return False
        if r.reason is Reason.DISABLED:
            return False
        return r.value is True if variants is None else r.variant in variants

    return met


def _resolver(
    prerequisites: tuple[Test, ...],
    failed: Resolution,
    rules: tuple[tuple[Test, Resolution | None, Resolver | None], ...],
    last: Resolution | None,
    last_fn: Resolver | None,
) -> Resolver:
    if not prerequisites and not rules:
        if last_fn is not None:
            return last_fn
        constant = last

        def static(ctx: Context) -> Resolution:
            return constant  # type: ignore[return-value]

        return static
    if not prerequisites and len(rules) == 1 and rules[0][2] is None and last_fn is not None:
        # The common "segment gets it, everyone else a split" shape, one call shorter.
        ((test, result, _),) = rules
        split = last_fn

        def rule_or_split(ctx: Context) -> Resolution:
            return result if test(ctx) else split(ctx)  # type: ignore[return-value]

        return rule_or_split
    if not prerequisites and len(rules) == 1:
        ((test, result, fn),) = rules

        def one_rule(ctx: Context) -> Resolution:
            if test(ctx):
                return result if fn is None else fn(ctx)  # type: ignore[return-value]
            return last if last_fn is None else last_fn(ctx)  # type: ignore[return-value]

        return one_rule

    def resolve(ctx: Context) -> Resolution:
        for met in prerequisites:
            if not met(ctx):
                return failed
        for test, result, fn in rules:
            if test(ctx):
                return result if fn is None else fn(ctx)  # type: ignore[return-value]
        return last if last_fn is None else last_fn(ctx)  # type: ignore[return-value]

    return resolve


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _fresh(inner: Resolver) -> Resolver:
    """Object flags hand out copies, so a caller mutating one cannot change the flag."""

    def fresh(ctx: Context) -> Resolution:
        r = inner(ctx)
        return Resolution(
            _copy(r.value), r.variant, r.reason, r.error_code, r.error_message, r.flag_metadata
        )

    return fresh


def _compile_flag(
    key: str,
    spec: Mapping[str, Any],
    internal: Mapping[str, Resolver],
    segments: Mapping[str, Node],
    version: int | str | None,
) -> tuple[Resolver, FlagPlan]:
    c = _FlagCompiler(key, spec, version)
    prerequisites: list[tuple[str, frozenset[str] | None]] = []
    checks: list[Test] = []
    for p in spec.get("prerequisites", []):
        wanted = p.get("variants", [p["variant"]] if "variant" in p else None)
        allowed = None if wanted is None else frozenset(wanted)
        prerequisites.append((p["flag"], allowed))
        checks.append(_prerequisite(internal[p["flag"]], allowed))
    rule_plans: list[RulePlan] = []
    rules: list[tuple[Test, Resolution | None, Resolver | None]] = []
    for i, rule in enumerate(spec.get("rules", [])):
        when = compile_condition(rule["when"], segments)
        outcome, result, fn = c.outcome(rule, Reason.TARGETING_MATCH, i)
        rule_plans.append(RulePlan(i, rule.get("name"), when, outcome))
        rules.append((when.test, result, fn))
    static = not checks and not rules
    fallthrough_spec = spec.get("fallthrough") or {"variant": c.default_variant}
    fallthrough_plan, last, last_fn = c.outcome(
        fallthrough_spec, Reason.STATIC if static else Reason.DEFAULT, None
    )
    if spec.get("enabled", True):
        failed = c.resolution(c.default_variant, Reason.DEFAULT)
        resolver = _resolver(tuple(checks), failed, tuple(rules), last, last_fn)
    else:
        disabled = c.resolution(c.default_variant, Reason.DISABLED)

        def resolver(ctx: Context) -> Resolution:
            return disabled

    plan = FlagPlan(
        key,
        c.type,
        bool(spec.get("enabled", True)),
        c.default_variant,
        c.variants,
        tuple(prerequisites),
        tuple(rule_plans),
        fallthrough_plan if spec.get("fallthrough") else None,
    )
    return resolver, plan


def compile_flag_set(
    document: Mapping[str, Any], version: int | str | None = None
) -> CompiledFlagSet:
    """Compile a validated flag-set document (its normal form, as plain data).

    ``version`` is reported in every resolution's ``flag_metadata``. A document that is not
    a validated flag set raises SpecError naming the flag or segment that failed.
    """
    where = ""
    try:
        segment_specs: Mapping[str, Any] = document.get("segments", {})
        flag_specs: Mapping[str, Any] = document.get("flags", {})
        seg_graph = {
            k: [ref for _, ref in segment_refs(s.get("when"), "")] for k, s in segment_specs.items()
        }
        segments: dict[str, Node] = {}
        for key in _in_order(seg_graph, "segment"):
            where = f"segments.{key}"
            segments[key] = compile_segment(key, segment_specs[key], segments)
        flag_graph = {
            k: [p["flag"] for p in f.get("prerequisites", [])] for k, f in flag_specs.items()
        }
        internal: dict[str, Resolver] = {}
        plans: dict[str, FlagPlan] = {}
        where = ""
        for key in _in_order(flag_graph, "prerequisite"):
            where = f"flags.{key}"
            internal[key], plans[key] = _compile_flag(
                key, flag_specs[key], internal, segments, version
            )
    except (KeyError, TypeError, ValueError, AttributeError, re.error) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise SpecError([Problem(where, f"not a validated flag set: {detail}")]) from exc
    order = list(flag_specs)
    public = {
        k: _fresh(internal[k]) if plans[k].type is FlagType.OBJECT else internal[k] for k in order
    }
    return CompiledFlagSet(
        public,
        {k: internal[k] for k in order},
        {k: plans[k].type for k in order},
        {k: plans[k] for k in order},
        version,
    )
