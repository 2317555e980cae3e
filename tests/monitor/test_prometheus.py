"""PrometheusSource: an alarm's datapoints are a PromQL query evaluated at each period's end,
read from a real Prometheus (Debian's) that scrapes a real router."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sluicegate.errors import AuthError, SluicegateError, SpecError, TransientError
from sluicegate.monitor.alarms import (
    AlarmState,
    Datapoint,
    Evaluation,
    evaluate,
    evaluation_range,
    period_starts,
)
from sluicegate.monitor.prometheus import (
    MAX_POINTS,
    Chunk,
    PrometheusQueryError,
    PrometheusSource,
    PrometheusUnavailableError,
    datapoints_from_series,
    plan_chunks,
)
from sluicegate.spec import AlarmSpec, MetricSpec
from tests._support import free_port, router_config
from tests._support.prometheus import PrometheusServer
from tests._support.rawhttp import get_many
from tests.conftest import AppFactory, RouterFactory


def promql(query: str) -> MetricSpec:
    return MetricSpec(source="prometheus", query=query)


def fetch(
    url: str, query: str, *, end: int, period: int, count: int, timeout: float = 10.0
) -> list[Datapoint]:
    async def run() -> list[Datapoint]:
        async with PrometheusSource(url, timeout=timeout) as source:
            return await source.datapoints(
                promql(query), "Average", end=end, period=period, count=count
            )

    return asyncio.run(run())


# --- pure: which calls, which datapoints -------------------------------------------------


def test_one_call_evaluates_the_query_at_every_periods_end() -> None:
    assert plan_chunks(1000, 60, 5) == [Chunk(760, 1000, 60)]
    assert plan_chunks(1000, 60, 1) == [Chunk(1000, 1000, 60)]


def test_more_points_than_prometheus_allows_are_split_into_contiguous_calls() -> None:
    chunks = plan_chunks(100_000, 1, 25_000)
    assert [c.points for c in chunks] == [MAX_POINTS, MAX_POINTS, 3000]
    assert chunks[0].start == 100_000 - 25_000 + 1
    assert chunks[-1].end == 100_000
    assert all(b.start == a.end + 1 for a, b in itertools.pairwise(chunks))
    assert plan_chunks(100, 10, 5, max_points=2) == [
        Chunk(60, 70, 10),
        Chunk(80, 90, 10),
        Chunk(100, 100, 10),
    ]


def test_a_value_at_a_periods_end_is_that_periods_datapoint() -> None:
    series = [{"metric": {}, "values": [[760, "0.5"], [880, "2"], [1000, "1e-3"]]}]
    points = datapoints_from_series("q", series, end=1000, period=60, count=5)
    assert points == [
        Datapoint(700, 0.5, 1),
        Datapoint(760, None, 0),
        Datapoint(820, 2.0, 1),
        Datapoint(880, None, 0),
        Datapoint(940, 0.001, 1),
    ]


def test_nan_and_infinities_are_missing_and_stray_timestamps_ignored() -> None:
    series = [
        {
            "metric": {"job": "a"},
            "values": [[20, "NaN"], [30, "+Inf"], [40, "-Inf"], [45, "7"], [50, "3"], [60, "9"]],
        }
    ]
    points = datapoints_from_series("q", series, end=50, period=10, count=4)
    assert [p.value for p in points] == [None, None, None, 3.0]
    assert [p.samples for p in points] == [0, 0, 0, 1]


def test_no_series_is_all_missing_not_an_error() -> None:
    points = datapoints_from_series("q", [], end=50, period=10, count=3)
    assert points == [Datapoint(t, None, 0) for t in (20, 30, 40)]


def test_chunks_of_one_series_join_into_one() -> None:
    series = [
        {"metric": {"job": "a"}, "values": [[30, "1"]]},
        {"metric": {"job": "a"}, "values": [[40, "2"], [50, "3"]]},
    ]
    points = datapoints_from_series("q", series, end=50, period=10, count=3)
    assert [p.value for p in points] == [1.0, 2.0, 3.0]


def test_several_series_are_an_error_that_says_to_aggregate() -> None:
    series = [{"metric": {"code": c}, "values": [[50, "1"]]} for c in ("2xx", "5xx", "4xx", "1xx")]
    with pytest.raises(PrometheusQueryError) as info:
        datapoints_from_series("rate(x[1m])", series, end=50, period=10, count=3)
    assert info.value.problems[0].path == "query"
    assert info.value.problems[0].message == (
        'the query returned 4 series ({code="1xx"}, {code="2xx"}, {code="4xx"}, ...) but an'
        " alarm needs one number per period: aggregate them in the query, e.g. sum(...),"
        " max(...) or sum by () (...)"
    )
    assert "prometheus query 'rate(x[1m])'" in str(info.value)


# --- a real Prometheus ---------------------------------------------------------------------


def test_each_datapoint_is_the_query_at_its_periods_end(prometheus: PrometheusServer) -> None:
    end = int(time.time()) // 60 * 60
    points = fetch(prometheus.url, "time()", end=end, period=60, count=5)
    starts = period_starts(end, 60, 5)
    assert [p.timestamp for p in points] == starts
    assert [p.value for p in points] == [float(s + 60) for s in starts]
    assert [p.samples for p in points] == [1] * 5


def test_a_range_longer_than_prometheus_allows_is_read_in_several_calls(
    prometheus: PrometheusServer,
) -> None:
    end = int(time.time())
    points = fetch(prometheus.url, "time()", end=end, period=1, count=25_000)
    assert len(points) == 25_000
    assert [p.value for p in points] == [float(end - 25_000 + 1 + i) for i in range(25_000)]


def test_nan_and_inf_from_prometheus_are_missing(prometheus: PrometheusServer) -> None:
    end = int(time.time())
    for query in ("vector(0) / vector(0)", "vector(1) / vector(0)"):
        points = fetch(prometheus.url, query, end=end, period=10, count=3)
        assert [(p.value, p.samples) for p in points] == [(None, 0)] * 3, query


def test_a_query_with_several_series_is_refused_with_advice(
    prometheus: PrometheusServer,
) -> None:
    query = (
        'label_replace(vector(1), "code", "2xx", "", "")'
        ' or label_replace(vector(2), "code", "5xx", "", "")'
    )
    with pytest.raises(
        PrometheusQueryError,
        match=r"returned 2 series \(\{code=\"2xx\"\},"
        r" \{code=\"5xx\"\}\) .* aggregate them in the query",
    ):
        fetch(prometheus.url, query, end=int(time.time()), period=10, count=3)


def test_bad_promql_is_a_clear_error_quoting_prometheus(prometheus: PrometheusServer) -> None:
    query = 'sum(rate(sluicegate_router_requests_total{code="5xx"}[1m])'
    with pytest.raises(PrometheusQueryError) as info:
        fetch(prometheus.url, query, end=int(time.time()), period=10, count=3)
    assert isinstance(info.value, SpecError)
    problem = info.value.problems[0]
    assert problem.path == "query"
    assert problem.message == (
        "Prometheus refused the query (bad_data): 1:59: parse error: unclosed left parenthesis"
    )
    assert query in str(info.value)


def test_an_unreachable_prometheus_is_a_transient_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PrometheusUnavailableError, match=f"cannot reach Prometheus at {url}"):
        fetch(url, "up", end=int(time.time()), period=10, count=3)
    assert issubclass(PrometheusUnavailableError, TransientError)


def test_a_prometheus_that_does_not_answer_times_out_as_a_transient_error() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(PrometheusUnavailableError, match=r"did not answer within 0\.3s"):
            fetch(url, "up", end=int(time.time()), period=10, count=3, timeout=0.3)


def test_a_server_that_is_not_prometheus_is_named(app_factory: AppFactory) -> None:
    app = app_factory()
    with pytest.raises(SluicegateError, match=r"answered \d+: .*is .* a Prometheus server\?"):
        fetch(app.url, "up", end=int(time.time()), period=10, count=3)


def test_the_router_admin_without_a_token_is_an_auth_error(router_factory: RouterFactory) -> None:
    # The router's admin port answers 401 like a Prometheus behind an authenticating proxy.
    router = router_factory(router_config({"g": ["127.0.0.1:1"]}))
    with pytest.raises(AuthError, match="answered 401"):
        fetch(router.admin_url, "up", end=int(time.time()), period=10, count=3)


# --- an alarm on PromQL over real router traffic ----------------------------------------


class Load:
    """Requests through the router in a background thread until stopped."""

    def __init__(self, port: int) -> None:
        self.port, self.stop = port, threading.Event()
        self.statuses: dict[int, int] = {}
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            for r in get_many(self.port, 20):
                self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
            time.sleep(0.02)


@pytest.fixture
def load() -> Iterator[list[Load]]:
    started: list[Load] = []
    yield started
    for item in started:
        item.stop.set()
        item.thread.join(10)


def error_ratio(job: str) -> str:
    total = f'sluicegate_router_requests_total{{job="{job}",listener="web"}}'
    errors = f'sluicegate_router_requests_total{{job="{job}",listener="web",code="5xx"}}'
    return f"sum(rate({errors}[5s])) / sum(rate({total}[5s]))"


async def evaluate_until(
    source: PrometheusSource, spec: AlarmSpec, state: AlarmState, done: Any, timeout: float = 45.0
) -> Evaluation:
    """Evaluate the alarm once a second (as the alarm loop would) until ``done(evaluation)``."""
    metric, statistic = spec.queries["m1"]
    period = int(spec.period)
    deadline = time.monotonic() + timeout
    history = []
    while True:
        end = int(time.time()) // period * period
        points = await source.datapoints(
            metric, statistic, end=end, period=period, count=evaluation_range(spec)
        )
        evaluation = evaluate(spec, points, state)
        state = evaluation.state
        history.append(f"{evaluation.state}: {[p.value for p in points]}")
        if done(evaluation):
            return evaluation
        assert time.monotonic() < deadline, "\n".join(history[-10:])
        await asyncio.sleep(0.5)


@pytest.mark.slow
def test_an_alarm_on_a_promql_expression_fires(
    prometheus: PrometheusServer,
    app_factory: AppFactory,
    router_factory: RouterFactory,
    load: list[Load],
) -> None:
    app = app_factory(version="v1")
    router = router_factory(router_config({"green": [app]}))
    job = prometheus.scrape_router(router)
    traffic = Load(router.listener_port())
    load.append(traffic)
    traffic.thread.start()
    spec = AlarmSpec.model_validate(
        {
            "name": "green-5xx-ratio",
            "metric": {"source": "prometheus", "query": error_ratio(job)},
            "period": "1s",
            "evaluation_periods": 3,
            "threshold": 0.5,
            "comparison": "GreaterThanThreshold",
        }
    )
    assert spec.min_samples == 0  # a PromQL ratio is not hidden by the 10-sample floor

    async def scenario() -> tuple[Evaluation, Evaluation, Evaluation]:
        async with PrometheusSource(prometheus.url) as source:
            healthy = await evaluate_until(
                source,
                spec,
                AlarmState.INSUFFICIENT_DATA,
                lambda e: e.state == AlarmState.OK and len(e.considered) == 3,
            )
            app.set_fail(500)
            firing = await evaluate_until(
                source, spec, healthy.state, lambda e: e.state == AlarmState.ALARM
            )
            # Once the 5 s rate window holds only failures, the ratio is exactly 1.
            settled = await evaluate_until(
                source,
                spec,
                firing.state,
                lambda e: [p.value for p in e.considered] == [1.0, 1.0, 1.0],
            )
            return healthy, firing, settled

    healthy, firing, settled = asyncio.run(scenario())
    assert [p.value for p in healthy.considered] == [0.0, 0.0, 0.0]
    assert healthy.reason.startswith("Threshold Crossed: 3 out of the last 3 datapoints")
    assert firing.state == AlarmState.ALARM
    assert all(p.value is not None and p.value > 0.5 for p in firing.considered)
    assert firing.reason.startswith("Threshold Crossed: 3 out of the last 3 datapoints")
    assert "greater than the threshold (0.5)" in firing.reason
    assert settled.state == AlarmState.ALARM
    assert traffic.statuses.get(500, 0) > 0 and traffic.statuses.get(200, 0) > 0
