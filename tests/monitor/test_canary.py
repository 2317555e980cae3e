"""Canary judgement on synthetic samples with known answers."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from sluicegate.monitor import _stats
from sluicegate.monitor.canary import (
    MAX_SAMPLES,
    GroupCounts,
    Judgement,
    Outcome,
    combine_judgements,
    judge,
    judge_errors,
    judge_errors_sequential,
    judge_latency,
)
from sluicegate.router import _histogram  # test only: the monitor core must not import it

# --- helpers ---------------------------------------------------------------------------------


def hist_of(latencies_us: np.ndarray) -> dict[int, int]:
    """A router-style histogram of latencies in µs."""
    counts = Counter(_histogram.bucket_index(int(us)) for us in latencies_us)
    return dict(counts)


def lognormal_us(
    rng: np.random.Generator, n: int, median_ms: float, sigma: float = 0.5
) -> np.ndarray:
    return rng.lognormal(math.log(median_ms * 1000.0), sigma, n)


# --- the copied bucket scheme ----------------------------------------------------------------


def test_bucket_bounds_agree_with_the_router() -> None:
    assert _histogram.NUM_BUCKETS == _stats.NUM_BUCKETS
    for index in range(_histogram.NUM_BUCKETS):
        assert _stats.bucket_bounds(index) == _histogram.bucket_bounds(index), index
        lo, hi = _stats.bucket_bounds(index)
        assert _stats.bucket_midpoint_us(index) == (lo + hi) / 2


def test_median_matches_the_router_percentile() -> None:
    rng = np.random.default_rng(7)
    hist = hist_of(lognormal_us(rng, 999, 20.0))
    items = _stats.histogram_items(hist, "h")
    assert _stats.histogram_median_us(items) / 1e6 == pytest.approx(
        _histogram.percentile(hist, 0.5)
    )


# --- the statistics --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "delta"),
    [
        (20, 200, 18, 1800, 0.01),
        (2, 200, 18, 1800, 0.01),
        (0, 50, 0, 500, 0.01),
        (5, 5, 0, 10, 0.05),
        (30, 100, 10, 100, 0.0),
        (0, 10, 3, 40, 0.0),
        (7, 300, 90, 900, 0.02),
    ],
)
def test_restricted_mle_maximises_the_constrained_likelihood(
    x1: int, n1: int, x2: int, n2: int, delta: float
) -> None:
    q1, q2 = _stats.fm_restricted_mle(x1, n1, x2, n2, delta)
    assert q1 - q2 == pytest.approx(delta)

    from scipy.special import xlog1py, xlogy  # type: ignore[import-untyped, unused-ignore]

    def loglik(p1: np.ndarray) -> np.ndarray:
        p2 = p1 - delta
        return np.asarray(
            xlogy(x1, p1) + xlog1py(n1 - x1, -p1) + xlogy(x2, p2) + xlog1py(n2 - x2, -p2)
        )

    grid = np.linspace(delta, 1.0, 1_000_001)
    best = float(np.max(loglik(grid)))
    assert float(loglik(np.array([q1]))[0]) >= best - 1e-6


def test_small_counts_without_margin_use_fishers_exact_test() -> None:
    j = judge_errors(3, 20, 0, 200, tolerated_increase=0.0, min_requests=10)
    assert "Fisher exact" in j.detail
    assert j.outcome is Outcome.FAIL
    assert j.p_value == pytest.approx(20 * 19 * 18 / (220 * 219 * 218))
    assert "score test" in judge_errors(3, 20, 0, 200, min_requests=10).detail


def _rejection_rate(n1: int, n2: int, p1: float, p2: float, delta: float) -> float:
    """Exact probability that the test rejects at alpha = 0.01, over both binomials."""
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    w1 = stats.binom.pmf(np.arange(n1 + 1), n1, p1)
    hi = min(n2, int(n2 * p2 + 10 * math.sqrt(n2 * p2 + 1) + 5))
    w2 = stats.binom.pmf(np.arange(hi + 1), n2, p2)
    rate = 0.0
    for x1 in range(n1 + 1):
        for x2 in range(hi + 1):
            w = w1[x1] * w2[x2]
            if w > 1e-12 and _stats.diff_test(x1, n1, x2, n2, delta)[0] < 0.01:
                rate += w
    return rate


@pytest.mark.parametrize(
    ("n1", "n2", "p2", "delta"),
    [
        (10, 990, 0.01, 0.01),
        (20, 1800, 0.0, 0.01),
        (50, 200, 0.01, 0.01),
        (200, 1800, 0.01, 0.01),
        (200, 19_800, 0.001, 0.01),
        (100, 900, 0.05, 0.0),
        (8, 1800, 0.01, 0.0),
    ],
)
def test_level_is_kept_near_nominal_and_healthy_greens_almost_never_fail(
    n1: int, n2: int, p2: float, delta: float
) -> None:
    # Green exactly at blue + tolerance is the worst case for a false FAIL: the skew-corrected
    # score test stays within 1.7 % at a nominal 1 % there (the plain score test reaches 10 %).
    assert _rejection_rate(n1, n2, p2 + delta, p2, delta) <= 0.017
    # A healthy green (blue's own rate) inside a tolerance fails far less often than alpha.
    if delta:
        assert _rejection_rate(n1, n2, p2, p2, delta) <= 0.004


def test_score_test_without_skew_is_the_normal_score_test() -> None:
    # At 50 % the score is symmetric: the correction vanishes, p is the z-test's.
    x1, n1, x2, n2 = 600, 1000, 500, 1000
    q1, q2 = _stats.fm_restricted_mle(x1, n1, x2, n2, 0.05)
    assert q1 - q2 == pytest.approx(0.05)
    var = (q1 * (1 - q1) / n1 + q2 * (1 - q2) / n2) * (n1 + n2) / (n1 + n2 - 1)
    z = (0.6 - 0.5 - 0.05) / math.sqrt(var)
    assert _stats.scas_p(x1, n1, x2, n2, 0.05) == pytest.approx(
        0.5 * math.erfc(z / math.sqrt(2)), rel=0.02
    )


def test_thinning_is_bounded_and_proportional() -> None:
    items = [(100, 300_000), (110, 200_000), (120, 99_999), (200, 1)]
    samples = _stats.reconstruct(items)
    assert len(samples) == MAX_SAMPLES
    counts = Counter(samples.tolist())
    total = sum(n for _, n in items)
    for index, n in items:
        assert abs(counts.get(_stats.bucket_midpoint_us(index), 0) - n * MAX_SAMPLES / total) < 1
    small = [(5, 3), (9, 4)]
    assert sorted(_stats.reconstruct(small).tolist()) == [5.5] * 3 + [9.5] * 4


def test_mann_whitney_matches_scipy_on_the_reconstruction() -> None:
    from scipy import stats  # type: ignore[import-untyped, unused-ignore]

    rng = np.random.default_rng(3)
    green = _stats.reconstruct(_stats.histogram_items(hist_of(lognormal_us(rng, 500, 12)), "g"))
    blue = _stats.reconstruct(_stats.histogram_items(hist_of(lognormal_us(rng, 800, 10)), "b"))
    expected = stats.mannwhitneyu(green, blue, alternative="greater").pvalue
    assert _stats.mann_whitney_greater(green, blue) == pytest.approx(expected)


# --- errors ----------------------------------------------------------------------------------


def test_errors_identical_proportions_pass() -> None:
    j = judge_errors(20, 2000, 180, 18000)
    assert j.outcome is Outcome.PASS
    assert j.green_value == pytest.approx(0.01)
    assert j.blue_value == pytest.approx(0.01)
    assert j.p_value is not None and j.p_value > 0.5


def test_errors_clearly_worse_green_fails_with_a_readable_detail() -> None:
    j = judge_errors(82, 2000, 162, 18000, label="5xx")
    assert j.outcome is Outcome.FAIL
    assert j.p_value is not None and j.p_value < 0.01
    assert j.detail.startswith("green 5xx 4.1 % (82/2000) vs blue 0.9 % (162/18000)")
    assert "< 0.01" in j.detail and "green is worse" in j.detail


def test_errors_tiny_samples_are_inconclusive() -> None:
    for counts in [(0, 3, 1, 30), (1, 5, 0, 40), (0, 0, 0, 0), (0, 0, 5, 500), (0, 500, 0, 0)]:
        j = judge_errors(*counts)
        assert j.outcome is Outcome.INCONCLUSIVE, counts
        assert "not enough data yet" in j.detail
    assert judge_errors(0, 0, 5, 500).p_value is None
    assert judge_errors(0, 0, 5, 500).green_value is None


def test_errors_pass_needs_min_requests_per_group() -> None:
    assert judge_errors(0, 99, 9, 900).outcome is Outcome.INCONCLUSIVE
    assert judge_errors(0, 100, 9, 900).outcome is Outcome.PASS
    assert judge_errors(0, 100, 0, 99).outcome is Outcome.INCONCLUSIVE
    assert judge_errors(0, 20, 0, 20, min_requests=20).outcome is Outcome.PASS


def test_errors_overwhelming_evidence_fails_before_min_requests() -> None:
    # A release that fails its first 10 requests must not wait for 100.
    j = judge_errors(10, 10, 18, 1800)
    assert j.outcome is Outcome.FAIL
    # ...but one error among a handful is not evidence,
    assert judge_errors(1, 6, 18, 1800).outcome is Outcome.INCONCLUSIVE
    # and one or two failing requests never fail a release on their own, however significant.
    lone = judge_errors(1, 1, 0, 1800)
    assert lone.p_value is not None and lone.p_value < 0.01
    assert lone.outcome is Outcome.INCONCLUSIVE
    assert "need 3 green errors" in lone.detail
    assert judge_errors(2, 2, 0, 1800).outcome is Outcome.INCONCLUSIVE
    assert judge_errors(3, 3, 0, 1800).outcome is Outcome.FAIL
    assert judge_errors(1, 1, 0, 1800, min_errors=1).outcome is Outcome.FAIL


def test_errors_noisy_but_healthy_green_passes_99_of_100_trials() -> None:
    rng = np.random.default_rng(2024)
    outcomes: Counter[Outcome] = Counter()
    for _ in range(100):
        green_total = int(rng.integers(200, 400))
        blue_total = int(rng.integers(1800, 3600))
        outcomes[
            judge_errors(
                int(rng.binomial(green_total, 0.01)),
                green_total,
                int(rng.binomial(blue_total, 0.01)),
                blue_total,
            ).outcome
        ] += 1
    assert outcomes[Outcome.PASS] >= 99, outcomes


@pytest.mark.parametrize(("green_total", "blue_total"), [(200, 1800), (200, 19_800)])
def test_errors_tenfold_rate_on_a_small_canary_fails_within_seconds(
    green_total: int, blue_total: int
) -> None:
    # A few seconds of a 10 % / 1 % canary: blue at 1 % errors, green at 10 %.
    rng = np.random.default_rng(99)
    fails = 0
    for _ in range(100):
        j = judge_errors(
            int(rng.binomial(green_total, 0.10)),
            green_total,
            int(rng.binomial(blue_total, 0.01)),
            blue_total,
        )
        fails += j.outcome is Outcome.FAIL
    assert fails >= 99


def test_errors_within_tolerance_is_not_a_failure() -> None:
    # Green 1.5 % vs blue 1 %: worse, but within the 1-point tolerance.
    assert judge_errors(300, 20000, 1800, 180000).outcome is Outcome.PASS
    assert judge_errors(300, 20000, 1800, 180000, tolerated_increase=0.0).outcome is Outcome.FAIL


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((5, 4, 0, 10), {}, "more than its 4 requests"),
        ((-1, 4, 0, 10), {}, "negative"),
        ((0, 4, 0, -10), {}, "negative"),
        ((0, 4, 0, 10), {"confidence": 1.0}, "confidence"),
        ((0, 4, 0, 10), {"tolerated_increase": -0.1}, "tolerated_increase"),
        ((0, 4, 0, 10), {"min_requests": 0}, "min_requests"),
        ((0, 4, 0, 10), {"min_errors": 0}, "min_errors"),
    ],
)
def test_errors_bad_input_is_refused(
    args: tuple[int, ...], kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        judge_errors(*args, **kwargs)  # type: ignore[arg-type]


# --- latency ---------------------------------------------------------------------------------


def test_latency_identical_distributions_pass() -> None:
    rng = np.random.default_rng(1)
    j = judge_latency(hist_of(lognormal_us(rng, 3000, 20)), hist_of(lognormal_us(rng, 3000, 20)))
    assert j.outcome is Outcome.PASS
    assert j.green_value == pytest.approx(0.020, rel=0.1)


def test_latency_half_again_slower_fails() -> None:
    rng = np.random.default_rng(2)
    j = judge_latency(hist_of(lognormal_us(rng, 300, 30)), hist_of(lognormal_us(rng, 3000, 20)))
    assert j.outcome is Outcome.FAIL
    assert j.p_value is not None and j.p_value < 0.01
    assert "green is slower" in j.detail and "Mann-Whitney" in j.detail
    assert j.green_value is not None and j.blue_value is not None
    assert j.green_value / j.blue_value == pytest.approx(1.5, rel=0.15)


def test_latency_five_percent_slower_passes_with_ten_percent_tolerance() -> None:
    rng = np.random.default_rng(3)
    passes = sum(
        judge_latency(
            hist_of(lognormal_us(rng, 2000, 21)), hist_of(lognormal_us(rng, 2000, 20))
        ).outcome
        is Outcome.PASS
        for _ in range(20)
    )
    assert passes == 20


def test_latency_tolerance_is_applied() -> None:
    rng = np.random.default_rng(4)
    green = hist_of(lognormal_us(rng, 2000, 24))
    blue = hist_of(lognormal_us(rng, 2000, 20))
    assert judge_latency(green, blue).outcome is Outcome.FAIL
    assert judge_latency(green, blue, tolerated_increase=0.4).outcome is Outcome.PASS


def test_latency_noisy_but_healthy_green_passes_99_of_100_trials() -> None:
    rng = np.random.default_rng(5)
    passes = 0
    for _ in range(100):
        green = hist_of(lognormal_us(rng, int(rng.integers(60, 300)), 20, sigma=0.8))
        blue = hist_of(lognormal_us(rng, 2000, 20, sigma=0.8))
        passes += judge_latency(green, blue).outcome is Outcome.PASS
    assert passes >= 99


def test_latency_tiny_or_missing_samples_are_inconclusive() -> None:
    rng = np.random.default_rng(6)
    big = hist_of(lognormal_us(rng, 1000, 20))
    tiny = hist_of(lognormal_us(rng, 10, 200))  # far slower, but only 10 samples
    for green, blue in [(tiny, big), (big, tiny), ({}, big), (big, {}), ({}, {})]:
        j = judge_latency(green, blue)
        assert j.outcome is Outcome.INCONCLUSIVE
        assert j.p_value is None
        assert "not enough data yet" in j.detail
    assert judge_latency({}, big).green_value is None
    assert judge_latency(tiny, big, min_samples=10).outcome is Outcome.FAIL


def test_latency_large_histograms_are_thinned_not_refused() -> None:
    # A minute at 10 000 req/s per group.
    rng = np.random.default_rng(8)
    blue = hist_of(lognormal_us(rng, 20_000, 20))
    green = hist_of(lognormal_us(rng, 20_000, 20))
    scale = 30
    big_blue = {i: n * scale for i, n in blue.items()}
    big_green = {i: n * scale for i, n in green.items()}
    assert judge_latency(big_green, big_blue).outcome is Outcome.PASS
    slow = {i + 4: n for i, n in big_green.items()}  # half an octave slower
    assert judge_latency(slow, big_blue).outcome is Outcome.FAIL


@pytest.mark.parametrize(
    ("hist", "message"),
    [({-1: 3}, "outside"), ({_stats.NUM_BUCKETS: 3}, "outside"), ({20: -1}, "negative")],
)
def test_latency_bad_histograms_are_refused(hist: dict[int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        judge_latency(hist, {20: 100})
    with pytest.raises(ValueError, match="tolerated_increase"):
        judge_latency({20: 100}, {20: 100}, tolerated_increase=float("nan"))


# --- combined --------------------------------------------------------------------------------


def _j(outcome: Outcome, p: float | None = None, metric: str = "x") -> Judgement:
    return Judgement(outcome, p, None, None, f"{metric} detail", metric)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ((Outcome.PASS, Outcome.PASS), Outcome.PASS),
        ((Outcome.PASS, Outcome.INCONCLUSIVE), Outcome.INCONCLUSIVE),
        ((Outcome.INCONCLUSIVE, Outcome.FAIL), Outcome.FAIL),
        ((Outcome.FAIL, Outcome.PASS), Outcome.FAIL),
    ],
)
def test_combine(outcomes: tuple[Outcome, Outcome], expected: Outcome) -> None:
    j = combine_judgements(_j(outcomes[0], 0.5, "errors"), _j(outcomes[1], 0.2, "latency"))
    assert j.outcome is expected
    assert j.p_value == 0.2
    assert j.metric == "canary"
    assert len(j.parts) == 2
    assert "errors" in j.detail and "latency" in j.detail


def test_combine_needs_parts_and_keeps_missing_p_values() -> None:
    with pytest.raises(ValueError):
        combine_judgements()
    assert combine_judgements(_j(Outcome.INCONCLUSIVE)).p_value is None


def test_judge_both_dimensions() -> None:
    rng = np.random.default_rng(10)
    fast = hist_of(lognormal_us(rng, 2000, 20))
    fast2 = hist_of(lognormal_us(rng, 2000, 20))
    slow = hist_of(lognormal_us(rng, 2000, 40))
    healthy = judge(GroupCounts(20, 2000, fast), GroupCounts(20, 2000, fast2))
    assert healthy.outcome is Outcome.PASS
    assert [p.metric for p in healthy.parts] == ["errors", "latency"]
    assert judge(GroupCounts(20, 2000, slow), GroupCounts(20, 2000, fast)).outcome is Outcome.FAIL
    assert judge(GroupCounts(400, 2000, fast2), GroupCounts(20, 2000, fast)).outcome is Outcome.FAIL
    early = judge(GroupCounts(0, 10, {}), GroupCounts(20, 2000, fast))
    assert early.outcome is Outcome.INCONCLUSIVE


# --- the sequential error test ---------------------------------------------------------------


def test_the_sequential_test_fails_once_the_likelihood_ratio_reaches_one_over_alpha() -> None:
    base = 1 / 1001  # blue 0 of 1,000, leaning high
    p0, p1 = base + 0.01, base + 0.20
    llr = 3 * math.log(p1 / p0) + 1 * math.log((1 - p1) / (1 - p0))
    j = judge_errors_sequential(3, 4, 0, 1000, alpha=0.003, label="5xx")
    assert j.outcome is Outcome.FAIL
    assert j.p_value == pytest.approx(math.exp(-llr))
    assert j.detail.startswith("green 5xx 3/4 vs blue 0/1000 (sequential test +20 pt vs +1 pt")
    two = judge_errors_sequential(2, 4, 0, 1000, alpha=0.003)
    assert two.outcome is Outcome.INCONCLUSIVE and two.p_value is not None
    assert two.p_value > 0.003


def test_the_sequential_test_needs_two_green_errors_and_enough_blue_requests() -> None:
    assert judge_errors_sequential(1, 1, 0, 5000).outcome is Outcome.INCONCLUSIVE
    assert judge_errors_sequential(5, 5, 0, 99).outcome is Outcome.INCONCLUSIVE
    assert judge_errors_sequential(5, 5, 0, 100).outcome is Outcome.FAIL
    # blue already fails 85 %: +20 pt is beyond reach, so no verdict at all
    assert judge_errors_sequential(9, 10, 850, 1000).p_value is None


@pytest.mark.parametrize(
    ("alpha", "effect", "tolerated"),
    [(0.0, 0.2, 0.01), (1.0, 0.2, 0.01), (0.01, 0.01, 0.01), (0.01, 0.2, -0.1)],
)
def test_the_sequential_test_refuses_impossible_settings(
    alpha: float, effect: float, tolerated: float
) -> None:
    with pytest.raises(ValueError):
        judge_errors_sequential(
            1, 2, 0, 100, alpha=alpha, effect=effect, tolerated_increase=tolerated
        )


@pytest.mark.parametrize("blue_errors", [0, 10, 50])
def test_checked_after_each_request_the_sequential_test_fails_a_boundary_green_at_most_alpha(
    blue_errors: int,
) -> None:
    # Exact: the chance that a green failing at blue's rate + 1 pt ever FAILs within its
    # first 300 requests, by dynamic programming over (requests, errors), is below alpha.
    alpha, blue_total = 0.003, 1000
    rate = (blue_errors + 1) / (blue_total + 1) + 0.01
    alive = {0: 1.0}  # errors so far -> probability of having got here without a FAIL
    crossed = 0.0
    for n in range(1, 301):
        step: dict[int, float] = {}
        for k, p in alive.items():
            for errors, q in ((k + 1, rate), (k, 1 - rate)):
                verdict = judge_errors_sequential(errors, n, blue_errors, blue_total, alpha=alpha)
                if verdict.outcome is Outcome.FAIL:
                    crossed += p * q
                else:
                    step[errors] = step.get(errors, 0.0) + p * q
        alive = step
    assert 0.0 < crossed <= alpha


def test_latency_slack_lets_a_difference_no_user_feels_pass() -> None:
    rng = np.random.default_rng(7)
    green = hist_of(lognormal_us(rng, 2000, 0.30))  # a cold process: 0.3 ms
    blue = hist_of(lognormal_us(rng, 2000, 0.17))  # warm: 0.17 ms, +76 %
    assert judge_latency(green, blue, tolerated_increase=0.5).outcome is Outcome.FAIL
    slack = judge_latency(green, blue, tolerated_increase=0.5, slack=0.005)
    assert slack.outcome is Outcome.PASS
    assert "+50 % tolerated, 5 ms slack" in slack.detail
    slow = hist_of(lognormal_us(rng, 2000, 20.0))  # 20 ms: users feel that
    assert judge_latency(slow, blue, tolerated_increase=0.5, slack=0.005).outcome is Outcome.FAIL
    with pytest.raises(ValueError, match="slack"):
        judge_latency(green, blue, slack=-1.0)
