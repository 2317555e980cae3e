"""Flag exposures: reports add up per env, flag, variant and minute; totals and per-minute
sums read them back; old minutes are pruned."""

from __future__ import annotations

import pytest

from sluicegate.clock import ManualClock
from sluicegate.store import ExposureTotal, Store

M0 = 1_700_000_040  # a minute's start


def test_reports_for_the_same_minute_add_up_and_others_stay_apart(store: Store) -> None:
    assert (
        store.flag_exposures.add(
            "prod", M0 + 5, [("checkout", "new", 3), ("checkout", "classic", 2)]
        )
        == 2
    )
    store.flag_exposures.add("prod", M0 + 59, [("checkout", "new", 4), ("checkout", "new", 1)])
    store.flag_exposures.add("prod", M0 + 60, [("checkout", "new", 10)])
    store.flag_exposures.add("staging", M0, [("checkout", "new", 100)])
    assert store.flag_exposures.minutes("prod", M0, M0 + 120, flag="checkout", variant="new") == {
        M0: 8,
        M0 + 60: 10,
    }
    assert store.flag_exposures.minutes("prod", M0, M0 + 120) == {M0: 10, M0 + 60: 10}
    assert store.flag_exposures.minutes("staging", M0, M0 + 120) == {M0: 100}


def test_a_variant_nobody_got_in_a_minute_the_flag_was_evaluated_counts_zero(store: Store) -> None:
    store.flag_exposures.add("prod", M0, [("checkout", "new", 3)])
    store.flag_exposures.add("prod", M0 + 60, [("checkout", "error:GENERAL", 1)])
    store.flag_exposures.add("prod", M0 + 120, [("search", "on", 1)])
    assert store.flag_exposures.minutes(
        "prod", M0, M0 + 180, flag="checkout", variant="error:GENERAL"
    ) == {M0: 0, M0 + 60: 1}
    assert store.flag_exposures.minutes("prod", M0, M0 + 180, variant="new") == {
        M0: 3,
        M0 + 60: 0,
        M0 + 120: 0,
    }


def test_totals_sum_each_variant_from_the_minute_holding_since(store: Store) -> None:
    store.flag_exposures.add("prod", M0 - 60, [("checkout", "new", 1000)])
    store.flag_exposures.add(
        "prod",
        M0,
        [("checkout", "new", 3), ("search", "on", 7), ("checkout", "error:TYPE_MISMATCH", 1)],
    )
    store.flag_exposures.add("prod", M0 + 120, [("checkout", "new", 5)])
    assert store.flag_exposures.totals("prod", since=M0 + 30) == [
        ExposureTotal("checkout", "error:TYPE_MISMATCH", 1, M0),
        ExposureTotal("checkout", "new", 8, M0 + 120),
        ExposureTotal("search", "on", 7, M0),
    ]
    assert store.flag_exposures.totals("prod", since=M0, flag="search") == [
        ExposureTotal("search", "on", 7, M0)
    ]
    assert store.flag_exposures.totals("prod", since=M0 + 180) == []


def test_zero_counts_write_nothing_and_negative_ones_are_refused(store: Store) -> None:
    assert store.flag_exposures.add("prod", M0, [("checkout", "new", 0)]) == 0
    assert store.flag_exposures.totals("prod", since=0) == []
    with pytest.raises(ValueError, match="negative"):
        store.flag_exposures.add("prod", M0, [("checkout", "new", 2), ("checkout", "old", -1)])
    assert store.flag_exposures.totals("prod", since=0) == []


def test_minutes_before_the_cut_are_deleted(store: Store) -> None:
    store.flag_exposures.add("prod", M0, [("checkout", "new", 1)])
    store.flag_exposures.add("prod", M0 + 60, [("checkout", "new", 2)])
    assert store.flag_exposures.delete_before(M0 + 60) == 1
    assert store.flag_exposures.minutes("prod", 0, M0 * 2) == {M0 + 60: 2}


def test_a_report_is_stored_once_per_instance_and_sequence_number(
    store: Store, clock: ManualClock
) -> None:
    def send(seq: int, n: int, instance: str = "i1") -> bool:
        return store.flag_exposures.add_report(
            "prod", M0, [("checkout", "new", n)], agent="host:2772", instance=instance, seq=seq
        )

    assert send(1, 5) is True
    assert send(1, 5) is False  # resent after a lost answer
    clock.advance(30)
    assert send(2, 3) is True
    assert send(1, 5) is False  # an old one arriving late
    assert send(1, 7, instance="i2") is True  # the agent restarted: a new instance
    assert store.flag_exposures.minutes("prod", M0, M0 + 60) == {M0: 15}
    assert [
        (r.instance, r.last_seq, r.last_seen - r.first_seen)
        for r in store.flag_exposures.reporters("prod", since=0)
    ] == [("i1", 2, 30.0), ("i2", 1, 0.0)]
    assert store.flag_exposures.reporters("staging", since=0) == []
