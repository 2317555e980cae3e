"""The one append-only event log: every transition, who did it, when and why.

Ids increase in commit order, so a reader that remembers the last id it saw and asks
``since(last_id)`` never misses an event. SQLite gives that for free (one writer at a
time); on PostgreSQL an append takes a transaction-level advisory lock, so no transaction
can commit a smaller id after a larger one became visible. The table itself refuses UPDATE
and DELETE (a trigger, installed by the first migration).
"""

from __future__ import annotations

import builtins
from typing import Any

import sqlalchemy as sa

from ._base import Repository
from ._records import Event
from ._schema import deployments, events

__all__ = ["EventRepository"]

#: pg_advisory_xact_lock key that serialises appends (any constant unique to Sluicegate).
_PG_APPEND_LOCK = 0x5155_1CE1


class EventRepository(Repository):
    def append(
        self,
        kind: str,
        subject: str,
        message: str,
        *,
        actor: str = "system",
        data: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> Event:
        """Append one event; ``at`` defaults to the store's clock."""
        values: dict[str, Any] = {
            "at": self._clock.now() if at is None else at,
            "actor": actor,
            "kind": kind,
            "subject": subject,
            "message": message,
            "data": data or {},
        }
        with self._db.write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_APPEND_LOCK})
            new_id = conn.execute(
                sa.insert(events).values(values).returning(events.c.id)
            ).scalar_one()
        return Event(id=int(new_id), **values)

    def since(self, after_id: int = 0, *, limit: int = 1000) -> list[Event]:
        """Events with ``id > after_id``, oldest first, at most ``limit`` of them."""
        query = sa.select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
        with self._db.read() as conn:
            return [_event(r) for r in conn.execute(query).mappings()]

    def list(
        self, *, subject: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Event]:
        """The latest ``limit`` events (optionally of one subject/kind), oldest first."""
        query = sa.select(events).order_by(events.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(events.c.subject == subject)
        if kind is not None:
            query = query.where(events.c.kind == kind)
        with self._db.read() as conn:
            rows = [_event(r) for r in conn.execute(query).mappings()]
        rows.reverse()
        return rows

    def query(
        self,
        *,
        after_id: int = 0,
        kind: str | None = None,
        subject: str | None = None,
        service: str | None = None,
        limit: int = 200,
    ) -> builtins.list[Event]:
        """The newest ``limit`` events with ``id > after_id`` that match every filter given,
        oldest first. ``kind`` is exact, or ``prefix.*`` for every kind under ``prefix.``
        (``*`` alone: any); ``service`` matches the service's own events and those of its
        deployments (their ids are the subjects)."""
        query = sa.select(events).where(events.c.id > after_id)
        if kind is not None and kind != "*":
            if kind.endswith(".*"):
                query = query.where(events.c.kind.startswith(kind[:-1], autoescape=True))
            else:
                query = query.where(events.c.kind == kind)
        if subject is not None:
            query = query.where(events.c.subject == subject)
        if service is not None:
            ids = sa.select(deployments.c.id).where(deployments.c.service == service)
            query = query.where(sa.or_(events.c.subject == service, events.c.subject.in_(ids)))
        query = query.order_by(events.c.id.desc()).limit(limit)
        with self._db.read() as conn:
            rows = [_event(r) for r in conn.execute(query).mappings()]
        rows.reverse()
        return rows

    def last_id(self) -> int:
        """The newest event's id, 0 when the log is empty (a watcher's starting point)."""
        with self._db.read() as conn:
            return int(conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0)


def _event(row: sa.RowMapping) -> Event:
    return Event(
        id=int(row["id"]),
        at=row["at"],
        actor=row["actor"],
        kind=row["kind"],
        subject=row["subject"],
        message=row["message"],
        data=row["data"],
    )
