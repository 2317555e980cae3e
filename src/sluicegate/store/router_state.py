"""The single row that lets a restarted server re-adopt its router process.

It records the router's PID with the PID's start time (PIDs are reused), its admin URL,
the config it was last given, and that config's generation. The admin token is not here:
a secret in a database row outlives the file permissions that protect it, so the server
keeps the router's admin token in its state dir instead.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ._base import Repository, upsert
from ._records import RouterState
from ._schema import router_state

__all__ = ["RouterStateRepository"]

_ROW_ID = 1


class RouterStateRepository(Repository):
    def get(self) -> RouterState | None:
        """The recorded state, or None before the first router was started."""
        with self._db.read() as conn:
            row = conn.execute(sa.select(router_state)).mappings().first()
        if row is None:
            return None
        return RouterState(
            pid=row["pid"],
            pid_start_time=row["pid_start_time"],
            admin_url=row["admin_url"],
            config=row["config"],
            generation=row["generation"],
            updated_at=row["updated_at"],
        )

    def put(
        self,
        *,
        admin_url: str,
        config: dict[str, Any],
        generation: int,
        pid: int | None,
        pid_start_time: float | None,
    ) -> RouterState:
        """Replace the recorded state (every field)."""
        values: dict[str, Any] = {
            "pid": pid,
            "pid_start_time": pid_start_time,
            "admin_url": admin_url,
            "config": config,
            "generation": generation,
            "updated_at": self._clock.now(),
        }
        with self._db.write() as conn:
            upsert(conn, router_state, {"id": _ROW_ID, **values})
        return RouterState(**values)

    def clear(self) -> None:
        """Forget the router (it was stopped on purpose)."""
        with self._db.write() as conn:
            conn.execute(sa.delete(router_state))
