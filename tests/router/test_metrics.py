"""Per-second series: counts land in their second, rotate into a bounded ring, merge exactly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sluicegate.router import MetricsRegistry, bucket_index
from sluicegate.router._exposition import prometheus_text, summarize
from sluicegate.router._metrics import merge_snapshots


def test_requests_are_counted_by_status_class_in_the_current_second() -> None:
    reg = MetricsRegistry(window_seconds=10)
    reg.rotate(100)
    s = reg.get("web", "blue")
    for status in (200, 201, 302, 404, 503):
        s.record(status, 0.001)
    s.record_router_error(502, 0.002)
    s.record_router_error(504, 1.0)
    reg.rotate(101)
    [(t, c)] = list(s.ring)
    assert t == 100
    assert (c.requests, c.status[2], c.status[3], c.status[4], c.status[5]) == (7, 2, 1, 1, 3)
    assert (c.r502, c.r504) == (1, 1)


def test_ring_keeps_only_the_window() -> None:
    reg = MetricsRegistry(window_seconds=3)
    reg.rotate(1)
    s = reg.get("web", "blue")
    for second in range(2, 10):
        s.record(200, 0.001)
        reg.rotate(second)
    assert [t for t, _ in s.ring] == [6, 7, 8]
    assert s.total.requests == 8  # totals keep counting for Prometheus


def test_snapshots_from_two_workers_merge_by_second() -> None:
    snaps = []
    for n in (3, 4):
        reg = MetricsRegistry(window_seconds=60)
        reg.rotate(50)
        for _ in range(n):
            reg.get("web", "green").record(200, 0.01)
        reg.rotate(51)
        snaps.append(reg.snapshot(60))
    merged = merge_snapshots(snaps)
    [series] = merged["series"]
    assert series["seconds"][0][0] == 50
    assert series["seconds"][0][1]["requests"] == 7
    assert series["total"]["requests"] == 7


def test_summary_reports_window_sums_and_percentiles() -> None:
    reg = MetricsRegistry(window_seconds=60)
    reg.rotate(10)
    s = reg.get("web", "blue")
    for _ in range(99):
        s.record(200, 0.001)
    s.record(500, 0.2)
    reg.rotate(11)
    [row] = summarize(reg.snapshot(60), 60)["series"]
    assert (row["requests"], row["2xx"], row["5xx"]) == (100, 99, 1)
    assert 0.9 < row["p50_ms"] < 1.1
    assert row["seconds"][0]["t"] == 10


def test_prometheus_text_has_counters_histogram_and_gauges() -> None:
    reg = MetricsRegistry(window_seconds=60)
    reg.rotate(10)
    reg.get("web", "blue").record(200, 0.003)
    status = {
        "groups": {"blue": {"fail_open": False, "targets": {"127.0.0.1:1": {"healthy": True}}}},
        "listeners": {"web": {"default": {"blue": 100}}},
    }
    text = prometheus_text(reg.snapshot(0), status)
    assert (
        'sluicegate_router_requests_total{listener="web",target_group="blue",code="2xx"} 1' in text
    )
    assert (
        'sluicegate_router_request_duration_seconds_bucket{listener="web",'
        'target_group="blue",le="0.005"} 1'
    ) in text
    assert 'sluicegate_router_weight{listener="web",target_group="blue"} 100' in text
    assert 'sluicegate_router_target_healthy{target_group="blue",target="127.0.0.1:1"} 1' in text


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_record_files_latency_in_the_same_bucket_as_bucket_index(latency: float) -> None:
    reg = MetricsRegistry(window_seconds=10)
    s = reg.get("web", "blue")
    s.record(200, latency)
    assert s.cur.hist.index(1) == bucket_index(int(latency * 1e6))


def test_a_registry_with_metrics_off_counts_nothing() -> None:
    reg = MetricsRegistry(window_seconds=10, enabled=False)
    reg.rotate(1)
    s = reg.get("web", "blue")
    s.record(200, 0.01)
    s.record_router_error(502, 0.01)
    reg.rotate(2)
    assert s.total.requests == 0
    assert [c.requests for _, c in s.ring] == [0]


def test_open_second_is_shown_only_on_request_and_merges_across_workers() -> None:
    snaps = []
    for n in (2, 3):
        reg = MetricsRegistry(window_seconds=60)
        reg.rotate(20)
        reg.get("web", "green").record(200, 0.001)
        reg.rotate(21)
        for _ in range(n):
            reg.get("web", "green").record(500, 0.001)  # second 21, still counting
        snaps.append(reg.snapshot(60))
    merged = merge_snapshots(snaps)
    [closed_only] = summarize(merged, 60)["series"]
    assert [p["t"] for p in closed_only["seconds"]] == [20]
    [with_open] = summarize(merged, 60, hist=True, include_open=True)["series"]
    last = with_open["seconds"][-1]
    assert (last["t"], last["requests"], last["5xx"], last["open"]) == (21, 5, 5, True)
    assert sum(last["hist"].values()) == 5
    assert (with_open["requests"], with_open["5xx"]) == (2, 0)  # sums stay closed-only
