"""Explain an evaluation: which prerequisite failed, which rule matched and why the earlier
ones did not, the bucket a split computed. For people (``sluice flags eval --explain``).

The resolution shown is the one :meth:`CompiledFlagSet.evaluate` returned; the steps are
re-traced from the flag's plan with the same compiled tests, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluicegate.flags._compile import FlagPlan, OutcomePlan
from sluicegate.flags._conditions import Node
from sluicegate.flags.bucketing import BUCKETS, bucket, bucket_value
from sluicegate.flags.evaluator import (
    TARGETING_KEY,
    TARGETING_KEY_ALIAS,
    CompiledFlagSet,
    Reason,
    Resolution,
)

__all__ = ["Explanation", "Step", "explain"]


@dataclass(frozen=True)
class Step:
    """One stage of an evaluation: what was looked at, the verdict, and the details
    (condition lines, indented by nesting)."""

    subject: str
    verdict: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Explanation:
    key: str
    resolution: Resolution
    steps: tuple[Step, ...]

    def render(self) -> str:
        r = self.resolution
        head = f"{self.key}: {r.reason}"
        if r.variant is not None:
            head += f" -> variant {r.variant!r}"
        head += f", value {r.value!r}"
        if r.error_code is not None:
            head += f" ({r.error_code}: {r.error_message})"
        lines = [head]
        for step in self.steps:
            lines.append(f"  {step.subject}: {step.verdict}")
            lines.extend(f"    {d}" for d in step.details)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        r = self.resolution
        return {
            "flag": self.key,
            "value": r.value,
            "variant": r.variant,
            "reason": str(r.reason),
            "error_code": None if r.error_code is None else str(r.error_code),
            "error_message": r.error_message,
            "flag_metadata": dict(r.flag_metadata),
            "steps": [
                {"subject": s.subject, "verdict": s.verdict, "details": list(s.details)}
                for s in self.steps
            ],
        }


def _shown(ctx: Mapping[str, Any], attribute: str) -> str:
    value = ctx.get(attribute)
    if value is None and attribute == TARGETING_KEY:
        alias = ctx.get(TARGETING_KEY_ALIAS)
        if alias is not None:
            return f"{TARGETING_KEY_ALIAS} = {alias!r}"
    if value is None:
        return f"{attribute} is missing"
    text = repr(value)
    return f"{attribute} = {text if len(text) <= 60 else text[:57] + '...'}"


def _trace(node: Node, ctx: Mapping[str, Any], depth: int, out: list[str]) -> bool:
    result = node.test(ctx)
    verdict = "yes" if result else "no"
    pad = "  " * depth
    if node.kind in ("condition", "ids") and node.attribute is not None:
        out.append(f"{pad}{node.label}: {verdict} ({_shown(ctx, node.attribute)})")
    else:
        out.append(f"{pad}{node.label}: {verdict}")
    for child in node.children:
        _trace(child, ctx, depth + 1, out)
    return result


def _outcome(plan: OutcomePlan, ctx: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    if plan.split is None:
        return f"serve variant {plan.variant!r}", ()
    split = plan.split
    raw = ctx.get(split.attribute)
    if raw is None and split.attribute == TARGETING_KEY:
        raw = ctx.get(TARGETING_KEY_ALIAS)
    value = bucket_value(raw)
    shares = ", ".join(
        f"{v} {(hi - lo) / 1000:g}%"
        for v, lo, hi in zip(
            split.variants, (0, *split.thresholds[:-1]), split.thresholds, strict=True
        )
    )
    if value is None:
        return f"split ({shares})", (f"cannot bucket: {_shown(ctx, split.attribute)}",)
    try:
        b = bucket(split.namespace, split.salt, value)
    except UnicodeEncodeError:
        return f"split ({shares})", (f"cannot bucket {value!r}: not valid Unicode",)
    lo = 0
    for variant, hi in zip(split.variants, split.thresholds, strict=True):
        if b < hi:
            return f"split ({shares})", (
                f"bucket of {split.attribute} {value!r} = {b:,} of {BUCKETS:,}"
                f" -> {variant!r} (buckets {lo:,}..{hi - 1:,})",
            )
        lo = hi
    return f"split ({shares})", ()  # unreachable: the last threshold is BUCKETS


def explain(
    flags: CompiledFlagSet,
    plan: FlagPlan | None,
    key: str,
    context: Mapping[str, Any] | None,
    resolution: Resolution,
) -> Explanation:
    """The steps behind ``resolution`` (the result of evaluating ``key`` for ``context``)."""
    if plan is None or not isinstance(context, Mapping | None):
        return Explanation(key, resolution, ())
    ctx: Mapping[str, Any] = context or {}
    steps: list[Step] = []
    if not plan.enabled:
        steps.append(
            Step(
                "enabled",
                "no: the kill switch serves the default variant",
                (f"default_variant {plan.default_variant!r}",),
            )
        )
        return Explanation(key, resolution, tuple(steps))
    for flag, variants in plan.prerequisites:
        r = flags.evaluate(flag, ctx)
        wanted = (
            "value true"
            if variants is None
            else "variant " + " or ".join(repr(v) for v in sorted(variants))
        )
        met = r.reason not in (Reason.DISABLED, Reason.ERROR) and (
            r.value is True if variants is None else r.variant in variants
        )
        got = f"{r.reason}, variant {r.variant!r}" + (f", {r.error_code}" if r.error_code else "")
        steps.append(
            Step(
                f"prerequisite {flag}",
                f"{'met' if met else 'not met'}",
                (f"needs {wanted}; got {got}",),
            )
        )
        if not met:
            steps.append(Step("result", f"default variant {plan.default_variant!r}"))
            return Explanation(key, resolution, tuple(steps))
    for rule in plan.rules:
        subject = f"rules[{rule.index}]" + (f" {rule.name}" if rule.name else "")
        details: list[str] = []
        try:
            matched = _trace(rule.when, ctx, 0, details)
        except Exception as exc:
            steps.append(Step(subject, f"failed: {type(exc).__name__}: {exc}", tuple(details)))
            return Explanation(key, resolution, tuple(steps))
        if matched:
            what, extra = _outcome(rule.outcome, ctx)
            steps.append(Step(subject, f"matched: {what}", (*details, *extra)))
            return Explanation(key, resolution, tuple(steps))
        steps.append(Step(subject, "no match", tuple(details)))
    if plan.fallthrough is None:
        verdict = f"default variant {plan.default_variant!r}"
        steps.append(Step("fallthrough", verdict))
    else:
        what, extra = _outcome(plan.fallthrough, ctx)
        steps.append(Step("fallthrough", what, extra))
    return Explanation(key, resolution, tuple(steps))
