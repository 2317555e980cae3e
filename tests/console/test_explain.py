"""Guard and alarm verdicts in words, from the real judgements the guard makes."""

from __future__ import annotations

from sluicegate.console._explain import (
    explain_alarm,
    explain_guard_text,
    explain_judgement,
    verdict_word,
)
from sluicegate.monitor.canary import GroupCounts, judge, judge_errors_sequential


def test_a_failing_error_comparison_names_counts_rates_sample_sizes_and_the_test() -> None:
    verdict = judge(
        GroupCounts(errors=30, total=200, latency={40: 200}),
        GroupCounts(errors=2, total=2000, latency={40: 2000}),
        confidence=0.999,
        error_label="5xx",
    )
    lines = explain_judgement(verdict)
    text = "\n".join(lines)
    assert lines[0] == "Guard verdict FAIL: green is worse than blue."
    assert "green answered 30 of 200 requests with an error (15.0 %)" in text
    assert "blue 2 of 2000 (0.1 %)" in text
    assert "Sample size: 200 green and 2000 blue requests." in text
    assert "is below the bound 0.001: the difference is too large to be chance." in text
    assert "Verdict: green is worse than blue." in text
    assert verdict_word(verdict) == "FAIL"


def test_a_passing_verdict_says_the_difference_can_be_chance() -> None:
    verdict = judge(
        GroupCounts(errors=1, total=500, latency={40: 500}),
        GroupCounts(errors=2, total=1000, latency={40: 1000}),
        error_label="5xx",
    )
    text = "\n".join(explain_judgement(verdict))
    assert text.startswith("Guard verdict PASS")
    assert "not below the bound" in text and "can be chance" in text
    assert "Latency: green's median (p50)" in text
    assert verdict_word(verdict) == "pass"


def test_without_enough_data_it_says_what_it_waits_for() -> None:
    verdict = judge(GroupCounts(0, 3, {40: 3}), GroupCounts(0, 5, {40: 5}), error_label="5xx")
    text = "\n".join(explain_judgement(verdict))
    assert "no verdict yet" in text and "need" in text
    assert verdict_word(verdict) == "waiting" and verdict_word(None) == "-"


def test_a_recorded_sequential_rollback_reason_is_explained_from_its_text() -> None:
    seq = judge_errors_sequential(4, 20, 0, 400, label="5xx")
    reason = f"guard fired: default canary guard, sequential test ({seq.detail})"
    text = "\n".join(explain_guard_text(reason))
    assert "green answered 4 of 20 requests with an error (20.0 %); blue 0 of 400 (0.0 %)" in text
    assert "Sequential test: is green's error rate blue's + 20 points" in text
    assert "likelihood ratio" in text and "below the bound 0.005" in text
    assert "Verdict: green is worse than blue." in text


def test_text_of_an_unknown_shape_is_given_back_as_it_is() -> None:
    assert explain_guard_text("alarm shop/errors is in ALARM") == ["alarm shop/errors is in ALARM"]


def test_an_alarm_is_explained_with_its_rule_and_breaching_datapoints() -> None:
    spec = {
        "statistic": "p99",
        "comparison": ">",
        "threshold": 0.5,
        "datapoints_to_alarm": 2,
        "evaluation_periods": 3,
        "period": 10,
        "treat_missing_data": "breaching",
    }
    points = [
        {"value": 0.2, "breaching": False},
        {"value": 0.81, "breaching": True},
        {"value": None, "breaching": True},
    ]
    lines = explain_alarm("shop/slow", "ALARM", "2 of 3 breaching", spec, points)
    assert lines[0] == "Alarm shop/slow is ALARM: 2 of 3 breaching"
    assert (
        lines[1] == "Rule: p99 > 0.5 in 2 of the last 3 periods of 10 s (missing data: breaching)."
    )
    assert lines[2] == (
        "Datapoints judged, oldest first: 0.2, 0.81 (breaching), missing (breaching) — 2 breaching."
    )
