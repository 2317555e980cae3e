"""The agent's exposure ledger (pure): reports are what the server has not acknowledged of
the ever-growing evaluation counters, so a failed report merges into the next one."""

from __future__ import annotations

from sluicegate.agent._exposures import ExposureLedger, ExposureReport

T0 = 1_700_000_000.0


def test_a_report_holds_the_counts_since_the_last_acknowledged_one() -> None:
    ledger = ExposureLedger(T0)
    counters = {("checkout", "new"): 3, ("checkout", "classic"): 2}
    first = ledger.take(counters, T0 + 10)
    assert first == ExposureReport(T0, T0 + 10, {("checkout", "new"): 3,
                                                 ("checkout", "classic"): 2})
    ledger.ack(first)
    counters[("checkout", "new")] += 4
    counters[("search", "on")] = 1
    second = ledger.take(counters, T0 + 20)
    assert second == ExposureReport(T0 + 10, T0 + 20, {("checkout", "new"): 4,
                                                       ("search", "on"): 1})


def test_a_failed_report_is_sent_again_merged_with_what_came_after() -> None:
    ledger = ExposureLedger(T0)
    counters = {("checkout", "new"): 5}
    failed = ledger.take(counters, T0 + 10)
    assert failed is not None and failed.counts == {("checkout", "new"): 5}
    counters[("checkout", "new")] += 2  # evaluations go on while the report is in flight
    counters[("checkout", "error:TYPE_MISMATCH")] = 1
    merged = ledger.take(counters, T0 + 20)
    assert merged == ExposureReport(T0, T0 + 20, {("checkout", "new"): 7,
                                                  ("checkout", "error:TYPE_MISMATCH"): 1})
    assert ledger.pending(counters) == 8
    ledger.ack(merged)
    assert ledger.pending(counters) == 0
    assert ledger.take(counters, T0 + 30) is None


def test_counts_made_while_a_report_was_in_flight_are_owed_after_its_ack() -> None:
    ledger = ExposureLedger(T0)
    counters = {("checkout", "new"): 5}
    sent = ledger.take(counters, T0 + 10)
    assert sent is not None
    counters[("checkout", "new")] = 9
    ledger.ack(sent)
    assert ledger.take(counters, T0 + 20) == ExposureReport(T0 + 10, T0 + 20,
                                                            {("checkout", "new"): 4})


def test_a_quiet_interval_sends_nothing_and_moves_the_next_reports_start() -> None:
    ledger = ExposureLedger(T0)
    counters: dict[tuple[str, str], int] = {}
    assert ledger.take(counters, T0 + 10) is None
    counters[("banner", "on")] = 1
    report = ledger.take(counters, T0 + 20)
    assert report is not None and (report.start, report.end) == (T0 + 10, T0 + 20)


def test_a_report_carries_at_most_max_keys_pairs_the_largest_first_the_rest_next() -> None:
    ledger = ExposureLedger(T0, max_keys=2)
    counters = {("a", "on"): 1, ("b", "on"): 9, ("c", "on"): 5}
    first = ledger.take(counters, T0 + 10)
    assert first is not None and first.counts == {("b", "on"): 9, ("c", "on"): 5}
    ledger.ack(first)
    rest = ledger.take(counters, T0 + 20)
    assert rest is not None and rest.counts == {("a", "on"): 1}


def test_the_body_lists_each_pair_sorted_with_the_agent_and_span() -> None:
    report = ExposureReport(T0, T0 + 10.1234, {("b", "on"): 2, ("a", ""): 1})
    assert report.body("host:2772") == {
        "agent": "host:2772", "start": T0, "end": T0 + 10.123,
        "counts": [{"flag": "a", "variant": "", "count": 1},
                   {"flag": "b", "variant": "on", "count": 2}]}
    assert report.total == 3
