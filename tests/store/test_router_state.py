"""The router's re-adoption record: one row, replaced as a whole."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sluicegate.clock import ManualClock
from sluicegate.store import RouterState, Store


def test_get_put_clear(store: Store, clock: ManualClock) -> None:
    assert store.router_state.get() is None
    config = {"listeners": [{"name": "web", "port": 8080}]}
    put = store.router_state.put(
        admin_url="http://127.0.0.1:9901", config=config, generation=1, pid=77, pid_start_time=9.5
    )
    assert put == RouterState(77, 9.5, "http://127.0.0.1:9901", config, 1, clock.now())
    assert store.router_state.get() == put
    clock.advance(1)
    again = store.router_state.put(
        admin_url="http://127.0.0.1:9902", config={}, generation=2, pid=None, pid_start_time=None
    )
    assert store.router_state.get() == again
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM router_state")).scalar() == 1
    store.router_state.clear()
    assert store.router_state.get() is None


def test_only_one_row_is_possible(store: Store) -> None:
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO router_state (id, admin_url, config, generation, updated_at)"
                " VALUES (2, 'x', '{}', 1, 0)"
            )
        )
