"""The agent's exposure ledger (pure): reports are what the server has not acknowledged of
the ever-growing evaluation counters; an unanswered report is sent again unchanged (the
server stores each number once) and what came after it goes out merged in the next one."""

from __future__ import annotations

import pytest

from sluicegate.agent._exposures import ExposureLedger, ExposureReport

T0 = 1_700_000_000.0


def test_a_report_holds_the_counts_since_the_last_acknowledged_one() -> None:
    ledger = ExposureLedger(T0)
    counters = {("checkout", "new"): 3, ("checkout", "classic"): 2}
    first = ledger.take(counters, T0 + 10)
    assert first == ExposureReport(
        1, T0, T0 + 10, {("checkout", "new"): 3, ("checkout", "classic"): 2}
    )
    ledger.ack(first)
    counters[("checkout", "new")] += 4
    counters[("search", "on")] = 1
    second = ledger.take(counters, T0 + 20)
    assert second == ExposureReport(
        2, T0 + 10, T0 + 20, {("checkout", "new"): 4, ("search", "on"): 1}
    )


def test_a_failed_report_goes_again_unchanged_and_the_rest_merged_after_it() -> None:
    ledger = ExposureLedger(T0)
    counters = {("checkout", "new"): 5}
    failed = ledger.take(counters, T0 + 10)
    assert failed == ExposureReport(1, T0, T0 + 10, {("checkout", "new"): 5})
    for t in (20, 30, 40):  # an outage: evaluations go on, every attempt fails
        counters[("checkout", "new")] += 2
        counters[("checkout", "error:TYPE_MISMATCH")] = t // 10
        assert ledger.take(counters, T0 + t) is failed
    assert ledger.pending(counters) == 5 + 6 + 4
    ledger.ack(failed)
    merged = ledger.take(counters, T0 + 50)
    assert merged == ExposureReport(
        2, T0 + 10, T0 + 50, {("checkout", "new"): 6, ("checkout", "error:TYPE_MISMATCH"): 4}
    )
    ledger.ack(merged)
    assert ledger.pending(counters) == 0
    assert ledger.take(counters, T0 + 60) is None


def test_counts_made_while_a_report_was_in_flight_are_owed_after_its_ack() -> None:
    ledger = ExposureLedger(T0)
    counters = {("checkout", "new"): 5}
    sent = ledger.take(counters, T0 + 10)
    assert sent is not None
    counters[("checkout", "new")] = 9
    ledger.ack(sent)
    assert ledger.take(counters, T0 + 20) == ExposureReport(
        2, T0 + 10, T0 + 20, {("checkout", "new"): 4}
    )


def test_only_the_report_awaiting_an_answer_can_be_acknowledged() -> None:
    ledger = ExposureLedger(T0)
    sent = ledger.take({("a", "on"): 1}, T0 + 10)
    assert sent is not None
    ledger.ack(sent)
    with pytest.raises(ValueError, match="report 1"):
        ledger.ack(sent)  # a second answer to the same report adds nothing
    assert ledger.pending({("a", "on"): 1}) == 0


def test_a_quiet_interval_sends_nothing_and_moves_the_next_reports_start() -> None:
    ledger = ExposureLedger(T0)
    counters: dict[tuple[str, str], int] = {}
    assert ledger.take(counters, T0 + 10) is None
    counters[("banner", "on")] = 1
    report = ledger.take(counters, T0 + 20)
    assert report is not None and (report.seq, report.start, report.end) == (1, T0 + 10, T0 + 20)


def test_a_report_carries_at_most_max_keys_pairs_the_largest_first_the_rest_next() -> None:
    ledger = ExposureLedger(T0, max_keys=2)
    counters = {("a", "on"): 1, ("b", "on"): 9, ("c", "on"): 5}
    first = ledger.take(counters, T0 + 10)
    assert first is not None and first.counts == {("b", "on"): 9, ("c", "on"): 5}
    ledger.ack(first)
    rest = ledger.take(counters, T0 + 20)
    assert rest is not None and rest.counts == {("a", "on"): 1}


def test_the_body_lists_each_pair_sorted_with_the_agent_instance_number_and_span() -> None:
    report = ExposureReport(7, T0, T0 + 10.1234, {("b", "on"): 2, ("a", ""): 1})
    assert report.body("host:2772", "abc") == {
        "agent": "host:2772",
        "instance": "abc",
        "seq": 7,
        "start": T0,
        "end": T0 + 10.123,
        "counts": [
            {"flag": "a", "variant": "", "count": 1},
            {"flag": "b", "variant": "on", "count": 2},
        ],
    }
    assert report.total == 3
