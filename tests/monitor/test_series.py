"""Pushed metrics: the per-second series store, its buckets, its bounds and the push batch."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluicegate.errors import SpecError
from sluicegate.monitor._push_batch import parse_batch
from sluicegate.monitor.series import (
    Observation,
    PushSource,
    SeriesLimitError,
    SeriesStore,
    bucket_of,
    bucket_value,
)
from sluicegate.monitor.sources import Sources
from sluicegate.spec import MetricSpec

T0 = 1_700_000_000  # a whole minute


def obs(t: int, *values: float, name: str = "latency", **dims: str) -> Observation:
    return Observation(name, dims, t, list(values))


def values_of(points: list[Any]) -> list[float | None]:
    return [p.value for p in points]


def test_values_summarise_per_period_with_every_aggregate_statistic() -> None:
    store = SeriesStore()
    store.put([obs(T0, 1, 3), obs(T0 + 1, 5), obs(T0 + 3, 7)], now=T0 + 4)
    point = dict(end=T0 + 4, period=2, count=2)
    assert values_of(store.datapoints("latency", {}, "Sum", **point)) == [9.0, 7.0]
    assert values_of(store.datapoints("latency", {}, "SampleCount", **point)) == [3.0, 1.0]
    assert values_of(store.datapoints("latency", {}, "Average", **point)) == [3.0, 7.0]
    assert values_of(store.datapoints("latency", {}, "Minimum", **point)) == [1.0, 7.0]
    assert values_of(store.datapoints("latency", {}, "Maximum", **point)) == [5.0, 7.0]
    assert [p.samples for p in store.datapoints("latency", {}, "Sum", **point)] == [3, 1]


def test_periods_without_data_and_unknown_series_are_missing() -> None:
    store = SeriesStore()
    store.put([obs(T0, 1)], now=T0 + 1)
    got = store.datapoints("latency", {}, "Sum", end=T0 + 3, period=1, count=3)
    assert [(p.timestamp, p.value) for p in got] == [(T0, 1.0), (T0 + 1, None), (T0 + 2, None)]
    unknown = store.datapoints("nope", {}, "p99", end=T0 + 3, period=1, count=2)
    assert values_of(unknown) == [None, None]


def test_a_series_is_its_name_and_full_dimension_set_in_any_order() -> None:
    store = SeriesStore()
    store.put(
        [
            Observation("hits", {"a": "1", "b": "2"}, T0, [1.0]),
            Observation("hits", {"b": "2", "a": "1"}, T0, [1.0]),
            Observation("hits", {"a": "1"}, T0, [5.0]),
        ],
        now=T0,
    )
    assert len(store) == 2
    both = store.datapoints("hits", {"b": "2", "a": "1"}, "Sum", end=T0 + 1, period=1, count=1)
    assert values_of(both) == [2.0]


def test_counts_weight_values_and_a_zero_count_adds_nothing() -> None:
    store = SeriesStore()
    store.put([Observation("lat", {}, T0, [10.0, 20.0, 99.0], [3, 1, 0])], now=T0)
    point = dict(end=T0 + 1, period=1, count=1)
    assert values_of(store.datapoints("lat", {}, "Sum", **point)) == [50.0]
    assert values_of(store.datapoints("lat", {}, "Maximum", **point)) == [20.0]
    assert values_of(store.datapoints("lat", {}, "SampleCount", **point)) == [4.0]


def test_percentiles_come_from_the_buckets_clamped_to_the_periods_range() -> None:
    store = SeriesStore()
    samples = [float(v) for v in range(1, 1001)]
    store.put(
        [
            Observation("lat", {}, T0, samples[:150]),
            *[
                Observation("lat", {}, T0 + 1 + i // 150, samples[i : i + 150])
                for i in range(150, 1000, 150)
            ],
        ],
        now=T0 + 10,
    )
    [p99] = store.datapoints("lat", {}, "p99", end=T0 + 10, period=10, count=1)
    [p50] = store.datapoints("lat", {}, "p50", end=T0 + 10, period=10, count=1)
    assert p99.samples == 1000
    assert p99.value is not None and abs(p99.value - 990) / 990 <= 0.0625
    assert p50.value is not None and abs(p50.value - 500) / 500 <= 0.0625
    single = SeriesStore()
    single.put([obs(T0, 0.123), obs(T0 + 1, 0.123)], now=T0 + 2)
    assert values_of(single.datapoints("latency", {}, "p90", end=T0 + 2, period=2, count=1)) == [
        0.123
    ]


def test_a_statistic_set_adds_to_aggregates_but_not_to_percentiles() -> None:
    store = SeriesStore()
    store.put(
        [Observation("q", {}, T0, stats=(4, 10.0, 1.0, 4.0)), Observation("q", {}, T0, [8.0])],
        now=T0,
    )
    point = dict(end=T0 + 1, period=1, count=1)
    assert values_of(store.datapoints("q", {}, "Sum", **point)) == [18.0]
    assert values_of(store.datapoints("q", {}, "SampleCount", **point)) == [5.0]
    [p] = store.datapoints("q", {}, "p50", **point)
    assert (p.value, p.samples) == (8.0, 1)
    only_stats = SeriesStore()
    only_stats.put([Observation("q", {}, T0, stats=(4, 10.0, 1.0, 4.0))], now=T0)
    assert values_of(only_stats.datapoints("q", {}, "p50", **point)) == [None]


def test_seconds_older_than_the_window_are_dropped_and_empty_series_forgotten() -> None:
    store = SeriesStore(window=60)
    store.put([obs(T0, 1.0, name="old"), obs(T0 + 50, 2.0, name="new")], now=T0 + 50)
    store.prune(T0 + 61, force=True)
    assert store.keys() == [("new", ())]
    assert store.seconds_held() == 1


def test_a_push_beyond_the_series_limit_is_refused_whole() -> None:
    store = SeriesStore(max_series=2)
    store.put([obs(T0, 1.0, name="a")], now=T0)
    with pytest.raises(SeriesLimitError, match="at most 2"):
        store.put([obs(T0, 1.0, name="a"), obs(T0, 1.0, name="b"), obs(T0, 1.0, name="c")], now=T0)
    assert store.keys() == [("a", ())]
    assert values_of(store.datapoints("a", {}, "Sum", end=T0 + 1, period=1, count=1)) == [1.0]
    store.put([obs(T0, 1.0, name="a"), obs(T0, 1.0, name="b")], now=T0)  # the last free slot
    assert len(store) == 2


def test_series_gone_from_the_window_free_their_place_under_the_limit() -> None:
    store = SeriesStore(window=60, max_series=1)
    store.put([obs(T0, 1.0, name="a")], now=T0)
    store.put([obs(T0 + 70, 1.0, name="b")], now=T0 + 70)  # "a" has left the window
    assert store.keys() == [("b", ())]


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300))
def test_a_bucket_stands_for_its_values_within_six_and_a_quarter_percent(v: float) -> None:
    if v == 0 or abs(v) < 1e-300:
        return
    rep = bucket_value(bucket_of(v))
    assert math.copysign(1, rep) == math.copysign(1, v)
    assert abs(rep - v) <= 0.0625 * abs(v)


@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
        min_size=2,
        max_size=2,
    )
)
def test_buckets_keep_the_order_of_values(pair: list[float]) -> None:
    a, b = sorted(pair)
    assert bucket_of(a) <= bucket_of(b)
    assert bucket_of(0.0) == 0


def test_the_push_source_answers_through_sources() -> None:
    store = SeriesStore()
    store.put([Observation("errors", {"service": "shop"}, T0, [1.0, 1.0])], now=T0)
    sources = Sources(push=PushSource(store))
    metric = MetricSpec(source="push", name="errors", dimensions={"service": "shop"})
    got = asyncio.run(sources.datapoints(metric, "Sum", end=T0 + 1, period=1, count=2))
    assert values_of(got) == [None, 2.0]


# --- the push batch -------------------------------------------------------------------------


def problems(body: Any, now: float = T0, window: int = 3600) -> dict[str, str]:
    with pytest.raises(SpecError) as err:
        parse_batch(body, now, window)
    return {p.path: p.message for p in err.value.problems}


def test_a_valid_batch_becomes_observations() -> None:
    batch = parse_batch(
        {
            "metrics": [
                {"name": "lat", "dimensions": {"route": "/buy"}, "timestamp": T0 - 5, "value": 1.5},
                {
                    "name": "lat",
                    "values": [1, 2],
                    "counts": [3, 0],
                    "timestamp": "2023-11-14T22:13:10Z",
                },
                {
                    "name": "q",
                    "statistic_values": {"sample_count": 2, "sum": 3, "minimum": 1, "maximum": 2},
                },
            ]
        },
        now=T0,
        window=3600,
    )
    assert [(o.name, dict(o.dimensions), o.t) for o in batch] == [
        ("lat", {"route": "/buy"}, T0 - 5),
        ("lat", {}, 1_699_999_990),
        ("q", {}, T0),
    ]
    assert (batch[0].values, batch[1].counts, batch[2].stats) == ([1.5], [3, 0], (2, 3, 1, 2))


def test_each_bad_field_is_named_by_its_path() -> None:
    found = problems(
        {
            "metrics": [
                {"name": "ok", "value": 1},
                {"name": "", "value": "x"},
                {"name": "a", "values": [1, float("inf")], "counts": [1]},
                {"name": "a", "value": 1, "values": [1]},
                {
                    "name": "a",
                    "statistic_values": {"sample_count": 0, "sum": 1, "minimum": 2, "maximum": 1},
                },
                {"name": "a", "value": 1, "dimensions": {"k": 5}, "extra": True},
                {"name": "a", "value": 1, "timestamp": (T0 + 3600) * 1000},
                {"name": "a", "value": 1, "timestamp": T0 - 7200},
            ]
        }
    )
    assert set(found) == {
        "metrics[1].name",
        "metrics[1].value",
        "metrics[2].values[1]",
        "metrics[2].counts",
        "metrics[3]",
        "metrics[4].statistic_values.sample_count",
        "metrics[5].dimensions.k",
        "metrics[5].extra",
        "metrics[6].timestamp",
        "metrics[7].timestamp",
    }
    assert "milliseconds" in found["metrics[6].timestamp"]
    assert "keeps 3600s" in found["metrics[7].timestamp"]


def test_batch_limits_are_enforced() -> None:
    assert "at most 1000" in problems({"metrics": [{"name": "a", "value": 1}] * 1001})["metrics"]
    assert (
        "at most 150"
        in problems({"metrics": [{"name": "a", "values": [1] * 151}]})["metrics[0].values"]
    )
    assert problems({"data": []}) == {"": 'expected {"metrics": [...]}'}
    assert (
        "outside"
        in problems(
            {
                "metrics": [
                    {
                        "name": "a",
                        "statistic_values": {
                            "sample_count": 2,
                            "sum": 100,
                            "minimum": 1,
                            "maximum": 2,
                        },
                    }
                ]
            }
        )["metrics[0].statistic_values.sum"]
    )


def test_counts_that_would_overflow_the_stored_rollups_are_refused() -> None:
    found = problems(
        {
            "metrics": [
                {"name": "a", "values": [1, 2], "counts": [10**9, 10**20]},
                {
                    "name": "b",
                    "statistic_values": {
                        "sample_count": 1e300,
                        "sum": 1e300,
                        "minimum": 1,
                        "maximum": 1,
                    },
                },
            ]
        }
    )
    assert found == {
        "metrics[0].counts[1]": "must be at most 1,000,000,000",
        "metrics[1].statistic_values.sample_count": "must be at most 1,000,000,000",
    }


def test_pushes_to_the_same_second_merge_their_values_and_buckets() -> None:
    store = SeriesStore()
    store.put([obs(T0, 1.0), obs(T0, 1.0)], now=T0)  # one bucket, twice
    store.put([obs(T0, 100.0, 1000.0)], now=T0)  # now three buckets
    point = dict(end=T0 + 1, period=1, count=1)
    assert values_of(store.datapoints("latency", {}, "SampleCount", **point)) == [4.0]
    assert values_of(store.datapoints("latency", {}, "Sum", **point)) == [1102.0]
    [p25] = store.datapoints("latency", {}, "p25", **point)
    [p100] = store.datapoints("latency", {}, "p100", **point)
    assert p25.value is not None and 1.0 <= p25.value <= 1.0625
    assert p100.value is not None and abs(p100.value - 1000) <= 62.5
    assert p100.samples == 4
