"""Flag environments, their immutable numbered flag-set versions, and flag rollouts.

Rules enforced here, checked first for a clear message and backed by the database:

- **versions are immutable and numbered** 1, 2, 3 … per environment (primary key
  ``(env, version)``); nothing here updates one, and only deleting the whole environment
  (refused while it is in use) deletes them;
- **no lost edits**: :meth:`FlagRepository.append_version` with ``expected_version`` fails
  with :class:`ConflictError` unless the environment's current version is still that one;
- **one change in flight**: no version is appended while a rollout is in progress, and at
  most one rollout per environment is active (a partial unique index);
- **no lost updates** of a rollout: ``update`` takes the ``version`` the caller read.

Every write to an environment first locks its row (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` already admits one writer at a time), so check-then-write is
atomic on both backends, also for callers that group several calls in
``store.transaction()``.
"""

from __future__ import annotations

import builtins
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from sluicegate.errors import ConflictError, NotFoundError

from ._base import Repository
from ._records import FlagEnvironment, FlagRollout, FlagSetVersion, FlagVersionInfo
from ._schema import flag_environments, flag_rollouts, flag_set_versions, tokens

__all__ = ["FlagRepository", "FlagRolloutRepository", "new_rollout_id"]

_INFO = (
    flag_set_versions.c.env,
    flag_set_versions.c.version,
    flag_set_versions.c.created_at,
    flag_set_versions.c.actor,
    flag_set_versions.c.message,
)


def new_rollout_id() -> str:
    """A fresh rollout id: ``fr-`` and 12 random hex digits (it salts the rollout's buckets)."""
    return "fr-" + secrets.token_hex(6)


class FlagRepository(Repository):
    """Environments and their versions."""

    def create_environment(self, name: str, description: str = "") -> FlagEnvironment:
        """:class:`ConflictError` when ``name`` exists."""
        now = self._clock.now()
        values: dict[str, Any] = {
            "name": name,
            "description": description,
            "current_version": None,
            "created_at": now,
        }
        with self._db.write() as conn:
            if _env_row(conn, name) is not None:
                raise ConflictError(f"flag environment {name!r} already exists")
            try:
                conn.execute(sa.insert(flag_environments).values(values))
            except exc.IntegrityError as err:
                raise ConflictError(f"flag environment {name!r} already exists") from err
        return FlagEnvironment(name, description, None, None, now)

    def environment(self, name: str) -> FlagEnvironment:
        """:class:`NotFoundError` for an unknown environment."""
        with self._db.read() as conn:
            row = _env_row(conn, name)
            if row is None:
                raise _no_env(name)
            return _environment(row, _latest(conn, name))

    def delete_environment(self, name: str) -> int:
        """Delete an environment with its versions and rollouts; returns how many versions
        it had. :class:`NotFoundError` for an unknown one; :class:`ConflictError` while it
        is in use: a rollout in progress, or valid (unrevoked, unexpired) agent tokens that
        read it."""
        with self._db.write() as conn:
            _lock_env(conn, name)
            active = _active_rollout_row(conn, name)
            if active is not None:
                raise _rollout_in_progress(active)
            now = self._clock.now()
            readers = conn.execute(
                sa.select(tokens.c.name)
                .where(
                    tokens.c.env == name,
                    tokens.c.revoked_at.is_(None),
                    sa.or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > now),
                )
                .order_by(tokens.c.created_at, tokens.c.id)
            ).scalars()
            names = list(readers)
            if names:
                raise ConflictError(
                    f"flag environment {name!r} is read by {len(names)} agent "
                    f"token{'s' if len(names) != 1 else ''} ({', '.join(names[:5])}"
                    f"{', ...' if len(names) > 5 else ''}); revoke them first"
                )
            count = _latest(conn, name) or 0
            conn.execute(sa.delete(flag_rollouts).where(flag_rollouts.c.env == name))
            conn.execute(sa.delete(flag_set_versions).where(flag_set_versions.c.env == name))
            conn.execute(sa.delete(flag_environments).where(flag_environments.c.name == name))
        return count

    def environments(self) -> list[FlagEnvironment]:
        latest = (
            sa.select(
                flag_set_versions.c.env, sa.func.max(flag_set_versions.c.version).label("latest")
            )
            .group_by(flag_set_versions.c.env)
            .subquery()
        )
        query = (
            sa.select(flag_environments, latest.c.latest)
            .join(latest, latest.c.env == flag_environments.c.name, isouter=True)
            .order_by(flag_environments.c.name)
        )
        with self._db.read() as conn:
            return [_environment(r, r["latest"]) for r in conn.execute(query).mappings()]

    def append_version(
        self,
        env: str,
        document: dict[str, Any],
        *,
        actor: str,
        message: str = "",
        expected_version: int | None = None,
        publish: bool = True,
    ) -> FlagSetVersion:
        """Save ``document`` as the environment's next version number.

        ``expected_version`` (0 = "no version yet") must be the current version, else
        :class:`ConflictError`; so must be the absence of a rollout in progress. With
        ``publish`` the new version becomes current at once; without, it waits for a
        rollout (create it in the same transaction). :class:`NotFoundError` for an unknown
        environment.
        """
        with self._db.write() as conn:
            _changeable(conn, env, expected_version)
            number = (_latest(conn, env) or 0) + 1
            values: dict[str, Any] = {
                "env": env,
                "version": number,
                "document": document,
                "created_at": self._clock.now(),
                "actor": actor,
                "message": message,
            }
            try:
                conn.execute(sa.insert(flag_set_versions).values(values))
            except exc.IntegrityError as err:
                raise ConflictError(
                    f"version {number} of flag set {env!r} was saved by "
                    "someone else at the same time; re-apply"
                ) from err
            if publish:
                conn.execute(
                    sa.update(flag_environments)
                    .where(flag_environments.c.name == env)
                    .values(current_version=number)
                )
        return FlagSetVersion(env, number, values["created_at"], actor, message, document)

    def lock(self, env: str, *, expected_version: int | None = None) -> FlagEnvironment:
        """Lock the environment for a change until the transaction ends (use inside
        ``store.transaction()``), checking what :meth:`append_version` checks: the
        expected version and no rollout in progress (:class:`ConflictError`)."""
        with self._db.write() as conn:
            return _environment(_changeable(conn, env, expected_version), _latest(conn, env))

    def version(self, env: str, number: int | None = None) -> FlagSetVersion:
        """Version ``number``, or the current one; :class:`NotFoundError` when missing."""
        with self._db.read() as conn:
            if number is None:
                row = _env_row(conn, env)
                if row is None:
                    raise _no_env(env)
                number = row["current_version"]
                if number is None:
                    raise NotFoundError(
                        f"flag environment {env!r} has no flag set yet; apply one first"
                    )
            found = (
                conn.execute(
                    sa.select(flag_set_versions).where(
                        flag_set_versions.c.env == env,
                        flag_set_versions.c.version == number,
                    )
                )
                .mappings()
                .first()
            )
            if found is None:
                if _env_row(conn, env) is None:
                    raise _no_env(env)
                raise NotFoundError(f"flag set {env!r} has no version {number}")
            return FlagSetVersion(
                found["env"],
                found["version"],
                found["created_at"],
                found["actor"],
                found["message"],
                found["document"],
            )

    def history(self, env: str, *, limit: int = 100) -> list[FlagVersionInfo]:
        """Versions newest first, without their documents."""
        query = (
            sa.select(*_INFO)
            .where(flag_set_versions.c.env == env)
            .order_by(flag_set_versions.c.version.desc())
            .limit(limit)
        )
        with self._db.read() as conn:
            if _env_row(conn, env) is None:
                raise _no_env(env)
            return [
                FlagVersionInfo(r["env"], r["version"], r["created_at"], r["actor"], r["message"])
                for r in conn.execute(query).mappings()
            ]


class FlagRolloutRepository(Repository):
    """Rollouts of flag-set versions, with optimistic concurrency."""

    def create(
        self,
        env: str,
        *,
        from_version: int,
        to_version: int,
        strategy: dict[str, Any],
        state: dict[str, Any],
        phase: str,
        id: str | None = None,
    ) -> FlagRollout:
        """Record an active rollout at version 1; :class:`ConflictError` when the
        environment already has one in progress."""
        now = self._clock.now()
        values: dict[str, Any] = {
            "id": id or new_rollout_id(),
            "env": env,
            "from_version": from_version,
            "to_version": to_version,
            "strategy": strategy,
            "state": state,
            "phase": phase,
            "active": True,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        with self._db.write() as conn:
            _lock_env(conn, env)
            active = _active_rollout_row(conn, env)
            if active is not None:
                raise _rollout_in_progress(active)
            try:
                conn.execute(sa.insert(flag_rollouts).values(values))
            except exc.IntegrityError as err:
                raise ConflictError(
                    f"cannot record rollout {values['id']} of {env!r}: the id "
                    "is taken, a version is missing, or another rollout "
                    "started at the same time"
                ) from err
        return _rollout(values)

    def get(self, id: str) -> FlagRollout:
        with self._db.read() as conn:
            return _rollout(_rollout_row(conn, id))

    def active_for(self, env: str) -> FlagRollout | None:
        with self._db.read() as conn:
            row = _active_rollout_row(conn, env)
        return None if row is None else _rollout(row)

    def list(self, env: str | None = None, *, limit: int = 20) -> list[FlagRollout]:
        """Newest first."""
        query = (
            sa.select(flag_rollouts)
            .order_by(flag_rollouts.c.created_at.desc(), flag_rollouts.c.id.desc())
            .limit(limit)
        )
        if env is not None:
            query = query.where(flag_rollouts.c.env == env)
        with self._db.read() as conn:
            return [_rollout(r) for r in conn.execute(query).mappings()]

    def list_active(self) -> builtins.list[FlagRollout]:
        """Every rollout in progress, oldest first: what a restarted engine resumes."""
        query = (
            sa.select(flag_rollouts)
            .where(flag_rollouts.c.active.is_(True))
            .order_by(flag_rollouts.c.created_at, flag_rollouts.c.id)
        )
        with self._db.read() as conn:
            return [_rollout(r) for r in conn.execute(query).mappings()]

    def update(
        self,
        id: str,
        expected_version: int,
        *,
        state: dict[str, Any],
        phase: str,
        active: bool,
        publish: bool = False,
    ) -> FlagRollout:
        """Record the rollout's new state if it is still at ``expected_version`` (else
        :class:`ConflictError`); with ``publish`` its ``to_version`` becomes the
        environment's current version in the same transaction. Ending a rollout
        (``active=False``) is for good: an ended rollout is not started again."""
        with self._db.write() as conn:
            current = _rollout_row(conn, id)
            _lock_env(conn, current["env"])
            if current["version"] != expected_version:
                raise _stale(id, expected_version, current["version"])
            if active and not current["active"]:
                raise ConflictError(f"rollout {id} has ended; it cannot be resumed")
            changes: dict[str, Any] = {
                "state": state,
                "phase": phase,
                "active": active,
                "updated_at": self._clock.now(),
                "version": expected_version + 1,
            }
            result = conn.execute(
                sa.update(flag_rollouts)
                .where(
                    flag_rollouts.c.id == id,
                    flag_rollouts.c.version == expected_version,
                )
                .values(changes)
            )
            if result.rowcount != 1:
                raise _stale(id, expected_version, None)
            if publish:
                conn.execute(
                    sa.update(flag_environments)
                    .where(flag_environments.c.name == current["env"])
                    .values(current_version=current["to_version"])
                )
            return _rollout({**current, **changes})


def _env_row(conn: sa.Connection, name: str) -> sa.RowMapping | None:
    query = sa.select(flag_environments).where(flag_environments.c.name == name)
    return conn.execute(query).mappings().first()


def _lock_env(conn: sa.Connection, name: str) -> sa.RowMapping:
    """The environment's row, locked until the transaction ends (PostgreSQL)."""
    query = sa.select(flag_environments).where(flag_environments.c.name == name)
    row = conn.execute(query.with_for_update()).mappings().first()
    if row is None:
        raise _no_env(name)
    return row


def _changeable(conn: sa.Connection, env: str, expected_version: int | None) -> sa.RowMapping:
    row = _lock_env(conn, env)
    current = row["current_version"]
    if expected_version is not None and (current or 0) != expected_version:
        raise ConflictError(
            f"flag set {env!r} is at version {current or 0}, not {expected_version}: "
            "someone changed it meanwhile; read it again and re-apply your change"
        )
    active = _active_rollout_row(conn, env)
    if active is not None:
        raise _rollout_in_progress(active)
    return row


def _latest(conn: sa.Connection, env: str) -> int | None:
    query = sa.select(sa.func.max(flag_set_versions.c.version)).where(
        flag_set_versions.c.env == env
    )
    value = conn.execute(query).scalar()
    return None if value is None else int(value)


def _active_rollout_row(conn: sa.Connection, env: str) -> sa.RowMapping | None:
    query = sa.select(flag_rollouts).where(
        flag_rollouts.c.env == env, flag_rollouts.c.active.is_(True)
    )
    return conn.execute(query).mappings().first()


def _rollout_row(conn: sa.Connection, id: str) -> sa.RowMapping:
    row = conn.execute(sa.select(flag_rollouts).where(flag_rollouts.c.id == id)).mappings().first()
    if row is None:
        raise NotFoundError(f"flag rollout {id!r} not found")
    return row


def _no_env(name: str) -> NotFoundError:
    return NotFoundError(
        f"flag environment {name!r} not found (create it: sluice flags envs create {name})"
    )


def _rollout_in_progress(row: sa.RowMapping) -> ConflictError:
    return ConflictError(
        f"a rollout of version {row['to_version']} is in progress in {row['env']!r} "
        f"({row['id']}, {row['phase']}); wait for it to finish, or stop or roll it back "
        f"first (sluice flags rollout stop|rollback {row['env']})"
    )


def _stale(id: str, expected: int, found: int | None) -> ConflictError:
    now = f"it is at version {found}" if found is not None else "it changed meanwhile"
    return ConflictError(
        f"flag rollout {id} was changed by someone else: expected version {expected}, {now}"
    )


def _environment(row: Any, latest: int | None) -> FlagEnvironment:
    return FlagEnvironment(
        row["name"],
        row["description"],
        row["current_version"],
        None if latest is None else int(latest),
        row["created_at"],
    )


def _rollout(row: Any) -> FlagRollout:
    return FlagRollout(
        id=row["id"],
        env=row["env"],
        from_version=row["from_version"],
        to_version=row["to_version"],
        strategy=row["strategy"],
        state=row["state"],
        phase=row["phase"],
        active=bool(row["active"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )
