"""Deployments: the lifecycle's durable record, with optimistic concurrency.

Two rules live here, enforced by the database and checked first for a clear message:

- **one active deployment per service** (a partial unique index on ``service WHERE active``):
  a second ``create`` with ``active=True`` raises :class:`ConflictError` naming the first;
- **no lost updates**: ``update`` takes the ``version`` the caller read and fails with
  :class:`ConflictError` when someone else has written since (``UPDATE ... WHERE version=?``).

The store does not interpret ``config``, ``state``, ``phase`` or ``status``; the lifecycle
decides what they mean and when a deployment stops being ``active``.
"""

from __future__ import annotations

import builtins
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from sluicegate.errors import ConflictError, NotFoundError

from ._base import Repository
from ._records import Deployment
from ._schema import deployments, services

__all__ = ["DeploymentRepository", "new_deployment_id"]


def new_deployment_id() -> str:
    """A fresh id in CodeDeploy's style: ``d-`` and 12 random hex digits."""
    return "d-" + secrets.token_hex(6)


class DeploymentRepository(Repository):
    def create(
        self,
        service: str,
        revision: str,
        *,
        config: dict[str, Any],
        state: dict[str, Any],
        phase: str,
        status: str,
        from_revision: str | None = None,
        active: bool = True,
        id: str | None = None,
    ) -> Deployment:
        """Record a new deployment at version 1.

        :class:`NotFoundError` for an unknown service; :class:`ConflictError` when ``active``
        and the service already has an active deployment, or when ``id`` is taken.
        """
        now = self._clock.now()
        values: dict[str, Any] = {
            "id": id or new_deployment_id(),
            "service": service,
            "revision": revision,
            "from_revision": from_revision,
            "config": config,
            "state": state,
            "phase": phase,
            "status": status,
            "active": active,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        with self._db.write() as conn:
            known = conn.execute(sa.select(services.c.name).where(services.c.name == service))
            if known.first() is None:
                raise NotFoundError(f"service {service!r} not found")
            if active:
                _refuse_second_active(conn, service, values["id"])
            try:
                conn.execute(sa.insert(deployments).values(values))
            except exc.IntegrityError as err:
                raise ConflictError(
                    f"cannot create deployment {values['id']} of service {service!r}: the id "
                    "is taken or another deployment became active at the same time"
                ) from err
        return _deployment(values)

    def get(self, id: str) -> Deployment:
        """Raises :class:`NotFoundError` for an unknown id."""
        with self._db.read() as conn:
            return _deployment(_one(conn, id))

    def list(self, service: str | None = None, *, limit: int | None = None) -> list[Deployment]:
        """Newest first; all services when ``service`` is None."""
        query = sa.select(deployments).order_by(
            deployments.c.created_at.desc(), deployments.c.id.desc()
        )
        if service is not None:
            query = query.where(deployments.c.service == service)
        if limit is not None:
            query = query.limit(limit)
        with self._db.read() as conn:
            return [_deployment(r) for r in conn.execute(query).mappings()]

    def active_for(self, service: str) -> Deployment | None:
        """The service's active deployment, if any."""
        with self._db.read() as conn:
            row = _active_row(conn, service)
        return None if row is None else _deployment(row)

    def list_active(self) -> builtins.list[Deployment]:
        """Every active deployment, oldest first: what a restarted controller resumes."""
        query = (
            sa.select(deployments)
            .where(deployments.c.active.is_(True))
            .order_by(deployments.c.created_at, deployments.c.id)
        )
        with self._db.read() as conn:
            return [_deployment(r) for r in conn.execute(query).mappings()]

    def update(
        self,
        id: str,
        expected_version: int,
        *,
        state: dict[str, Any] | None = None,
        phase: str | None = None,
        status: str | None = None,
        active: bool | None = None,
    ) -> Deployment:
        """Change the given fields (None = unchanged) if the stored version is still
        ``expected_version``; returns the record at ``expected_version + 1``.

        :class:`NotFoundError` for an unknown id; :class:`ConflictError` when the version
        moved on (re-read and decide again) or when ``active=True`` would make a second
        active deployment of the service.
        """
        changes: dict[str, Any] = {
            k: v
            for k, v in {"state": state, "phase": phase, "status": status, "active": active}.items()
            if v is not None
        }
        changes["updated_at"] = self._clock.now()
        changes["version"] = expected_version + 1
        with self._db.write() as conn:
            current = _one(conn, id)
            if current["version"] != expected_version:
                raise _stale(id, expected_version, current["version"])
            if active and not current["active"]:
                _refuse_second_active(conn, current["service"], id)
            result = conn.execute(
                sa.update(deployments)
                .where(deployments.c.id == id, deployments.c.version == expected_version)
                .values(changes)
            )
            if result.rowcount != 1:
                raise _stale(id, expected_version, None)
            return _deployment({**current, **changes})


def _refuse_second_active(conn: sa.Connection, service: str, id: str) -> None:
    other = _active_row(conn, service)
    if other is not None and other["id"] != id:
        raise ConflictError(
            f"service {service!r} already has an active deployment {other['id']} "
            f"(revision {other['revision']}, status {other['status']}); "
            "stop it or wait for it to finish"
        )


def _stale(id: str, expected: int, found: int | None) -> ConflictError:
    now = f"it is at version {found}" if found is not None else "it changed meanwhile"
    return ConflictError(
        f"deployment {id} was changed by someone else: expected version {expected}, {now}"
    )


def _one(conn: sa.Connection, id: str) -> sa.RowMapping:
    row = conn.execute(sa.select(deployments).where(deployments.c.id == id)).mappings().first()
    if row is None:
        raise NotFoundError(f"deployment {id!r} not found")
    return row


def _active_row(conn: sa.Connection, service: str) -> sa.RowMapping | None:
    query = sa.select(deployments).where(
        deployments.c.service == service, deployments.c.active.is_(True)
    )
    return conn.execute(query).mappings().first()


def _deployment(row: Any) -> Deployment:
    return Deployment(
        id=row["id"],
        service=row["service"],
        revision=row["revision"],
        from_revision=row["from_revision"],
        config=row["config"],
        state=row["state"],
        phase=row["phase"],
        status=row["status"],
        active=bool(row["active"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )
