"""Metric rollups: minutes per series, rewritten idempotently, dropped after retention."""

from __future__ import annotations

from sluicegate.store import MetricRollup, Store

M0 = 1_700_000_040  # a minute's start


def row(minute: int, count: int = 2, dims: dict[str, str] | None = None) -> MetricRollup:
    return MetricRollup(
        "push",
        "latency_ms",
        dims or {"route": "/buy"},
        minute,
        count,
        10.0 * count,
        1.0,
        9.0,
        {5: count},
    )


def test_minutes_are_read_back_by_series_and_range(store: Store) -> None:
    store.metric_rollups.write(
        [row(M0), row(M0 + 60), row(M0 + 120), row(M0, dims={"route": "/home"})]
    )
    got = store.metric_rollups.query("push", "latency_ms", {"route": "/buy"}, M0 + 60, M0 + 180)
    assert [(r.minute, r.count, r.hist, r.dimensions) for r in got] == [
        (M0 + 60, 2, {5: 2}, {"route": "/buy"}),
        (M0 + 120, 2, {5: 2}, {"route": "/buy"}),
    ]
    assert store.metric_rollups.query("router", "latency_ms", {"route": "/buy"}, 0, M0 * 2) == []


def test_writing_a_minute_again_replaces_it(store: Store) -> None:
    store.metric_rollups.write([row(M0, count=2)])
    store.metric_rollups.write([row(M0, count=5)])
    [only] = store.metric_rollups.query("push", "latency_ms", {"route": "/buy"}, 0, M0 * 2)
    assert (only.count, only.total) == (5, 50.0)


def test_old_minutes_are_deleted(store: Store) -> None:
    store.metric_rollups.write([row(M0), row(M0 + 60)])
    assert store.metric_rollups.delete_before(M0 + 60) == 1
    got = store.metric_rollups.query("push", "latency_ms", {"route": "/buy"}, 0, M0 * 2)
    assert [r.minute for r in got] == [M0 + 60]
