"""Statistics for the canary judgement (pure; stdlib, numpy and scipy only).

Kept apart from ``canary`` so the verdict logic reads as policy and the numerics can be
checked on their own against brute force and scipy's reference functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from scipy import stats as _scipy_stats  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "MAX_SAMPLES",
    "NUM_BUCKETS",
    "bucket_bounds",
    "bucket_midpoint_us",
    "diff_test",
    "fm_restricted_mle",
    "histogram_items",
    "histogram_median_us",
    "mann_whitney_greater",
    "reconstruct",
    "scas_p",
]

# --- latency buckets -------------------------------------------------------------------------
# A copy of the router's bucket scheme (src/sluicegate/router/_histogram.py: ``bucket_bounds``,
# ``NUM_BUCKETS``). The monitor's pure core may not import the router; a test imports both and
# checks that they agree on every bucket.

NUM_BUCKETS = 16 + (36 - 4) * 8


def bucket_bounds(index: int) -> tuple[int, int]:
    """[lower, upper) in µs of a router latency bucket."""
    if index < 16:
        return index, index + 1
    octave, sub = divmod(index - 16, 8)
    shift = octave + 1
    return (sub + 8) << shift, (sub + 9) << shift


_MIDPOINTS_US = np.array(
    [(lo + hi) / 2 for lo, hi in (bucket_bounds(i) for i in range(NUM_BUCKETS))],
    dtype=np.float64,
)


def bucket_midpoint_us(index: int) -> float:
    """The value that stands for every sample in a bucket (as the router's ``percentile``)."""
    return float(_MIDPOINTS_US[index])


def histogram_items(hist: Mapping[int, int], name: str) -> list[tuple[int, int]]:
    """Sorted (index, count) pairs with a count, after checking indexes and counts."""
    items = []
    for index, count in hist.items():
        if not 0 <= index < NUM_BUCKETS:
            raise ValueError(f"{name}: bucket index {index} outside 0..{NUM_BUCKETS - 1}")
        if count < 0:
            raise ValueError(f"{name}: bucket {index} has a negative count ({count})")
        if count:
            items.append((index, count))
    items.sort()
    return items


def histogram_median_us(items: list[tuple[int, int]]) -> float:
    """Median (midpoint of the bucket holding the middle sample) of sorted, non-empty items."""
    total = sum(n for _, n in items)
    rank = total / 2
    seen = 0
    for index, n in items:
        seen += n
        if seen >= rank:
            return bucket_midpoint_us(index)
    return bucket_midpoint_us(items[-1][0])  # pragma: no cover - unreachable for total > 0


# The reconstruction bound: at most this many samples per group go into the rank test. 2 000 +
# 2 000 samples rank in about 1 ms; above the bound the counts are thinned proportionally
# (largest-remainder rounding, deterministic), which keeps the shape of the distribution and
# loses only the power of very large samples — and 2 000 samples already resolve a few percent
# of shift. A bucket holding less than 1/2 000 of a group may vanish from the thinned sample.
MAX_SAMPLES = 2_000


def _thin(counts: npt.NDArray[np.int64], cap: int) -> npt.NDArray[np.int64]:
    total = int(counts.sum())
    if total <= cap:
        return counts
    exact = counts.astype(np.float64) * (cap / total)
    floor: npt.NDArray[np.int64] = np.floor(exact).astype(np.int64)
    short = cap - int(floor.sum())
    if short:
        # Largest remainders first; ties broken by bucket order (stable sort) so it is repeatable.
        order = np.argsort(-(exact - floor), kind="stable")
        floor[order[:short]] += 1
    return floor


def reconstruct(items: list[tuple[int, int]], cap: int = MAX_SAMPLES) -> npt.NDArray[np.float64]:
    """Samples (bucket midpoints, µs) standing for a histogram, at most ``cap`` of them."""
    indexes = np.fromiter((i for i, _ in items), dtype=np.int64, count=len(items))
    counts = np.fromiter((n for _, n in items), dtype=np.int64, count=len(items))
    return np.repeat(_MIDPOINTS_US[indexes], _thin(counts, cap))


def mann_whitney_greater(green: npt.NDArray[np.float64], blue: npt.NDArray[np.float64]) -> float:
    """One-sided p-value of Mann-Whitney U for "green is stochastically greater than blue".

    The normal approximation with tie and continuity correction (scipy's ``asymptotic``
    method): bucketed samples are full of ties, which the exact distribution does not allow.
    """
    result = _scipy_stats.mannwhitneyu(
        green, blue, alternative="greater", method="asymptotic", use_continuity=True
    )
    return float(result.pvalue)


# --- error proportions -----------------------------------------------------------------------

# The small-count rule for Fisher's exact test: used (with no margin) when an expected cell count
# under the null (n * p̃ or n * (1 - p̃), either side) is below this.
MIN_EXPECTED = 5.0


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def fm_restricted_mle(x1: int, n1: int, x2: int, n2: int, delta: float) -> tuple[float, float]:
    """Maximum-likelihood (p1, p2) under the constraint p1 - p2 = delta (Farrington & Manning
    1990, closed-form root of the likelihood's cubic)."""
    p1, p2 = x1 / n1, x2 / n2
    theta = n2 / n1
    a = 1.0 + theta
    b = -(1.0 + theta + p1 + theta * p2 + delta * (theta + 2.0))
    c = delta * delta + delta * (2.0 * p1 + theta + 1.0) + p1 + theta * p2
    d = -p1 * delta * (1.0 + delta)
    v = b**3 / (27.0 * a**3) - b * c / (6.0 * a * a) + d / (2.0 * a)
    u_sq = b * b / (9.0 * a * a) - c / (3.0 * a)
    u = math.copysign(math.sqrt(max(u_sq, 0.0)), v)
    ratio = 1.0 if u == 0.0 else max(-1.0, min(1.0, v / u**3))
    w = (math.pi + math.acos(ratio)) / 3.0
    q1 = 2.0 * u * math.cos(w) - b / (3.0 * a)
    q1 = max(delta, min(1.0, q1))  # rounding guard: the root lies in [delta, 1]
    return q1, q1 - delta


def scas_p(x1: int, n1: int, x2: int, n2: int, delta: float) -> float:
    """One-sided p-value for H1: p1 - p2 > delta by the skewness-corrected asymptotic score
    test (Laud & Dane 2014; Laud 2017, "SCAS").

    The Miettinen-Nurminen score statistic (variance at the restricted MLE, with the N/(N-1)
    bias correction) plus a correction for the skewness of the score, which is what makes the
    plain score test reject up to ten times too often one-sidedly near 0 % with unequal group
    sizes. The corrected test keeps close to the nominal level down to a few requests.
    """
    q1, q2 = fm_restricted_mle(x1, n1, x2, n2, delta)
    n = n1 + n2
    var = (q1 * (1.0 - q1) / n1 + q2 * (1.0 - q2) / n2) * n / (n - 1.0)
    score = x1 / n1 - x2 / n2 - delta
    if var <= 0.0:
        # Both proportions at 0 or 1 under the null: nothing varies.
        return 0.0 if score > 0.0 else 1.0
    mu3 = q1 * (1.0 - q1) * (1.0 - 2.0 * q1) / (n1 * n1) - q2 * (1.0 - q2) * (1.0 - 2.0 * q2) / (
        n2 * n2
    )
    # Solve  score/sqrt(var) - (z**2 - 1) * mu3 / (6 var**1.5) = z  for z.
    a = mu3 / (6.0 * var**1.5)
    b = score / math.sqrt(var)
    if abs(a) < 1e-12:
        z = b
    else:
        # With no real root (disc < 0), the vertex -1 / 2a: the extreme on the side of b.
        disc = 1.0 + 4.0 * a * (b + a)
        z = (math.sqrt(max(disc, 0.0)) - 1.0) / (2.0 * a)
    return _normal_sf(z)


def _fisher_p(x1: int, n1: int, x2: int, n2: int) -> float:
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    return float(_scipy_stats.fisher_exact(table, alternative="greater").pvalue)


def diff_test(x1: int, n1: int, x2: int, n2: int, delta: float) -> tuple[float, str]:
    """One-sided p-value for H1: p1 - p2 > delta (group 1 = green, 2 = blue), and the name of
    the test used: the skewness-corrected score test, or Fisher's exact test when there is no
    margin and the counts are small (Fisher's conditional test has no form with a margin)."""
    if delta == 0.0:
        q1, q2 = fm_restricted_mle(x1, n1, x2, n2, delta)
        if min(n1 * q1, n1 * (1.0 - q1), n2 * q2, n2 * (1.0 - q2)) < MIN_EXPECTED:
            return _fisher_p(x1, n1, x2, n2), "Fisher exact test"
    return scas_p(x1, n1, x2, n2, delta), "score test"
