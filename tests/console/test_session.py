"""Console sessions with a moved clock: idle and absolute expiry, logout, the bound."""

from __future__ import annotations

import pytest

from sluicegate.clock import ManualClock
from sluicegate.console import Sessions


def test_a_session_lives_while_used_and_ends_after_its_idle_time() -> None:
    clock = ManualClock()
    sessions = Sessions(clock, idle=60, lifetime=3600)
    s = sessions.create("sgt_x")
    clock._now += 59
    assert sessions.get(s.id) is not None  # used: the idle time starts again
    clock._now += 59
    assert sessions.get(s.id) is not None
    clock._now += 61
    assert sessions.get(s.id) is None
    assert len(sessions) == 0  # forgotten, not only refused


def test_a_used_session_still_ends_at_its_lifetime() -> None:
    clock = ManualClock()
    sessions = Sessions(clock, idle=60, lifetime=100)
    s = sessions.create("sgt_x")
    for _ in range(3):
        clock._now += 40
        found = sessions.get(s.id)
    assert found is None


def test_logout_ends_the_session_and_unknown_ids_are_refused() -> None:
    sessions = Sessions(ManualClock())
    s = sessions.create("sgt_x")
    sessions.end(s.id)
    assert sessions.get(s.id) is None
    assert sessions.get("") is None
    assert sessions.get(None) is None
    assert sessions.get("forged") is None


def test_the_csrf_token_is_per_session_and_compared_exactly() -> None:
    sessions = Sessions(ManualClock())
    a, b = sessions.create("t1"), sessions.create("t2")
    assert a.csrf != b.csrf and a.id != b.id
    assert a.csrf_ok(a.csrf)
    assert not a.csrf_ok(b.csrf)
    assert not a.csrf_ok(None)
    assert not a.csrf_ok("")


def test_past_the_bound_the_least_recently_used_session_is_dropped() -> None:
    clock = ManualClock()
    sessions = Sessions(clock, max_sessions=2)
    first, second = sessions.create("a"), sessions.create("b")
    assert sessions.get(first.id) is not None  # first is now the most recently used
    sessions.create("c")
    assert sessions.get(second.id) is None
    assert sessions.get(first.id) is not None
    assert len(sessions) == 2


def test_nonsense_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        Sessions(ManualClock(), idle=0)
