"""What every repository stands on: a source of transactions and a clock.

A repository method runs in the caller's transaction when there is one
(``with store.transaction() as tx: tx.deployments...``), otherwise in its own short one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from sluicegate.clock import Clock

__all__ = ["Db", "Repository", "upsert"]


class Db(Protocol):
    """Hands out connections inside a transaction."""

    def read(self) -> AbstractContextManager[Connection]:
        """A transaction for reading only (SQLite: a deferred BEGIN, never blocks a writer)."""
        ...

    def write(self) -> AbstractContextManager[Connection]:
        """A transaction that may write (SQLite: BEGIN IMMEDIATE, writers queue)."""
        ...


class Repository:
    """Base of the repositories: holds the transaction source and the clock."""

    def __init__(self, db: Db, clock: Clock) -> None:
        self._db = db
        self._clock = clock


def dialect_insert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_update`` on both backends."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for the {conn.dialect.name} dialect")


def upsert(
    conn: Connection, table: sa.Table, values: dict[str, Any], keep: tuple[str, ...] = ()
) -> None:
    """INSERT ``values``, or UPDATE the row with the same primary key (atomic on both backends).

    Columns named in ``keep`` keep their stored value on update (e.g. ``created_at``).
    """
    key = [c.name for c in table.primary_key.columns]
    stmt = dialect_insert(conn, table).values(values)
    changed = {k: stmt.excluded[k] for k in values if k not in key and k not in keep}
    conn.execute(stmt.on_conflict_do_update(index_elements=key, set_=changed))
