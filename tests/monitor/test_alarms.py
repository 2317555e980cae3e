"""Alarm evaluation: CloudWatch's documented semantics, cell by cell.

The two worked tables come from the CloudWatch user guide ("How alarm state is evaluated when
data is missing", AlarmThatSendsEmail.md) and the anchor progressive-delivery.md §3.1: the
range holds 5 datapoints, oldest first; ``0`` is within the threshold, ``X`` breaches and
``-`` is missing. Threshold 1.0, GreaterThanThreshold, 1-minute periods from 12:00:00 UTC.
"""

from __future__ import annotations

from typing import Any

import pytest

from sluicegate.monitor import (
    AlarmState,
    Datapoint,
    Histogram,
    StatSet,
    aggregate,
    aggregate_percentile,
    breaches,
    combine,
    evaluate,
    evaluation_range,
    low_sample_threshold,
    period_starts,
    transition,
)
from sluicegate.router._histogram import bucket_index, percentile
from sluicegate.spec import AlarmSpec

OK, ALARM, INSUFFICIENT = AlarmState.OK, AlarmState.ALARM, AlarmState.INSUFFICIENT_DATA
NOON = 43200  # 1970-01-01 12:00:00 UTC
RETAIN = "retain"  # the table's "Retain current state"
POLICIES = ("missing", "ignore", "breaching", "notBreaching")


def alarm(**overrides: Any) -> AlarmSpec:
    doc: dict[str, Any] = {
        "name": "errors",
        "metric": {"source": "push", "name": "checkout_failures"},
        "statistic": "Maximum",
        "period": 60,
        "evaluation_periods": 3,
        "threshold": 1.0,
        "comparison": "GreaterThanThreshold",
    }
    doc.update(overrides)
    return AlarmSpec.model_validate(doc)


def points(pattern: str, period: int = 60, samples: int = 1) -> list[Datapoint]:
    """``"0 - X"`` -> datapoints oldest first; 0 = 0.0, X = 5.0, - = missing."""
    values = {"0": 0.0, "X": 5.0, "-": None}
    return [
        Datapoint(NOON + period * i, values[c], 0 if c == "-" else samples)
        for i, c in enumerate(pattern.split())
    ]


# --- the worked tables -------------------------------------------------------------------

# Columns: MISSING, IGNORE, BREACHING, NOT BREACHING.
THREE_OF_THREE = [
    ("0 - X - X", (OK, OK, OK, OK)),
    ("0 - - - -", (OK, OK, OK, OK)),
    ("- - - - -", (INSUFFICIENT, RETAIN, ALARM, OK)),
    ("0 X X - X", (ALARM, ALARM, ALARM, ALARM)),
    ("- - - - X", (INSUFFICIENT, RETAIN, ALARM, OK)),
    ("X - - - -", (ALARM, RETAIN, ALARM, OK)),
    # The anchor's premature-ALARM row: the breaching point is M = 3 periods old.
    ("- - X - -", (ALARM, RETAIN, ALARM, OK)),
]

TWO_OF_THREE = [
    ("0 - X - X", (ALARM, ALARM, ALARM, ALARM)),
    ("0 0 X 0 X", (ALARM, ALARM, ALARM, ALARM)),
    ("0 - X - -", (OK, OK, ALARM, OK)),
    ("- - - - 0", (OK, OK, ALARM, OK)),
    ("- - - - X", (INSUFFICIENT, RETAIN, ALARM, OK)),
]


def table_cases() -> list[Any]:
    cases = []
    for m, table in ((3, THREE_OF_THREE), (2, TWO_OF_THREE)):
        for pattern, expected in table:
            for policy, want in zip(POLICIES, expected, strict=True):
                for previous in (OK, ALARM, None):
                    cases.append(
                        pytest.param(
                            m,
                            pattern,
                            policy,
                            previous,
                            want,
                            id=f"{m}of3 [{pattern}] {policy} prev={previous}",
                        )
                    )
    return cases


@pytest.mark.parametrize(("m", "pattern", "policy", "previous", "want"), table_cases())
def test_every_cell_of_the_worked_tables(
    m: int, pattern: str, policy: str, previous: AlarmState | None, want: Any
) -> None:
    spec = alarm(datapoints_to_alarm=m, treat_missing_data=policy)
    result = evaluate(spec, points(pattern), previous)
    if want == RETAIN:
        # A brand-new alarm has no state to keep: it stays INSUFFICIENT_DATA.
        want = previous or INSUFFICIENT
    assert result.state == want


def test_the_range_is_n_plus_two_periods_as_in_the_guides_examples() -> None:
    assert evaluation_range(alarm(evaluation_periods=3)) == 5
    assert evaluation_range(alarm(evaluation_periods=1)) == 3


# --- the rules behind the tables ---------------------------------------------------------


def test_with_n_real_points_the_newest_n_are_judged_and_missing_data_is_not_used() -> None:
    spec = alarm(treat_missing_data="breaching")
    result = evaluate(spec, points("X X 0 - 0 0"))  # real: X X 0 0 0 -> newest three 0 0 0
    assert result.state == OK
    assert [p.value for p in result.considered] == [0.0, 0.0, 0.0]
    assert not any(p.filled for p in result.considered)


def test_with_fewer_real_points_all_of_them_count_however_old() -> None:
    # One real breaching point 5 periods back still counts; two breaching fill-ins complete N.
    result = evaluate(alarm(treat_missing_data="breaching"), points("X - - - -"))
    assert result.state == ALARM
    assert result.breaching_count == 3
    assert [(p.value, p.filled) for p in result.considered] == [
        (5.0, False),
        (None, True),
        (None, True),
    ]


@pytest.mark.parametrize(
    ("pattern", "want"),
    [
        ("X 0 X 0 X", ALARM),  # newest three X 0 X: 2 breach
        ("0 0 X 0 X", ALARM),  # breaching points need not be consecutive
        ("X X 0 0 X", OK),  # newest three 0 0 X: 1 breach
        ("X X 0 0 0", OK),  # older breaches fall out of the last N
    ],
)
def test_m_of_n_counts_breaches_anywhere_in_the_last_n(pattern: str, want: AlarmState) -> None:
    spec = alarm(datapoints_to_alarm=2, evaluation_periods=3)
    assert evaluate(spec, points(pattern)).state == want


def test_m_of_n_over_gaps_uses_the_newest_n_real_points_across_the_gaps() -> None:
    spec = alarm(datapoints_to_alarm=2, evaluation_periods=3, treat_missing_data="breaching")
    assert evaluate(spec, points("X - X - 0")).state == ALARM  # real X X 0: 2 breach
    assert evaluate(spec, points("0 X - - 0")).state == OK  # real 0 X 0: 1 breach
    result = evaluate(spec, points("X 0 - 0 X"))  # real X 0 0 X: newest 0 0 X
    assert result.state == OK
    assert [p.timestamp - NOON for p in result.considered] == [60, 180, 240]


def test_premature_alarm_needs_the_oldest_breach_at_least_m_periods_old() -> None:
    spec = alarm(treat_missing_data="missing")
    assert evaluate(spec, points("- - - X -")).state == INSUFFICIENT  # 2 periods old < 3
    assert evaluate(spec, points("- - X - -")).state == ALARM  # 3 periods old
    assert evaluate(spec, points("- X - X -")).state == ALARM  # oldest 4, all breach


def test_premature_alarm_does_not_fire_past_a_real_ok_point() -> None:
    # 2-of-3 table, "0 - X - -" = OK under missing: a real non-breaching point decides.
    spec = alarm(datapoints_to_alarm=2, treat_missing_data="missing")
    assert evaluate(spec, points("0 - X - -"), ALARM).state == OK


def test_ignore_keeps_the_previous_state_when_the_data_cannot_decide() -> None:
    spec = alarm(treat_missing_data="ignore")
    for previous in (OK, ALARM, INSUFFICIENT):
        result = evaluate(spec, points("- - - - -"), previous)
        assert result.state == previous
        assert result.reason == (
            "Unchanged: no datapoints were received in the last 5 periods; missing data is"
            f" ignored, the alarm stays {previous.value}."
        )


def test_breaching_fill_ins_take_the_newest_missing_periods() -> None:
    result = evaluate(alarm(treat_missing_data="breaching"), points("0 - - X -"))
    assert [(p.timestamp - NOON, p.filled) for p in result.considered] == [
        (0, False),
        (180, False),
        (240, True),
    ]
    assert result.state == OK  # 0, X, fill: 2 of 3 breach, M = 3


def test_the_range_must_have_one_datapoint_per_period() -> None:
    spec = alarm()
    with pytest.raises(ValueError, match="fewer than evaluation_periods"):
        evaluate(spec, points("X X"))
    gap = [Datapoint(NOON, 5.0, 1), Datapoint(NOON + 120, 5.0, 1), Datapoint(NOON + 180, 5.0, 1)]
    with pytest.raises(ValueError, match="one per period"):
        evaluate(spec, gap)


def test_nan_and_infinite_values_count_as_missing() -> None:
    spec = alarm(treat_missing_data="missing")
    odd = [Datapoint(NOON + 60 * i, v, 1) for i, v in enumerate([float("nan"), float("inf"), None])]
    assert evaluate(spec, odd).state == INSUFFICIENT


# --- comparisons at the threshold ---------------------------------------------------------


@pytest.mark.parametrize(
    ("comparison", "below", "at", "above"),
    [
        ("GreaterThanThreshold", False, False, True),
        ("GreaterThanOrEqualToThreshold", False, True, True),
        ("LessThanThreshold", True, False, False),
        ("LessThanOrEqualToThreshold", True, True, False),
    ],
)
def test_comparisons_at_the_threshold_boundary(
    comparison: str, below: bool, at: bool, above: bool
) -> None:
    spec = alarm(comparison=comparison, threshold=0.5, evaluation_periods=1)
    assert [breaches(spec, v) for v in (0.49, 0.5, 0.51)] == [below, at, above]
    want = ALARM if at else OK
    assert evaluate(spec, [Datapoint(NOON, 0.5, 1)]).state == want


# --- reasons ------------------------------------------------------------------------------


def test_reason_for_alarm_lists_the_breaching_points_newest_first() -> None:
    spec = alarm(datapoints_to_alarm=2, period=1, threshold=1.0)
    dps = [Datapoint(NOON - 1, 0.4, 20), Datapoint(NOON, 7.1, 20), Datapoint(NOON + 1, 5.0, 20)]
    result = evaluate(spec, dps, OK)
    assert result.state == ALARM
    assert result.breaching_count == 2
    assert result.reason == (
        "Threshold Crossed: 2 out of the last 3 datapoints [5.0 (12:00:01), 7.1 (12:00:00)]"
        " were greater than the threshold (1.0)"
        " (minimum 2 datapoints for OK -> ALARM transition)."
    )


def test_reason_for_ok_lists_the_points_within_and_the_points_needed_to_recover() -> None:
    spec = alarm(datapoints_to_alarm=2)
    result = evaluate(spec, points("0 X 0 X 0"), ALARM)
    assert result.reason == (
        "Threshold Crossed: 2 out of the last 3 datapoints [0.0 (12:04:00), 0.0 (12:02:00)]"
        " were not greater than the threshold (1.0)"
        " (minimum 2 datapoints for ALARM -> OK transition)."
    )


def test_reason_without_a_state_change_has_no_transition_note() -> None:
    result = evaluate(alarm(evaluation_periods=1), points("X"), ALARM)
    assert result.reason == (
        "Threshold Crossed: 1 datapoint [5.0 (12:00:00)] was greater than the threshold (1.0)."
    )


def test_reason_says_when_missing_data_was_filled() -> None:
    result = evaluate(alarm(treat_missing_data="breaching"), points("- - - - X"), OK)
    assert result.reason == (
        "Threshold Crossed: 3 out of the last 3 datapoints"
        " [5.0 (12:04:00), missing (12:03:00), missing (12:02:00)]"
        " were greater than the threshold (1.0)"
        " (minimum 3 datapoints for OK -> ALARM transition); missing data treated as breaching."
    )


def test_reason_for_the_premature_rule_and_for_insufficient_data() -> None:
    spec = alarm(treat_missing_data="missing")
    assert evaluate(spec, points("- - X - -"), OK).reason == (
        "Threshold Crossed: the only datapoint received [5.0 (12:02:00)] was greater than the"
        " threshold (1.0), the oldest 3 periods ago (at least datapoints_to_alarm = 3), and"
        " the other periods are missing (premature-ALARM rule; missing data treated as"
        " missing) (OK -> ALARM transition)."
    )
    assert evaluate(spec, points("- - - - X"), OK).reason == (
        "Insufficient Data: only 1 datapoint [5.0 (12:04:00)] of the 3 needed was received in"
        " the last 5 periods, all breaching but fewer than 3."
    )


# --- min-sample guard ---------------------------------------------------------------------


def test_a_datapoint_from_too_few_samples_counts_as_missing() -> None:
    spec = alarm(statistic="p99", threshold=0.25, evaluation_periods=1, period=1)
    assert spec.min_samples == 10
    one_slow_request = [Datapoint(NOON, 3.0, 1)]
    result = evaluate(spec, one_slow_request)
    assert result.state == INSUFFICIENT
    assert "at least 10 samples" in result.reason
    assert evaluate(spec, [Datapoint(NOON, 3.0, 10)]).state == ALARM


def test_the_guard_then_follows_treat_missing_data() -> None:
    spec = alarm(
        statistic="p99",
        threshold=0.25,
        evaluation_periods=1,
        period=1,
        treat_missing_data="notBreaching",
    )
    assert evaluate(spec, [Datapoint(NOON, 3.0, 1)], ALARM).state == OK


def test_min_samples_defaults_by_what_the_alarm_reads() -> None:
    assert alarm().min_samples == 0
    assert alarm(statistic="p99.9").min_samples == 10
    assert ratio_alarm().min_samples == 10
    assert alarm(min_samples=0, statistic="p50").min_samples == 0


# --- percentile low-sample rule -----------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "bound"), [(0.99, 1000.0), (0.999, 10000.0), (0.5, 20.0), (0.1, 100.0), (0.25, 40.0)]
)
def test_low_sample_threshold_is_cloudwatchs(q: float, bound: float) -> None:
    assert low_sample_threshold(q) == pytest.approx(bound)


def test_low_sample_percentile_ignore_keeps_the_state() -> None:
    spec = alarm(
        statistic="p99",
        threshold=0.25,
        evaluation_periods=2,
        period=1,
        evaluate_low_sample_count_percentile="ignore",
    )
    dps = [Datapoint(NOON, 3.0, 2000), Datapoint(NOON + 1, 3.0, 999)]
    result = evaluate(spec, dps, OK)
    assert result.state == OK
    assert result.reason == (
        "Unchanged: 1 datapoint [3.0 (12:00:01)] had fewer than 1000 samples, too few for p99"
        " (evaluate_low_sample_count_percentile: ignore); the alarm stays OK."
    )
    enough = [Datapoint(NOON, 3.0, 2000), Datapoint(NOON + 1, 3.0, 1000)]
    assert evaluate(spec, enough, OK).state == ALARM


def test_low_sample_percentile_evaluate_is_the_default() -> None:
    spec = alarm(statistic="p99", threshold=0.25, evaluation_periods=1, period=1)
    assert spec.low_sample_mode == "evaluate"
    assert evaluate(spec, [Datapoint(NOON, 3.0, 50)], OK).state == ALARM


# --- transitions --------------------------------------------------------------------------


def test_a_transition_is_reported_only_when_the_state_changes() -> None:
    spec = alarm(evaluation_periods=1)
    firing = evaluate(spec, points("X"), OK)
    event = transition(OK, firing, now=NOON + 61)
    assert event is not None
    assert (event.alarm, event.old_state, event.new_state, event.at) == (
        "errors",
        OK,
        ALARM,
        NOON + 61,
    )
    assert event.to_json()["datapoints"] == [
        {"timestamp": NOON, "value": 5.0, "samples": 1, "breaching": True, "filled": False}
    ]
    assert transition(ALARM, firing, now=NOON + 61) is None


def test_a_new_alarm_starts_in_insufficient_data() -> None:
    spec = alarm(treat_missing_data="missing")
    assert transition(None, evaluate(spec, points("- - -")), now=NOON) is None
    first = transition(None, evaluate(spec, points("0 0 0")), now=NOON)
    assert first is not None
    assert (first.old_state, first.new_state) == (INSUFFICIENT, OK)


# --- aggregation --------------------------------------------------------------------------


def per_second() -> dict[int, StatSet]:
    return {
        NOON: StatSet.of([1.0, 3.0]),
        NOON + 1: StatSet.of([10.0]),
        NOON + 2: StatSet.of([]),  # series present, no observation
        # NOON + 3 absent
        NOON + 4: StatSet.of([2.0, 2.0, 5.0]),
    }


@pytest.mark.parametrize(
    ("statistic", "values"),
    [
        ("Sum", [14.0, 0.0, 9.0]),
        ("SampleCount", [3.0, 0.0, 3.0]),
        ("Average", [14.0 / 3, None, 3.0]),
        ("Minimum", [1.0, None, 2.0]),
        ("Maximum", [10.0, None, 5.0]),
    ],
)
def test_each_statistic_over_two_second_periods(statistic: str, values: list[float | None]) -> None:
    dps = aggregate(statistic, per_second(), end=NOON + 6, period=2, count=3)
    assert [d.timestamp for d in dps] == [NOON, NOON + 2, NOON + 4]
    assert [d.value for d in dps] == pytest.approx(values)
    assert [d.samples for d in dps] == [3, 0, 3]


def test_a_period_with_no_second_at_all_is_missing() -> None:
    dps = aggregate("Sum", per_second(), end=NOON + 10, period=2, count=2)
    assert [(d.timestamp, d.value, d.samples) for d in dps] == [
        (NOON + 6, None, 0),
        (NOON + 8, None, 0),
    ]


def test_counter_seconds_count_events() -> None:
    seconds = {NOON: StatSet.events(4), NOON + 1: StatSet.events(0)}
    (dp,) = aggregate("Sum", seconds, end=NOON + 2, period=2, count=1)
    assert (dp.value, dp.samples) == (4.0, 4)


def test_period_starts_end_at_the_given_second() -> None:
    assert period_starts(NOON + 60, 10, 3) == [NOON + 30, NOON + 40, NOON + 50]


def test_percentiles_come_from_the_merged_router_histograms() -> None:
    def hist(*latencies_us: int) -> dict[int, int]:
        out: dict[int, int] = {}
        for us in latencies_us:
            out[bucket_index(us)] = out.get(bucket_index(us), 0) + 1
        return out

    fast = hist(*[1000] * 98)  # 98 requests at 1 ms
    slow_as_list = [0] * 272
    slow_as_list[bucket_index(500_000)] = 2  # 2 requests at 500 ms, as a dense list
    seconds: dict[int, Histogram] = {NOON: fast, NOON + 1: slow_as_list}
    (dp,) = aggregate_percentile(
        0.99, seconds, end=NOON + 2, period=2, count=1, percentile=percentile
    )
    assert dp.samples == 100
    merged = hist(*[1000] * 98, 500_000, 500_000)
    assert dp.value == percentile(merged, 0.99)
    assert dp.value == pytest.approx(0.5, rel=0.07)  # within one bucket of 500 ms
    (p50,) = aggregate_percentile(
        0.5, seconds, end=NOON + 2, period=2, count=1, percentile=percentile
    )
    assert p50.value == pytest.approx(0.001, rel=0.07)


def test_a_period_without_requests_has_no_percentile() -> None:
    seconds: dict[int, dict[int, int]] = {NOON: {}}
    dps = aggregate_percentile(
        0.99, seconds, end=NOON + 2, period=1, count=2, percentile=percentile
    )
    assert [(d.value, d.samples) for d in dps] == [(None, 0), (None, 0)]


# --- expressions --------------------------------------------------------------------------


def ratio_alarm(**overrides: Any) -> AlarmSpec:
    doc: dict[str, Any] = {
        "name": "green-5xx-rate",
        "metrics": {
            "e": {
                "source": "router",
                "name": "5xx",
                "dimensions": {"listener": "web", "target_group": "green"},
            },
            "r": {
                "source": "router",
                "name": "requests",
                "dimensions": {"listener": "web", "target_group": "green"},
            },
        },
        "expression": "e / r",
        "statistic": "Sum",
        "period": 1,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 2,
        "threshold": 0.05,
        "comparison": "GreaterThanThreshold",
    }
    doc.update(overrides)
    return AlarmSpec.model_validate(doc)


def test_an_error_rate_from_two_counters() -> None:
    spec = ratio_alarm()
    errors = {NOON: StatSet.events(0), NOON + 1: StatSet.events(10), NOON + 2: StatSet.events(9)}
    requests = {
        NOON: StatSet.events(100),
        NOON + 1: StatSet.events(100),
        NOON + 2: StatSet.events(100),
    }
    series = {
        key: aggregate(stat, src, end=NOON + 3, period=1, count=3)
        for key, (stat, src) in {"e": ("Sum", errors), "r": ("Sum", requests)}.items()
    }
    dps = combine(spec, series)
    assert [(d.value, d.samples) for d in dps] == [(0.0, 100), (0.1, 100), (0.09, 100)]
    result = evaluate(spec, dps, OK)
    assert result.state == ALARM
    assert result.reason.startswith(
        "Threshold Crossed: 2 out of the last 3 datapoints [0.09 (12:00:02), 0.1 (12:00:01)]"
    )


def test_a_ratio_over_too_few_requests_is_missing_not_an_alarm() -> None:
    spec = ratio_alarm(evaluation_periods=1, datapoints_to_alarm=1)
    e = [Datapoint(NOON, 1.0, 1)]
    r = [Datapoint(NOON, 1.0, 1)]  # one request, and it failed: 100 % errors
    (dp,) = combine(spec, {"e": e, "r": r})
    assert dp.value == 1.0
    assert evaluate(spec, [dp], OK).state == INSUFFICIENT


def test_expression_division_by_zero_and_missing_operands_are_missing() -> None:
    spec = ratio_alarm()
    e = [Datapoint(NOON, 0.0, 0), Datapoint(NOON + 1, None, 0), Datapoint(NOON + 2, 2.0, 2)]
    r = [Datapoint(NOON, 0.0, 0), Datapoint(NOON + 1, 50.0, 50), Datapoint(NOON + 2, 40.0, 40)]
    assert [d.value for d in combine(spec, {"e": e, "r": r})] == [None, None, 0.05]


def test_samples_from_names_the_population() -> None:
    spec = ratio_alarm(samples_from="e")
    e = [Datapoint(NOON, 3.0, 3)]
    r = [Datapoint(NOON, 300.0, 300)]
    assert combine(spec, {"e": e, "r": r})[0].samples == 3


def test_expression_series_must_line_up() -> None:
    spec = ratio_alarm()
    with pytest.raises(ValueError, match="same periods"):
        combine(spec, {"e": [Datapoint(NOON, 1.0, 1)], "r": [Datapoint(NOON + 1, 1.0, 1)]})


def test_a_single_metric_alarm_reads_its_m1_series() -> None:
    spec = alarm()
    assert list(spec.queries) == ["m1"]
    dps = points("0 X")
    assert combine(spec, {"m1": dps}) == dps
