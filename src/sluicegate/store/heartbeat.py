"""The server's heartbeat: one row rewritten every few seconds, proof the store takes writes."""

from __future__ import annotations

import sqlalchemy as sa

from ._base import Repository, upsert
from ._schema import server_heartbeat

__all__ = ["HeartbeatRepository"]


class HeartbeatRepository(Repository):
    def beat(self, pid: int) -> float:
        """Write the heartbeat now; returns its time. Raises what the database raises."""
        now = self._clock.now()
        with self._db.write() as conn:
            upsert(conn, server_heartbeat, {"id": 1, "pid": pid, "at": now})
        return now

    def last(self) -> tuple[int, float] | None:
        """(pid, time) of the newest heartbeat, or None before the first."""
        with self._db.read() as conn:
            row = conn.execute(sa.select(server_heartbeat)).mappings().first()
        return None if row is None else (int(row["pid"]), float(row["at"]))
