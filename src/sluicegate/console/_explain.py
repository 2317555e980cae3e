"""Why a guard or alarm decided what it did, in sentences a person reads (pure).

The guard's live verdict is a :class:`~sluicegate.monitor.canary.Judgement`; once it fired,
only its text survives, in the rollback event (``guard fired: default canary guard, ...``).
Both are turned into the same kind of sentences: what was compared, the counts and rates,
the test, its p-value against the bound, and the sample sizes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sluicegate.monitor.canary import Judgement, Outcome

__all__ = ["explain_alarm", "explain_guard_text", "explain_judgement", "verdict_word"]

_OUTCOME = {
    Outcome.PASS: "PASS: no evidence that green is worse than blue",
    Outcome.FAIL: "FAIL: green is worse than blue",
    Outcome.INCONCLUSIVE: "no verdict yet: not enough data to judge",
}

_COUNTS = re.compile(
    r"green(?: (?P<label>[\w-]+))? (?:[\d.]+ % \()?(?P<ge>\d+)/(?P<gt>\d+)\)? vs "
    r"blue (?:[\d.]+ % \()?(?P<be>\d+)/(?P<bt>\d+)\)?"
)
_LATENCY = re.compile(
    r"green p50 (?P<g>[\d.]+ m?s) \(n=(?P<gn>\d+)\) vs blue p50 (?P<b>[\d.]+ m?s) \(n=(?P<bn>\d+)\)"
)
_P = re.compile(r"p=(?P<p>[\d.e+-]+) (?P<sign>[<≥]) (?P<alpha>[\d.e+-]+)")
_TOLERANCE = re.compile(r"\+(?P<tol>[\d.]+) (?P<unit>pt|%) tolerated")
_LR = re.compile(r"likelihood ratio (?P<lr>[\d.e+-]+)")
_SEQ = re.compile(r"sequential test \+(?P<effect>[\d.]+) pt vs \+(?P<tol>[\d.]+) pt")


def verdict_word(j: Judgement | None) -> str:
    """One word for a table cell: pass, FAIL, waiting, or - (no guard judged yet)."""
    if j is None:
        return "-"
    return {Outcome.PASS: "pass", Outcome.FAIL: "FAIL", Outcome.INCONCLUSIVE: "waiting"}[j.outcome]


def _rate(errors: int, total: int) -> str:
    return f"{errors / total * 100:.1f} %" if total else "no rate"


def explain_guard_text(text: str) -> list[str]:
    """Sentences for a guard's recorded verdict text (the detail of a judgement, or the
    ``guard fired: ...`` reason of a rollback). Unknown shapes are given back as they are."""
    out: list[str] = []
    for part in [p for p in re.split(r"; (?=(?:errors|latency) )", text) if p.strip()]:
        out.extend(_explain_part(part))
    return out or [text]


def _explain_part(text: str) -> list[str]:
    out = []
    if m := _COUNTS.search(text):
        ge, gt, be, bt = (int(m[k]) for k in ("ge", "gt", "be", "bt"))
        label = m["label"] or "errors"
        out.append(
            f"Errors ({label}): green answered {ge} of {gt} requests with an error "
            f"({_rate(ge, gt)}); blue {be} of {bt} ({_rate(be, bt)}). "
            f"Sample size: {gt} green and {bt} blue requests."
        )
    if m := _LATENCY.search(text):
        out.append(
            f"Latency: green's median (p50) {m['g']} over {m['gn']} requests; "
            f"blue's {m['b']} over {m['bn']}."
        )
    test = []
    if m := _SEQ.search(text):
        test.append(
            f"Sequential test: is green's error rate blue's + {m['effect']} points rather "
            f"than blue's + {m['tol']} points?"
        )
        if lr := _LR.search(text):
            test.append(f"The data favour the first by a likelihood ratio of {lr['lr']}.")
    elif m := _TOLERANCE.search(text):
        unit = "percentage points" if m["unit"] == "pt" else "%"
        test.append(f"Tolerated: green up to {m['tol']} {unit} worse than blue.")
    if m := _P.search(text):
        below = m["sign"] == "<"
        test.append(
            f"p-value {m['p']} is {'below' if below else 'not below'} the bound {m['alpha']}: "
            + (
                "the difference is too large to be chance."
                if below
                else "the difference can be chance."
            )
        )
    if test:
        out.append(" ".join(test))
    if "green is worse" in text or "green is slower" in text:
        out.append("Verdict: green is worse than blue.")
    elif "not enough data" in text or "waits for" in text:
        wait = text.rsplit(": ", 1)[-1]
        out.append(f"No verdict yet: {wait}.")
    return out or [text]


def explain_judgement(j: Judgement) -> list[str]:
    """Sentences for a live verdict: its outcome first, then each part's numbers."""
    lines = [f"Guard verdict {_OUTCOME[j.outcome]}."]
    parts = j.parts or (j,)
    for part in parts:
        name = {"errors": "Errors", "latency": "Latency"}.get(part.metric, "Check")
        lines.append(f"{name} — {part.outcome.value}.")
        lines.extend(_explain_part(part.detail))
    return lines


def explain_alarm(
    alarm_id: str,
    state: str,
    reason: str,
    spec: Mapping[str, Any] | None,
    datapoints: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Sentences for an alarm's state: the rule (M of N datapoints against the threshold)
    and the datapoints it judged, breaching ones marked."""
    lines = [f"Alarm {alarm_id} is {state}: {reason}"]
    if spec:
        m, n = spec.get("datapoints_to_alarm"), spec.get("evaluation_periods")
        stat = spec.get("statistic") or (spec.get("expression") and "expression") or "value"
        lines.append(
            f"Rule: {stat} {spec.get('comparison', '?')} {spec.get('threshold', '?')} "
            f"in {m} of the last {n} periods of {spec.get('period', '?')} s"
            f" (missing data: {spec.get('treat_missing_data', 'missing')})."
        )
    if datapoints:
        shown = []
        for p in datapoints:
            value = p.get("value")
            text = "missing" if value is None else f"{value:.4g}"
            if p.get("breaching"):
                text += " (breaching)"
            shown.append(text)
        breaching = sum(1 for p in datapoints if p.get("breaching"))
        lines.append(
            f"Datapoints judged, oldest first: {', '.join(shown)} — {breaching} breaching."
        )
    return lines
