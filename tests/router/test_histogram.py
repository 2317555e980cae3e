"""The latency histogram: exact small buckets, ≤ 6.25 % wide above, correct percentiles."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sluicegate.router import bucket_bounds, bucket_index, percentile
from sluicegate.router._histogram import NUM_BUCKETS, prometheus_buckets


@given(st.integers(min_value=0, max_value=(1 << 36) - 1))
def test_every_latency_falls_inside_its_bucket(us: int) -> None:
    lo, hi = bucket_bounds(bucket_index(us))
    assert lo <= us < hi
    assert (hi - lo) <= max(1, lo / 8)


def test_bucket_indexes_are_monotonic_and_bounded() -> None:
    previous = -1
    for us in range(0, 70000):
        index = bucket_index(us)
        assert index >= previous
        previous = index
    assert bucket_index(10**15) == NUM_BUCKETS - 1


def test_percentile_of_known_distribution() -> None:
    hist = [0] * NUM_BUCKETS
    for us in [1000] * 90 + [50000] * 10:  # 90 requests at 1 ms, 10 at 50 ms
        hist[bucket_index(us)] += 1
    p50 = percentile(hist, 0.5)
    p99 = percentile(hist, 0.99)
    assert p50 is not None and abs(p50 - 0.001) / 0.001 < 0.07
    assert p99 is not None and abs(p99 - 0.050) / 0.050 < 0.07


def test_percentile_of_empty_histogram_is_none() -> None:
    assert percentile([0] * NUM_BUCKETS, 0.99) is None


def test_prometheus_buckets_are_cumulative_and_end_with_the_total() -> None:
    pairs = [(bucket_index(300), 5), (bucket_index(4000), 3), (bucket_index(10**8), 1)]
    counts = prometheus_buckets(pairs)
    assert counts == sorted(counts)
    assert counts[0] == 5  # ≤ 0.5 ms
    assert counts[-1] == 9
