"""Replica processes recorded by compute, so a restarted server adopts or cleans them up.

A replica is keyed by (service, revision, index). ``pid_start_time`` is recorded with the
PID because PIDs are reused: a process is "ours" only if both still match.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ._base import Repository, upsert
from ._records import Replica
from ._schema import replicas

__all__ = ["ReplicaRepository"]


class ReplicaRepository(Repository):
    def record(
        self,
        service: str,
        revision: str,
        index: int,
        *,
        state: str,
        port: int | None = None,
        pid: int | None = None,
        pid_start_time: float | None = None,
        started_at: float | None = None,
    ) -> Replica:
        """Create or replace the record of one replica (every field given is written)."""
        values: dict[str, Any] = {
            "service": service,
            "revision": revision,
            "idx": index,
            "port": port,
            "pid": pid,
            "pid_start_time": pid_start_time,
            "state": state,
            "started_at": started_at,
            "updated_at": self._clock.now(),
        }
        with self._db.write() as conn:
            upsert(conn, replicas, values)
        return _replica(values)

    def list(self, service: str | None = None, revision: str | None = None) -> list[Replica]:
        """Ordered by service, revision, index."""
        query = sa.select(replicas).order_by(
            replicas.c.service, replicas.c.revision, replicas.c.idx
        )
        if service is not None:
            query = query.where(replicas.c.service == service)
        if revision is not None:
            query = query.where(replicas.c.revision == revision)
        with self._db.read() as conn:
            return [_replica(r) for r in conn.execute(query).mappings()]

    def remove(self, service: str, revision: str, index: int | None = None) -> int:
        """Forget one replica, or every replica of the revision when ``index`` is None.

        Returns how many records were removed (0 is not an error: removal is idempotent).
        """
        query = sa.delete(replicas).where(
            replicas.c.service == service, replicas.c.revision == revision
        )
        if index is not None:
            query = query.where(replicas.c.idx == index)
        with self._db.write() as conn:
            return int(conn.execute(query).rowcount)


def _replica(row: Any) -> Replica:
    return Replica(
        service=row["service"],
        revision=row["revision"],
        index=row["idx"],
        port=row["port"],
        pid=row["pid"],
        pid_start_time=row["pid_start_time"],
        state=row["state"],
        started_at=row["started_at"],
        updated_at=row["updated_at"],
    )
