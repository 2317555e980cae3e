"""Bring a database to the newest schema, programmatically: no alembic.ini, no CLI.

``upgrade`` runs at every ``Store.open``. On an up-to-date database it only reads the version
table, so re-opening is cheap and idempotent. It runs in one write transaction (all or
nothing; SQLite and PostgreSQL both have transactional DDL), and on PostgreSQL under an
advisory lock, so two servers starting at once do not both try to create the tables.
A database migrated by a *newer* Sluicegate is refused rather than guessed at.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

from sluicegate.errors import ConflictError

from ._engine import begin
from ._schema import VERSION_TABLE

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_revision", "head_revision", "upgrade"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key for migrations (any constant unique to Sluicegate).
_PG_MIGRATE_LOCK = 0x5155_1CE0


def alembic_config() -> Config:
    """An Alembic config pointing at the migrations shipped in the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def current_revision(conn: Connection) -> str | None:
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def upgrade(engine: Engine) -> None:
    """Migrate ``engine``'s database to the head revision (a no-op when it is there already).

    Raises :class:`ConflictError` when the database was migrated by a newer Sluicegate.
    """
    head = head_revision()
    with begin(engine, write=True) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATE_LOCK})
        current = current_revision(conn)
        if current == head:
            return
        cfg = alembic_config()
        if current is not None and not _known(cfg, current):
            raise ConflictError(_newer(current, head))
        cfg.attributes["connection"] = conn
        try:
            command.upgrade(cfg, "head")
        except (CommandError, RevisionError) as err:
            raise ConflictError(_newer(current, head) + f" ({err})") from err
        log.info("database schema migrated from %s to %s", current or "empty", head)


def _known(cfg: Config, revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(cfg).get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


def _newer(current: str | None, head: str) -> str:
    return (
        f"the database schema is at revision {current!r}, which this Sluicegate does not "
        f"know (its newest is {head!r}); upgrade Sluicegate to open this database"
    )
