"""Alarms: the current state of each ``<service>/<name>`` alarm, with its reason and last
evaluation. Their history is the event log (``kind="alarm.state"``, subject the alarm id):
callers append that event in the same transaction as the change (``store.transaction()``).

Metric alarms follow the service spec (:meth:`AlarmRepository.sync`); external ones
(Alertmanager) are created on first sight (:meth:`AlarmRepository.ensure_external`).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sluicegate.errors import NotFoundError

from ._base import Repository
from ._records import Alarm
from ._schema import alarms, services

__all__ = ["AlarmRepository", "DeclaredAlarm", "SyncResult"]

INITIAL_REASON = "Unchecked: initial alarm creation."
_UNSET: Any = object()


@dataclass(frozen=True)
class DeclaredAlarm:
    """A metric alarm as the service spec declares it (``spec`` is its JSON)."""

    name: str
    spec: dict[str, Any]
    guard: bool


@dataclass(frozen=True)
class SyncResult:
    created: tuple[str, ...]
    updated: tuple[str, ...]
    deleted: tuple[str, ...]


class AlarmRepository(Repository):
    def sync(self, service: str, declared: Sequence[DeclaredAlarm]) -> SyncResult:
        """Make the service's metric alarms the ``declared`` ones: new ones start in
        INSUFFICIENT_DATA, kept ones keep their state (spec and guard replaced), the others
        are deleted. External alarms are left alone."""
        now = self._clock.now()
        with self._db.write() as conn:
            _service_row(conn, service)
            rows = {
                r["name"]: r
                for r in conn.execute(
                    sa.select(alarms).where(alarms.c.service == service, alarms.c.kind == "metric")
                ).mappings()
            }
            wanted = {d.name: d for d in declared}
            created, updated = [], []
            for name, d in wanted.items():
                row = rows.get(name)
                if row is None:
                    conn.execute(
                        sa.insert(alarms).values(
                            _new(service, name, "metric", d.spec, d.guard, now)
                        )
                    )
                    created.append(name)
                elif row["spec"] != d.spec or row["guard"] != d.guard:
                    conn.execute(
                        sa.update(alarms)
                        .where(*_key(service, name))
                        .values(spec=d.spec, guard=d.guard, updated_at=now)
                    )
                    updated.append(name)
            deleted = sorted(set(rows) - set(wanted))
            if deleted:
                conn.execute(
                    sa.delete(alarms).where(alarms.c.service == service, alarms.c.name.in_(deleted))
                )
        return SyncResult(tuple(created), tuple(updated), tuple(deleted))

    def ensure_external(self, service: str, name: str, *, guard: bool = True) -> Alarm:
        """The external alarm ``service/name``, created (INSUFFICIENT_DATA) if new."""
        with self._db.write() as conn:
            _service_row(conn, service)
            row = _row(conn, service, name)
            if row is None:
                conn.execute(
                    sa.insert(alarms).values(
                        _new(service, name, "external", None, guard, self._clock.now())
                    )
                )
                row = _row(conn, service, name)
            assert row is not None
            return _alarm(row)

    def get(self, service: str, name: str) -> Alarm:
        """Raises :class:`NotFoundError` for an unknown alarm."""
        with self._db.read() as conn:
            row = _row(conn, service, name)
        if row is None:
            raise NotFoundError(f"alarm {service}/{name} not found")
        return _alarm(row)

    def list(self, service: str | None = None) -> builtins.list[Alarm]:
        """Ordered by service and name."""
        query = sa.select(alarms).order_by(alarms.c.service, alarms.c.name)
        if service is not None:
            query = query.where(alarms.c.service == service)
        with self._db.read() as conn:
            return [_alarm(r) for r in conn.execute(query).mappings()]

    def update(
        self,
        service: str,
        name: str,
        *,
        state: str | None = None,
        reason: str | None = None,
        evaluation: Mapping[str, Any] | None = None,
        binding: Mapping[str, Any] | None = None,
        evaluated_at: float | None = None,
        forced_until: float | None = _UNSET,
        error_since: float | None = _UNSET,
    ) -> tuple[Alarm, Alarm]:
        """Change the given fields; returns (before, after). A new ``state`` different from
        the stored one moves ``state_changed_at`` to now. ``forced_until`` and
        ``error_since`` may be set to None (cleared); other fields None mean unchanged."""
        now = self._clock.now()
        with self._db.write() as conn:
            row = _row(conn, service, name)
            if row is None:
                raise NotFoundError(f"alarm {service}/{name} not found")
            values: dict[str, Any] = {"updated_at": now}
            if state is not None and state != row["state"]:
                values["state"] = state
                values["state_changed_at"] = now
            for key, value in (("reason", reason), ("evaluated_at", evaluated_at)):
                if value is not None:
                    values[key] = value
            if evaluation is not None:
                values["evaluation"] = dict(evaluation)
            if binding is not None:
                values["binding"] = dict(binding)
            if forced_until is not _UNSET:
                values["forced_until"] = forced_until
            if error_since is not _UNSET:
                values["error_since"] = error_since
            conn.execute(sa.update(alarms).where(*_key(service, name)).values(values))
            after = _row(conn, service, name)
            assert after is not None
            return _alarm(row), _alarm(after)

    def delete(self, service: str, name: str) -> None:
        with self._db.write() as conn:
            if _row(conn, service, name) is None:
                raise NotFoundError(f"alarm {service}/{name} not found")
            conn.execute(sa.delete(alarms).where(*_key(service, name)))


def _new(
    service: str, name: str, kind: str, spec: dict[str, Any] | None, guard: bool, now: float
) -> dict[str, Any]:
    return {
        "service": service,
        "name": name,
        "kind": kind,
        "spec": spec,
        "guard": guard,
        "state": "INSUFFICIENT_DATA",
        "reason": INITIAL_REASON,
        "evaluation": {},
        "binding": {},
        "state_changed_at": now,
        "evaluated_at": None,
        "forced_until": None,
        "error_since": None,
        "created_at": now,
        "updated_at": now,
    }


def _key(service: str, name: str) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    return alarms.c.service == service, alarms.c.name == name


def _row(conn: sa.Connection, service: str, name: str) -> sa.RowMapping | None:
    return conn.execute(sa.select(alarms).where(*_key(service, name))).mappings().first()


def _service_row(conn: sa.Connection, service: str) -> None:
    found = conn.execute(sa.select(services.c.name).where(services.c.name == service)).first()
    if found is None:
        raise NotFoundError(f"service {service!r} not found")


def _alarm(row: sa.RowMapping) -> Alarm:
    return Alarm(
        service=row["service"],
        name=row["name"],
        kind=row["kind"],
        spec=row["spec"],
        guard=bool(row["guard"]),
        state=row["state"],
        reason=row["reason"],
        evaluation=row["evaluation"],
        binding=row["binding"],
        state_changed_at=row["state_changed_at"],
        evaluated_at=row["evaluated_at"],
        forced_until=row["forced_until"],
        error_since=row["error_since"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
