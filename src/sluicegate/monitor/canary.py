"""Canary judgement: green (the new revision) against blue (the current one) over the same
seconds, as Kayenta does, instead of against a fixed threshold (pure).

Three outcomes, as in Argo Rollouts' analysis:

* ``FAIL`` — green is worse than blue by more than the tolerated increase, with the given
  confidence. The guard should roll back.
* ``INCONCLUSIVE`` — not enough data yet to pass. The step stays paused; never promote on it.
* ``PASS`` — enough data and no evidence (at that confidence) that green is worse than blue by
  more than the tolerance. Like Kayenta's "Pass", this is "not shown worse", not "proven
  equal": a small regression within what ``min_requests`` / ``min_samples`` can resolve may
  pass, and is caught later as data accumulates.

Errors: a one-sided test of ``p_green - p_blue > tolerated_increase`` (absolute proportion) —
the skewness-corrected asymptotic score test (Laud 2017), a Farrington-Manning score test that
stays close to its level down to a handful of requests (by exact enumeration in the tests: at
most 1.7 % false FAILs at a nominal 1 %, where the plain score test reaches 10 %), or Fisher's
exact test when there is no margin and the counts are small. Because of that, a FAIL does not
wait for ``min_requests``: a release that fails its first 10 requests is judged at once; only a PASS
needs ``min_requests`` per group. A FAIL does need ``min_errors`` green errors, so one or two
unlucky requests never roll back a release on their own.

Latency: Mann-Whitney U (green "greater" than blue), on samples rebuilt from the router's
latency buckets (bucket midpoints, at most ``MAX_SAMPLES`` per group by proportional thinning),
with blue's values scaled by ``1 + tolerated_increase`` so green may be that much slower. The
rank test's p-value is an approximation, so below ``min_samples`` on either side there is no
verdict at all. Bucket resolution is 1/8 octave (midpoints ≤ 6.25 % off), so a tolerance below
about 12 % may flag a narrow distribution that only crossed a bucket edge.

Errors, sequentially (:func:`judge_errors_sequential`): Wald's sequential probability ratio
test of "green = blue + ``effect``" against "green = blue + tolerated increase", one-sided and
open-ended (it FAILs or keeps waiting, never passes). Run on all of green's data since it got
traffic, the chance that it ever FAILs a green no worse than the tolerance is at most
``alpha`` however often it is checked (Ville's inequality), so it needs no confirmation
window: a release that fails a large share of its first requests is caught after two or
three of them.

Each call of the fixed-sample tests is a single test at ``confidence``; a guard that
re-judges every second over a sliding window tests many times. The tolerated increase is
what keeps that from crying wolf: a healthy green sits well inside it, where the chance of a
FAIL is far below ``1 - confidence``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from sluicegate.monitor._stats import (
    MAX_SAMPLES,
    diff_test,
    histogram_items,
    histogram_median_us,
    mann_whitney_greater,
    reconstruct,
)

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_ERROR_TOLERANCE",
    "DEFAULT_LATENCY_TOLERANCE",
    "DEFAULT_MIN_ERRORS",
    "DEFAULT_MIN_REQUESTS",
    "DEFAULT_MIN_SAMPLES",
    "DEFAULT_SEQUENTIAL_ALPHA",
    "DEFAULT_SEQUENTIAL_EFFECT",
    "MAX_SAMPLES",
    "GroupCounts",
    "Judgement",
    "Outcome",
    "combine_judgements",
    "judge",
    "judge_errors",
    "judge_errors_sequential",
    "judge_latency",
]

DEFAULT_CONFIDENCE = 0.99
DEFAULT_ERROR_TOLERANCE = 0.01
DEFAULT_LATENCY_TOLERANCE = 0.10
DEFAULT_MIN_REQUESTS = 100
DEFAULT_MIN_ERRORS = 3
DEFAULT_MIN_SAMPLES = 50
DEFAULT_SEQUENTIAL_ALPHA = 0.005
DEFAULT_SEQUENTIAL_EFFECT = 0.20
#: Blue requests a sequential test needs before blue's error rate is taken as known.
SEQUENTIAL_MIN_BLUE = 100


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict of one comparison.

    ``green_value`` / ``blue_value``: error proportion (0..1) for errors, median latency in
    seconds for latency, None where a group has no data (and for a combined judgement).
    ``p_value``: None when no test was run; for a combined judgement, the smallest of its
    parts'. ``metric``: "errors", "latency" or "canary" (combined). ``parts``: the judgements a
    combined one was made of.
    """

    outcome: Outcome
    p_value: float | None
    green_value: float | None
    blue_value: float | None
    detail: str
    metric: str = ""
    parts: tuple[Judgement, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class GroupCounts:
    """One target group's counts over the judged seconds."""

    errors: int
    total: int
    latency: Mapping[int, int]


def _alpha(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    return 1.0 - confidence


def _fmt_p(p: float) -> str:
    return f"{p:.2g}"


def _pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def _verdict_text(p: float, alpha: float) -> str:
    sign = "<" if p < alpha else "≥"
    return f"p={_fmt_p(p)} {sign} {_fmt_p(alpha)}"


def _check_counts(green_errors: int, green_total: int, blue_errors: int, blue_total: int) -> None:
    for name, errors, total in (
        ("green", green_errors, green_total),
        ("blue", blue_errors, blue_total),
    ):
        if total < 0 or errors < 0:
            raise ValueError(f"{name}: counts must not be negative ({errors} of {total})")
        if errors > total:
            raise ValueError(f"{name}: {errors} errors is more than its {total} requests")


def judge_errors(
    green_errors: int,
    green_total: int,
    blue_errors: int,
    blue_total: int,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    tolerated_increase: float = DEFAULT_ERROR_TOLERANCE,
    min_requests: int = DEFAULT_MIN_REQUESTS,
    min_errors: int = DEFAULT_MIN_ERRORS,
    label: str = "errors",
) -> Judgement:
    """Is green's error proportion above blue's + ``tolerated_increase`` (absolute, 0.01 = one
    percentage point) with ``confidence``? PASS needs ``min_requests`` in each group, FAIL
    needs ``min_errors`` green errors. ``label`` names the errors in the detail ("5xx")."""
    alpha = _alpha(confidence)
    if not 0.0 <= tolerated_increase < 1.0:
        raise ValueError(f"tolerated_increase must be in [0, 1), got {tolerated_increase}")
    if min_requests < 1:
        raise ValueError(f"min_requests must be at least 1, got {min_requests}")
    if min_errors < 1:
        raise ValueError(f"min_errors must be at least 1, got {min_errors}")
    _check_counts(green_errors, green_total, blue_errors, blue_total)

    green_value = green_errors / green_total if green_total else None
    blue_value = blue_errors / blue_total if blue_total else None

    def side(name: str, errors: int, total: int, value: float | None) -> str:
        if value is None:
            return f"{name} no requests"
        return f"{name} {_pct(value)} ({errors}/{total})"

    observed = (
        f"{side('green ' + label, green_errors, green_total, green_value)} vs "
        f"{side('blue', blue_errors, blue_total, blue_value)}"
    )

    if green_value is None or blue_value is None:
        return Judgement(
            Outcome.INCONCLUSIVE,
            None,
            green_value,
            blue_value,
            f"{observed}: not enough data yet",
            "errors",
        )

    p, test = diff_test(green_errors, green_total, blue_errors, blue_total, tolerated_increase)
    tolerance = f"+{tolerated_increase * 100:g} pt tolerated"
    stats = f"{tolerance}, {test} {_verdict_text(p, alpha)}"
    if p < alpha:
        if green_errors >= min_errors:
            return Judgement(
                Outcome.FAIL,
                p,
                green_value,
                blue_value,
                f"{observed} ({stats}): green is worse",
                "errors",
            )
        return Judgement(
            Outcome.INCONCLUSIVE,
            p,
            green_value,
            blue_value,
            f"{observed} ({stats}): not enough data yet, need {min_errors} green errors to fail",
            "errors",
        )
    if min(green_total, blue_total) < min_requests:
        return Judgement(
            Outcome.INCONCLUSIVE,
            p,
            green_value,
            blue_value,
            f"{observed} ({stats}): not enough data yet, need {min_requests} requests per group",
            "errors",
        )
    return Judgement(Outcome.PASS, p, green_value, blue_value, f"{observed} ({stats})", "errors")


def judge_errors_sequential(
    green_errors: int,
    green_total: int,
    blue_errors: int,
    blue_total: int,
    *,
    alpha: float = DEFAULT_SEQUENTIAL_ALPHA,
    effect: float = DEFAULT_SEQUENTIAL_EFFECT,
    tolerated_increase: float = DEFAULT_ERROR_TOLERANCE,
    min_errors: int = 2,
    label: str = "errors",
) -> Judgement:
    """FAIL when the likelihood ratio of green's errors under "blue's rate + ``effect``"
    over "blue's rate + ``tolerated_increase``" reaches ``1 / alpha``, else INCONCLUSIVE.
    The counts must be everything green served since it got traffic (see the module doc).
    Blue's rate is taken as ``(errors + 1) / (requests + 1)``, a little high, which makes a
    FAIL harder; it needs ``SEQUENTIAL_MIN_BLUE`` blue requests and ``min_errors`` green
    errors. ``p_value`` is ``1 / likelihood ratio`` (Ville: an always-valid p-value)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha}")
    if not 0.0 <= tolerated_increase < effect < 1.0:
        raise ValueError(
            f"need 0 <= tolerated_increase < effect < 1, got {tolerated_increase} and {effect}"
        )
    _check_counts(green_errors, green_total, blue_errors, blue_total)
    green_value = green_errors / green_total if green_total else None
    blue_value = blue_errors / blue_total if blue_total else None
    observed = f"green {label} {green_errors}/{green_total} vs blue {blue_errors}/{blue_total}"
    if blue_total < SEQUENTIAL_MIN_BLUE or green_errors < min_errors:
        return Judgement(
            Outcome.INCONCLUSIVE,
            None,
            green_value,
            blue_value,
            f"{observed}: sequential test waits for {min_errors} green errors "
            f"and {SEQUENTIAL_MIN_BLUE} blue requests",
            "errors",
        )
    base = (blue_errors + 1) / (blue_total + 1)
    p0, p1 = base + tolerated_increase, base + effect
    if p1 >= 1.0:  # blue already fails so often that +effect is out of reach
        return Judgement(
            Outcome.INCONCLUSIVE,
            None,
            green_value,
            blue_value,
            f"{observed}: blue's error rate leaves no room for the sequential test",
            "errors",
        )
    llr = green_errors * math.log(p1 / p0) + (green_total - green_errors) * math.log(
        (1.0 - p1) / (1.0 - p0)
    )
    p = math.exp(-llr) if llr > 0 else 1.0
    stats = (
        f"sequential test +{effect * 100:g} pt vs +{tolerated_increase * 100:g} pt, "
        f"likelihood ratio {math.exp(min(llr, 700)):.3g}, {_verdict_text(p, alpha)}"
    )
    if p < alpha:
        return Judgement(
            Outcome.FAIL,
            p,
            green_value,
            blue_value,
            f"{observed} ({stats}): green is worse",
            "errors",
        )
    return Judgement(
        Outcome.INCONCLUSIVE, p, green_value, blue_value, f"{observed} ({stats})", "errors"
    )


def _ms(us: float) -> str:
    ms = us / 1000.0
    return f"{ms:.3g} ms" if ms < 1000 else f"{ms / 1000:.3g} s"


def judge_latency(
    green_hist: Mapping[int, int],
    blue_hist: Mapping[int, int],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    tolerated_increase: float = DEFAULT_LATENCY_TOLERANCE,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    slack: float = 0.0,
) -> Judgement:
    """Is green slower than blue × (1 + ``tolerated_increase``) + ``slack`` (seconds) with
    ``confidence``? The slack keeps differences no user feels (a cold process answering in
    0.3 ms instead of 0.17 ms is +80 %) from failing a release. The histograms map router
    bucket index -> count (``sluicegate.router._histogram``)."""
    alpha = _alpha(confidence)
    if not 0.0 <= tolerated_increase < math.inf:
        raise ValueError(f"tolerated_increase must be 0 or more, got {tolerated_increase}")
    if not 0.0 <= slack < math.inf:
        raise ValueError(f"slack must be 0 or more seconds, got {slack}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be at least 1, got {min_samples}")
    green = histogram_items(green_hist, "green latency")
    blue = histogram_items(blue_hist, "blue latency")
    green_n = sum(n for _, n in green)
    blue_n = sum(n for _, n in blue)
    green_med = histogram_median_us(green) if green else None
    blue_med = histogram_median_us(blue) if blue else None
    green_value = green_med / 1e6 if green_med is not None else None
    blue_value = blue_med / 1e6 if blue_med is not None else None

    def side(name: str, median: float | None, n: int) -> str:
        return f"{name} no samples" if median is None else f"{name} p50 {_ms(median)} (n={n})"

    observed = f"{side('green', green_med, green_n)} vs {side('blue', blue_med, blue_n)}"
    if green_med is not None and blue_med is not None and blue_med > 0:
        observed += f", {(green_med / blue_med - 1) * 100:+.1f} %"

    if min(green_n, blue_n) < min_samples:
        return Judgement(
            Outcome.INCONCLUSIVE,
            None,
            green_value,
            blue_value,
            f"{observed}: not enough data yet, need {min_samples} samples per group",
            "latency",
        )

    allowed = reconstruct(blue) * (1.0 + tolerated_increase) + slack * 1e6  # µs
    p = mann_whitney_greater(reconstruct(green), allowed)
    slack_text = f", {_ms(slack * 1e6)} slack" if slack > 0 else ""
    stats = (
        f"+{tolerated_increase * 100:g} % tolerated{slack_text}, "
        f"Mann-Whitney {_verdict_text(p, alpha)}"
    )
    if p < alpha:
        return Judgement(
            Outcome.FAIL,
            p,
            green_value,
            blue_value,
            f"{observed} ({stats}): green is slower",
            "latency",
        )
    return Judgement(Outcome.PASS, p, green_value, blue_value, f"{observed} ({stats})", "latency")


def combine_judgements(*parts: Judgement) -> Judgement:
    """FAIL if any part failed, else INCONCLUSIVE if any was inconclusive, else PASS."""
    if not parts:
        raise ValueError("combine_judgements needs at least one judgement")
    outcomes = {j.outcome for j in parts}
    if Outcome.FAIL in outcomes:
        outcome = Outcome.FAIL
    elif Outcome.INCONCLUSIVE in outcomes:
        outcome = Outcome.INCONCLUSIVE
    else:
        outcome = Outcome.PASS
    ps = [j.p_value for j in parts if j.p_value is not None]
    detail = "; ".join(f"{j.metric or 'part'} {j.outcome}: {j.detail}" for j in parts)
    return Judgement(outcome, min(ps) if ps else None, None, None, detail, "canary", parts)


def judge(
    green: GroupCounts,
    blue: GroupCounts,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    tolerated_error_increase: float = DEFAULT_ERROR_TOLERANCE,
    tolerated_latency_increase: float = DEFAULT_LATENCY_TOLERANCE,
    latency_slack: float = 0.0,
    min_requests: int = DEFAULT_MIN_REQUESTS,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    min_errors: int = DEFAULT_MIN_ERRORS,
    error_label: str = "errors",
) -> Judgement:
    """Errors and latency together (see ``combine_judgements``). Two tests at ``confidence``
    each: a combined FAIL at the boundary of both tolerances is at most twice as likely."""
    errors = judge_errors(
        green.errors,
        green.total,
        blue.errors,
        blue.total,
        confidence=confidence,
        tolerated_increase=tolerated_error_increase,
        min_requests=min_requests,
        min_errors=min_errors,
        label=error_label,
    )
    latency = judge_latency(
        green.latency,
        blue.latency,
        confidence=confidence,
        tolerated_increase=tolerated_latency_increase,
        min_samples=min_samples,
        slack=latency_slack,
    )
    return combine_judgements(errors, latency)
