"""Start-up objects leave the collector's full passes."""

from __future__ import annotations

import gc

from sluicegate._heap import freeze_startup_heap


def test_freezing_parks_every_object_alive_so_far_in_the_permanent_generation() -> None:
    alive = [object() for _ in range(1000)]
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() >= len(alive)
        assert all(count == 0 for count in gc.get_count()[1:])  # nothing left to promote
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
