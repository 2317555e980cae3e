"""Webhook subscriptions, their deliveries and the engine's cursor in the event log.

A delivery row is created for each (event, webhook) the engine matched, in the same
transaction that moves the cursor past the event, so an event is matched exactly once even
across restarts. The row then carries the retries: ``pending`` with ``next_attempt_at``,
``delivered`` or ``failed``. Secrets are stored as given (signing needs them) and are only
read by the engine.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sluicegate.errors import NotFoundError

from ._base import Repository, upsert
from ._records import Delivery, Event, Webhook
from ._schema import events, webhook_cursor, webhook_deliveries, webhooks

__all__ = ["DeliveryRepository", "WebhookRepository", "new_webhook_id"]

_CURSOR_ROW = 1
#: Rows per multi-row INSERT (SQLite allows a limited number of bound parameters).
_ROWS_PER_INSERT = 50


def new_webhook_id() -> str:
    return f"wh_{secrets.token_hex(6)}"


class WebhookRepository(Repository):
    def create(
        self,
        url: str,
        events_: Iterable[str],
        secret: str,
        *,
        enabled: bool = True,
        after_event_id: int | None = None,
    ) -> Webhook:
        """Store a subscription; by default only events appended after now are delivered."""
        now = self._clock.now()
        with self._db.write() as conn:
            if after_event_id is None:
                after_event_id = int(
                    conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0
                )
            row = {
                "id": new_webhook_id(),
                "url": url,
                "events": list(events_),
                "secret": secret,
                "enabled": enabled,
                "after_event_id": after_event_id,
                "created_at": now,
                "updated_at": now,
            }
            conn.execute(sa.insert(webhooks).values(row))
        return _webhook(row)

    def get(self, webhook_id: str) -> Webhook:
        with self._db.read() as conn:
            row = (
                conn.execute(sa.select(webhooks).where(webhooks.c.id == webhook_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"webhook {webhook_id!r} not found")
        return _webhook(row)

    def list(self) -> list[Webhook]:
        """Every subscription, oldest first."""
        query = sa.select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id)
        with self._db.read() as conn:
            return [_webhook(r) for r in conn.execute(query).mappings()]

    def set_enabled(self, webhook_id: str, enabled: bool) -> Webhook:
        with self._db.write() as conn:
            done = conn.execute(
                sa.update(webhooks)
                .where(webhooks.c.id == webhook_id)
                .values(enabled=enabled, updated_at=self._clock.now())
            )
        if done.rowcount == 0:
            raise NotFoundError(f"webhook {webhook_id!r} not found")
        return self.get(webhook_id)

    def delete(self, webhook_id: str) -> None:
        """Delete a subscription and its deliveries."""
        with self._db.write() as conn:
            done = conn.execute(sa.delete(webhooks).where(webhooks.c.id == webhook_id))
        if done.rowcount == 0:
            raise NotFoundError(f"webhook {webhook_id!r} not found")


class DeliveryRepository(Repository):
    def cursor(self) -> int | None:
        """The id of the last event the engine matched; None before its first run."""
        with self._db.read() as conn:
            value = conn.execute(sa.select(webhook_cursor.c.event_id)).scalar()
        return None if value is None else int(value)

    def set_cursor(self, event_id: int) -> None:
        with self._db.write() as conn:
            upsert(
                conn,
                webhook_cursor,
                {"id": _CURSOR_ROW, "event_id": event_id, "updated_at": self._clock.now()},
            )

    def enqueue(self, matches: Iterable[tuple[str, int, str]]) -> int:
        """Pending deliveries for (webhook id, event id, kind), due now; a pair already
        queued is left as it is. Returns how many were new."""
        now = self._clock.now()
        rows = [
            {
                "webhook_id": w,
                "event_id": e,
                "kind": k,
                "status": "pending",
                "attempts": 0,
                "last_status": None,
                "last_error": None,
                "next_attempt_at": now,
                "delivered_at": None,
                "created_at": now,
                "updated_at": now,
            }
            for w, e, k in matches
        ]
        if not rows:
            return 0
        added = 0
        with self._db.write() as conn:
            dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
            for i in range(0, len(rows), _ROWS_PER_INSERT):
                stmt = (
                    dialect.insert(webhook_deliveries)
                    .values(rows[i : i + _ROWS_PER_INSERT])
                    .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
                    .returning(webhook_deliveries.c.id)
                )
                added += len(conn.execute(stmt).all())
        return added

    def due(
        self,
        now: float,
        *,
        limit: int,
        exclude: Collection[int] = (),
        per_webhook: int | None = None,
    ) -> list[tuple[Delivery, Event]]:
        """Pending deliveries of enabled webhooks whose next attempt is due, oldest due first,
        with their events: at most ``per_webhook`` per webhook (so one webhook's backlog
        cannot crowd out the others) and none of ``exclude`` (ids already in flight)."""
        d = webhook_deliveries
        order = (d.c.next_attempt_at, d.c.id)
        ranked = (
            sa.select(
                d.c.id,
                sa.func.row_number()
                .over(partition_by=d.c.webhook_id, order_by=order)
                .label("rank"),
            )
            .join(webhooks, webhooks.c.id == d.c.webhook_id)
            .where(
                webhooks.c.enabled.is_(True), d.c.status == "pending", d.c.next_attempt_at <= now
            )
        )
        if exclude:
            ranked = ranked.where(d.c.id.not_in(list(exclude)))
        sub = ranked.subquery()
        query = (
            sa.select(d, *_EVENT_COLUMNS)
            .join(sub, sub.c.id == d.c.id)
            .join(events, events.c.id == d.c.event_id)
            .order_by(*order)
            .limit(limit)
        )
        if per_webhook is not None:
            query = query.where(sub.c.rank <= per_webhook)
        with self._db.read() as conn:
            return [(_delivery(r), _event(r)) for r in conn.execute(query).mappings()]

    def record(
        self,
        delivery_id: int,
        *,
        status: str,
        attempts: int,
        last_status: int | None,
        last_error: str | None,
        next_attempt_at: float | None,
        delivered_at: float | None,
    ) -> Delivery | None:
        """Store an attempt's outcome; None when the delivery is gone (webhook deleted)."""
        values = {
            "status": status,
            "attempts": attempts,
            "last_status": last_status,
            "last_error": last_error,
            "next_attempt_at": next_attempt_at,
            "delivered_at": delivered_at,
            "updated_at": self._clock.now(),
        }
        with self._db.write() as conn:
            conn.execute(
                sa.update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(values)
            )
            row = (
                conn.execute(
                    sa.select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
                )
                .mappings()
                .first()
            )
        return None if row is None else _delivery(row)

    def get(self, delivery_id: int) -> Delivery:
        with self._db.read() as conn:
            row = (
                conn.execute(
                    sa.select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"delivery {delivery_id} not found")
        return _delivery(row)

    def list(
        self, webhook_id: str, *, status: str | None = None, limit: int = 50
    ) -> list[Delivery]:
        """A webhook's latest deliveries, newest first."""
        query = (
            sa.select(webhook_deliveries)
            .where(webhook_deliveries.c.webhook_id == webhook_id)
            .order_by(webhook_deliveries.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(webhook_deliveries.c.status == status)
        with self._db.read() as conn:
            return [_delivery(r) for r in conn.execute(query).mappings()]


_EVENT_COLUMNS = [
    events.c[name].label(f"event_{name}") for name in ("at", "actor", "subject", "message", "data")
]


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=row["id"],
        url=row["url"],
        events=tuple(row["events"]),
        secret=row["secret"],
        enabled=bool(row["enabled"]),
        after_event_id=int(row["after_event_id"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=int(row["id"]),
        webhook_id=row["webhook_id"],
        event_id=int(row["event_id"]),
        kind=row["kind"],
        status=row["status"],
        attempts=int(row["attempts"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        next_attempt_at=row["next_attempt_at"],
        delivered_at=row["delivered_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _event(row: sa.RowMapping) -> Event:
    return Event(
        id=int(row["event_id"]),
        at=row["event_at"],
        actor=row["event_actor"],
        kind=row["kind"],
        subject=row["event_subject"],
        message=row["event_message"],
        data=row["event_data"],
    )
