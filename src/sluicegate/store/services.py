"""Services (the user's declared spec) and their revisions (named spec overrides)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sluicegate.errors import ConflictError, NotFoundError

from ._base import Repository, upsert
from ._records import Revision, Service
from ._schema import deployments, replicas, revisions, services

__all__ = ["RevisionRepository", "ServiceRepository"]


class ServiceRepository(Repository):
    """``put`` creates or replaces a service's spec; ``created_at`` survives replacements."""

    def put(self, name: str, spec: dict[str, Any]) -> Service:
        now = self._clock.now()
        values = {"name": name, "spec": spec, "created_at": now, "updated_at": now}
        with self._db.write() as conn:
            upsert(conn, services, values, keep=("created_at",))
            return _service(_one(conn, name))

    def get(self, name: str) -> Service:
        """Raises :class:`NotFoundError` for an unknown service."""
        with self._db.read() as conn:
            return _service(_one(conn, name))

    def list(self) -> list[Service]:
        with self._db.read() as conn:
            rows = conn.execute(sa.select(services).order_by(services.c.name)).mappings()
            return [_service(r) for r in rows]

    def delete(self, name: str) -> None:
        """Delete a service with its revisions and deployment history.

        Refused (:class:`ConflictError`) while it has an active deployment or recorded
        replicas: those must be finished and stopped first, or processes would be orphaned.
        """
        with self._db.write() as conn:
            _one(conn, name)
            active = conn.execute(
                sa.select(deployments.c.id).where(
                    deployments.c.service == name, deployments.c.active.is_(True)
                )
            ).scalar()
            if active is not None:
                raise ConflictError(f"service {name!r} has an active deployment {active}")
            running = conn.execute(
                sa.select(sa.func.count()).where(replicas.c.service == name)
            ).scalar_one()
            if running:
                raise ConflictError(f"service {name!r} still has {running} recorded replica(s)")
            conn.execute(sa.delete(services).where(services.c.name == name))


class RevisionRepository(Repository):
    """Revisions are immutable: creating one again is fine only with the same overrides."""

    def create(self, service: str, revision: str, overrides: dict[str, Any]) -> Revision:
        """Record ``revision`` of ``service`` (idempotent for identical overrides).

        :class:`NotFoundError` for an unknown service; :class:`ConflictError` when the
        revision exists with different overrides (name a new revision instead).
        """
        with self._db.write() as conn:
            _one(conn, service)
            existing = _revision_row(conn, service, revision)
            if existing is not None:
                if existing["overrides"] != overrides:
                    raise ConflictError(
                        f"revision {revision!r} of service {service!r} exists with other "
                        "overrides; revisions are immutable, use a new revision name"
                    )
                return _revision(existing)
            values: dict[str, Any] = {
                "service": service,
                "revision": revision,
                "overrides": overrides,
                "created_at": self._clock.now(),
            }
            conn.execute(sa.insert(revisions).values(values))
            return Revision(**values)

    def get(self, service: str, revision: str) -> Revision:
        with self._db.read() as conn:
            row = _revision_row(conn, service, revision)
        if row is None:
            raise NotFoundError(f"service {service!r} has no revision {revision!r}")
        return _revision(row)

    def list(self, service: str) -> list[Revision]:
        """Oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(revisions)
                .where(revisions.c.service == service)
                .order_by(revisions.c.created_at, revisions.c.revision)
            ).mappings()
            return [_revision(r) for r in rows]


def _one(conn: sa.Connection, name: str) -> sa.RowMapping:
    row = conn.execute(sa.select(services).where(services.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError(f"service {name!r} not found")
    return row


def _revision_row(conn: sa.Connection, service: str, revision: str) -> sa.RowMapping | None:
    query = sa.select(revisions).where(
        revisions.c.service == service, revisions.c.revision == revision
    )
    return conn.execute(query).mappings().first()


def _service(row: sa.RowMapping) -> Service:
    return Service(row["name"], row["spec"], row["created_at"], row["updated_at"])


def _revision(row: sa.RowMapping) -> Revision:
    return Revision(row["service"], row["revision"], row["overrides"], row["created_at"])
