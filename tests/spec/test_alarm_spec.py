"""Alarm specs: what a valid alarm means, every mistake reported at its field, and the
expression language that parses arithmetic over metric ids and nothing else."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from sluicegate.errors import SpecError
from sluicegate.spec import AlarmSpec, parse_document, parse_statistic
from sluicegate.spec._expression import BinOp, Neg, Num, Ref, evaluate_expr, parse_expression

ERROR_RATE_YAML = """\
name: green-5xx-rate
metrics:
  e: {source: router, name: 5xx, dimensions: {listener: web, target_group: green}}
  r: {source: router, name: requests, dimensions: {listener: web, target_group: green}}
expression: e / r
statistic: Sum
period: 1s
evaluation_periods: 3
datapoints_to_alarm: 2
threshold: 0.05
comparison: GreaterThanThreshold
treat_missing_data: notBreaching
"""

LATENCY: dict[str, Any] = {
    "name": "green-p99",
    "metric": {
        "source": "router",
        "name": "latency",
        "dimensions": {"listener": "web", "target_group": "green"},
    },
    "statistic": "p99",
    "period": "10s",
    "evaluation_periods": 3,
    "threshold": 0.25,
    "comparison": "GreaterThanThreshold",
}


def doc(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(LATENCY)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def problems_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse_document(AlarmSpec, data, source="alarm.yaml")
    return [(p.path, p.message) for p in info.value.problems]


def only_problem(data: dict[str, Any]) -> tuple[str, str]:
    problems = problems_of(data)
    assert len(problems) == 1, problems
    return problems[0]


# --- valid alarms ------------------------------------------------------------------------


def test_an_error_rate_alarm_from_yaml() -> None:
    spec = parse_document(AlarmSpec, yaml.safe_load(ERROR_RATE_YAML))
    assert spec.metric is None
    assert spec.tree == BinOp("/", Ref("e"), Ref("r"))
    assert spec.period == 1.0
    assert (spec.evaluation_periods, spec.datapoints_to_alarm) == (3, 2)
    assert spec.treat_missing_data == "notBreaching"
    assert spec.min_samples == 10  # a ratio
    assert {k: stat for k, (_, stat) in spec.queries.items()} == {"e": "Sum", "r": "Sum"}
    assert spec.percentile is None


def test_defaults_of_a_percentile_alarm() -> None:
    spec = parse_document(AlarmSpec, doc())
    assert spec.period == 10.0
    assert spec.datapoints_to_alarm == 3  # M defaults to N
    assert spec.treat_missing_data == "missing"
    assert spec.min_samples == 10
    assert spec.percentile == pytest.approx(0.99)
    assert spec.low_sample_mode == "evaluate"
    assert spec.queries["m1"][1] == "p99"


def test_a_sum_alarm_has_no_sample_floor_and_a_metric_may_name_its_own_statistic() -> None:
    assert parse_document(AlarmSpec, doc(statistic="Sum")).min_samples == 0
    data = yaml.safe_load(ERROR_RATE_YAML)
    data["expression"] = "a - b"
    data["metrics"] = {
        "a": {"source": "push", "name": "latency", "statistic": "Maximum"},
        "b": {"source": "prometheus", "query": "histogram_quantile(0.99, x)"},
    }
    spec = parse_document(AlarmSpec, data)
    assert spec.min_samples == 0  # no division, no percentile
    assert {k: stat for k, (_, stat) in spec.queries.items()} == {"a": "Maximum", "b": "Sum"}


@pytest.mark.parametrize(
    ("text", "name", "q"),
    [
        ("Average", "Average", None),
        ("SampleCount", "SampleCount", None),
        ("Minimum", "Minimum", None),
        ("Maximum", "Maximum", None),
        ("Sum", "Sum", None),
        ("p99", "p99", 0.99),
        ("p99.9", "p99.9", 0.999),
        ("p50", "p50", 0.5),
        ("p100", "p100", 1.0),
        ("P95", "p95", 0.95),
    ],
)
def test_statistics(text: str, name: str, q: float | None) -> None:
    got_name, got_q = parse_statistic(text)
    assert got_name == name
    assert got_q == (None if q is None else pytest.approx(q))


# --- every mistake at its field ----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        (
            {"statistic": "avg"},
            "statistic",
            "'avg' is not a statistic; use one of SampleCount,"
            " Average, Sum, Minimum, Maximum or a percentile like p99 or p99.9",
        ),
        (
            {"statistic": "p0"},
            "statistic",
            "percentile 'p0' must be above p0 and at most p100"
            " (use Minimum for the smallest value)",
        ),
        (
            {"statistic": "p100.5"},
            "statistic",
            "percentile 'p100.5' must be above p0 and at most"
            " p100 (use Minimum for the smallest value)",
        ),
        ({"period": "500ms"}, "period", "period must be a whole number of seconds, at least 1s"),
        ({"period": "1.5s"}, "period", "period must be a whole number of seconds, at least 1s"),
        (
            {"evaluation_periods": 0},
            "evaluation_periods",
            "Input should be greater than or equal to 1",
        ),
        (
            {"datapoints_to_alarm": 4},
            "datapoints_to_alarm",
            "datapoints_to_alarm (4) cannot exceed evaluation_periods (3)",
        ),
        (
            {"datapoints_to_alarm": 0},
            "datapoints_to_alarm",
            "Input should be greater than or equal to 1",
        ),
        (
            {"comparison": "GreaterThan"},
            "comparison",
            "Input should be 'GreaterThanThreshold',"
            " 'GreaterThanOrEqualToThreshold', 'LessThanThreshold' or 'LessThanOrEqualToThreshold'",
        ),
        (
            {"treat_missing_data": "zero"},
            "treat_missing_data",
            "Input should be 'missing', 'ignore', 'breaching' or 'notBreaching'",
        ),
        ({"threshold": "nan"}, "threshold", "threshold must be a finite number"),
        ({"min_samples": -1}, "min_samples", "Input should be greater than or equal to 0"),
        (
            {"name": "no spaces"},
            "name",
            "String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'",
        ),
        (
            {"period": "1h", "evaluation_periods": 200},
            "evaluation_periods",
            "period x evaluation_periods is 720000s, more than the 604800s allowed",
        ),
        (
            {"period": "1m", "evaluation_periods": 1441},
            "evaluation_periods",
            "period x evaluation_periods is 86460s, more than the 86400s allowed",
        ),
        ({"statistic": None}, "statistic", "a metric alarm needs a statistic"),
        ({"metric": None}, "metric", "an alarm needs a metric, or metrics with an expression"),
        (
            {"expression": "m"},
            "metric",
            "give either metric, or metrics with an expression, not both",
        ),
        ({"metric": {"source": "router"}}, "metric.name", "a router metric needs a name"),
        (
            {"metric": {"source": "statsd", "name": "x"}},
            "metric.source",
            "Input should be 'router', 'push', 'prometheus' or 'exposures'",
        ),
        (
            {"metric": {"source": "prometheus", "query": " "}, "statistic": None},
            "metric.query",
            "a prometheus metric needs a PromQL query",
        ),
        (
            {"metric": {"source": "push", "name": "x", "query": "up"}},
            "metric.query",
            "only a prometheus metric has a query",
        ),
        (
            {"metric": {"source": "push", "name": "x", "unit": "ms"}},
            "metric.unit",
            "unknown key (valid: source, name, dimensions, query)",
        ),
        (
            {"evaluate_low_sample_count_percentile": "sometimes"},
            "evaluate_low_sample_count_percentile",
            "Input should be 'evaluate' or 'ignore'",
        ),
        (
            {"statistic": "Average", "evaluate_low_sample_count_percentile": "ignore"},
            "evaluate_low_sample_count_percentile",
            "only a percentile alarm on one metric has this setting",
        ),
    ],
)
def test_each_mistake_is_reported_at_its_field(
    changes: dict[str, Any], path: str, message: str
) -> None:
    assert only_problem(doc(**changes)) == (path, message)


def test_prometheus_metrics_take_their_labels_in_the_query() -> None:
    assert problems_of(
        doc(
            metric={"source": "prometheus", "name": "x", "query": "up", "dimensions": {"job": "a"}},
            statistic=None,
        )
    ) == [
        ("metric.name", "a prometheus metric is its query; drop name"),
        ("metric.dimensions", "put label matchers in the query instead"),
    ]


# --- prometheus metrics: one PromQL value per period --------------------------------------

ERROR_RATIO_QUERY = (
    'sum(rate(sluicegate_router_requests_total{code="5xx"}[1m]))'
    " / sum(rate(sluicegate_router_requests_total[1m]))"
)


def prom_doc(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metric": {"source": "prometheus", "query": ERROR_RATIO_QUERY},
        "statistic": None,
        "period": "1m",
        "threshold": 0.05,
    }
    return doc(**{**base, **changes})


def test_a_prometheus_alarm_needs_no_statistic_and_reads_its_value_as_average() -> None:
    spec = parse_document(AlarmSpec, prom_doc())
    assert spec.statistic is None
    assert spec.queries["m1"][1] == "Average"
    assert spec.percentile is None


def test_a_prometheus_ratio_has_no_sample_floor_so_it_is_never_always_missing() -> None:
    # A PromQL datapoint is one value (1 sample): the ratio default of 10 would hide them all.
    assert parse_document(AlarmSpec, prom_doc()).min_samples == 0
    assert parse_document(AlarmSpec, prom_doc(min_samples=1)).min_samples == 1


@pytest.mark.parametrize("stat", ["Average", "Sum", "Minimum", "Maximum"])
def test_a_prometheus_metric_accepts_the_identity_statistics(stat: str) -> None:
    assert parse_document(AlarmSpec, prom_doc(statistic=stat)).queries["m1"][1] == stat


@pytest.mark.parametrize("stat", ["p99", "SampleCount"])
def test_a_prometheus_metric_refuses_statistics_that_need_samples(stat: str) -> None:
    path, message = only_problem(prom_doc(statistic=stat))
    assert path == "statistic"
    assert message.startswith(
        f"{stat} on a prometheus metric: a prometheus metric is one PromQL value per period"
    )
    assert "histogram_quantile" in message


def test_min_samples_above_one_on_prometheus_samples_is_refused() -> None:
    path, message = only_problem(prom_doc(min_samples=10))
    assert path == "min_samples"
    assert "would make every datapoint missing" in message


def test_in_an_expression_prometheus_metrics_take_the_identity_and_others_the_alarms() -> None:
    data = yaml.safe_load(ERROR_RATE_YAML)
    data["statistic"] = "p99"
    data["expression"] = "lat - base"
    data["metrics"] = {
        "lat": {"source": "router", "name": "latency", "dimensions": {"listener": "web"}},
        "base": {"source": "prometheus", "query": "histogram_quantile(0.99, x)"},
    }
    spec = parse_document(AlarmSpec, data)
    assert {k: stat for k, (_, stat) in spec.queries.items()} == {"lat": "p99", "base": "Average"}
    assert spec.min_samples == 10  # the samples come from the router's latency

    data["statistic"] = None
    data["metrics"]["lat"]["statistic"] = "p90"
    assert parse_document(AlarmSpec, data).queries["base"][1] == "Average"

    data["metrics"]["base"]["statistic"] = "p50"
    assert only_problem(data)[0] == "metrics.base.statistic"


def test_an_expression_of_prometheus_metrics_only_has_no_sample_floor() -> None:
    data = yaml.safe_load(ERROR_RATE_YAML)
    data["metrics"] = {
        "e": {"source": "prometheus", "query": "sum(rate(e[1m]))"},
        "r": {"source": "prometheus", "query": "sum(rate(r[1m]))"},
    }
    assert parse_document(AlarmSpec, data).min_samples == 0
    data["metrics"]["r"] = {
        "source": "router",
        "name": "requests",
        "dimensions": {"listener": "shop"},
    }
    assert parse_document(AlarmSpec, data).min_samples == 10
    data["samples_from"] = "e"
    assert parse_document(AlarmSpec, data).min_samples == 0


def expression_doc(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ERROR_RATE_YAML)
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"expression": "e / q"}, "expression", "unknown metric id 'q' (known: e, r)"),
        ({"expression": "e / (r"}, "expression", "expected ')' at position 7, found the end"),
        (
            {"expression": None},
            "expression",
            "metrics need an expression combining them, e.g. e / r",
        ),
        ({"metrics": None}, "metrics", "an expression needs the metrics it reads"),
        ({"metrics": {}}, "metrics", "an expression reads 1 to 10 metrics"),
        (
            {"metrics": {f"m{i}": {"source": "push", "name": "x"} for i in range(11)}},
            "metrics",
            "an expression reads 1 to 10 metrics",
        ),
        (
            {"metrics": {"E": {"source": "push", "name": "x"}}, "expression": "E"},
            "metrics",
            "metric id 'E' must start with a lower-case letter and hold only letters, digits and _"
            " (at most 32)",
        ),
        ({"samples_from": "x"}, "samples_from", "unknown metric id 'x'"),
        ({"statistic": None}, "metrics.e.statistic", "give a statistic here or at the alarm level"),
        (
            {
                "metrics": {"e": {"source": "push", "name": "x", "statistic": "median"}},
                "expression": "e",
            },
            "metrics.e.statistic",
            "'median' is not a statistic; use one of"
            " SampleCount, Average, Sum, Minimum, Maximum or a percentile like p99 or p99.9",
        ),
    ],
)
def test_expression_mistakes_are_reported_at_their_field(
    changes: dict[str, Any], path: str, message: str
) -> None:
    data = expression_doc()
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    problems = problems_of(data)
    assert (path, message) in problems, problems


def test_the_file_name_and_every_problem_are_in_the_message() -> None:
    with pytest.raises(SpecError) as info:
        parse_document(AlarmSpec, doc(period="0s", statistic="p"), source="alarm.yaml")
    assert str(info.value).splitlines()[0] == "alarm.yaml: 2 problems:"


# --- the expression language -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("e / r", BinOp("/", Ref("e"), Ref("r"))),
        ("100 * e / r", BinOp("/", BinOp("*", Num(100.0), Ref("e")), Ref("r"))),
        ("a - b - c", BinOp("-", BinOp("-", Ref("a"), Ref("b")), Ref("c"))),
        ("a + b * c", BinOp("+", Ref("a"), BinOp("*", Ref("b"), Ref("c")))),
        ("(a + b) * c", BinOp("*", BinOp("+", Ref("a"), Ref("b")), Ref("c"))),
        ("-a + +1.5e3", BinOp("+", Neg(Ref("a")), Num(1500.0))),
        (" .5*x_1 ", BinOp("*", Num(0.5), Ref("x_1"))),
    ],
)
def test_expressions_parse_with_the_usual_precedence(text: str, tree: Any) -> None:
    assert parse_expression(text) == tree


@pytest.mark.parametrize(
    ("text", "values", "result"),
    [
        ("e / r", {"e": 5.0, "r": 100.0}, 0.05),
        ("(e + f) / r * 100", {"e": 1.0, "f": 1.0, "r": 50.0}, 4.0),
        ("-e", {"e": 2.0}, -2.0),
        ("e / r", {"e": 5.0, "r": 0.0}, None),  # division by zero: missing
        ("e / r", {"e": None, "r": 10.0}, None),  # a missing operand: missing
        ("e * 1e308 * 10", {"e": 1.0}, None),  # overflow: missing
    ],
)
def test_expressions_evaluate_to_a_value_or_missing(
    text: str, values: dict[str, float | None], result: float | None
) -> None:
    got = evaluate_expr(parse_expression(text), values)
    assert got == (None if result is None else pytest.approx(result))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('x')", 'unexpected "\'" at position 12'),
        ("e.real", "unexpected '.' at position 2"),
        ("e ** 2", "expected a number, a metric id or '(' at position 4, found '*'"),
        ("e // r", "expected a number, a metric id or '(' at position 4, found '/'"),
        ("e % r", "unexpected '%' at position 3"),
        ("e[0]", "unexpected '[' at position 2"),
        ("lambda: 1", "unexpected ':' at position 7"),
        ("f(x)", "unexpected '(' at position 2"),
        ("e r", "unexpected 'r' at position 3"),
        ("", "expression is empty"),
        ("(" * 40 + "e" + ")" * 40, "expression nests deeper than 32 levels"),
        ("e + " * 200 + "e", "expression is longer than 500 characters"),
        ("1e999", "number '1e999' at position 1 is too large"),
    ],
)
def test_anything_but_arithmetic_is_rejected(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_expression(text)
    assert str(info.value) == message


def test_router_metric_names_and_dimensions_are_checked() -> None:
    with pytest.raises(SpecError) as err:
        parse_document(
            AlarmSpec, doc(metric={"source": "router", "name": "errors", "dimensions": {"lb": "x"}})
        )
    paths = {p.path for p in err.value.problems}
    assert paths == {"metric.name", "metric.dimensions.lb", "metric.dimensions.listener"}


def test_a_percentile_of_a_router_counter_is_refused() -> None:
    with pytest.raises(SpecError) as err:
        parse_document(
            AlarmSpec,
            doc(metric={"source": "router", "name": "5xx", "dimensions": {"listener": "web"}}),
        )
    [problem] = err.value.problems
    assert problem.path == "statistic" and "needs a distribution" in problem.message
