"""The store's tables as SQLAlchemy Core objects: the one description repositories query.

The migrations in ``migrations/versions`` create the same schema step by step; a test
compares a migrated database with this module, so the two cannot drift apart.

Conventions, chosen so SQLite and PostgreSQL behave alike:

- timestamps are ``Double`` seconds since the epoch, as given by :class:`~sluicegate.clock.Clock`;
- JSON columns are ``JSON`` (``JSONB`` on PostgreSQL), opaque to the store;
- every foreign key names its ``ON DELETE`` behaviour (SQLite enforces them with
  ``PRAGMA foreign_keys=ON``, set on every connection).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "ALARM_STATES",
    "NAMING",
    "ROLES",
    "VERSION_TABLE",
    "alarms",
    "deployments",
    "events",
    "metadata",
    "metric_rollups",
    "replicas",
    "revisions",
    "router_state",
    "services",
    "tokens",
]

#: Alembic's bookkeeping table; a name of our own so a shared PostgreSQL database with
#: another Alembic-managed application does not mix the two histories.
VERSION_TABLE = "sluicegate_schema_version"

#: API roles, most powerful first.
#: ``agent`` tokens are read-only and scoped to one environment's flags (``tokens.env``).
ROLES = ("admin", "deployer", "reader", "agent")

#: An alarm's states (CloudWatch's).
ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")

Json = sa.JSON().with_variant(JSONB(), "postgresql")
#: A 64-bit autoincrement key that SQLite also treats as its ROWID.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: Constraint names fixed by convention, so migrations can refer to them on both backends.
NAMING = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

services = sa.Table(
    "services",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("spec", Json, nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
)

revisions = sa.Table(
    "revisions",
    metadata,
    sa.Column(
        "service",
        sa.String(200),
        sa.ForeignKey("services.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("revision", sa.String(200), primary_key=True),
    sa.Column("overrides", Json, nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "service",
        sa.String(200),
        sa.ForeignKey("services.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("revision", sa.String(200), nullable=False),
    sa.Column("from_revision", sa.String(200), nullable=True),
    sa.Column("config", Json, nullable=False),
    sa.Column("state", Json, nullable=False),
    sa.Column("phase", sa.String(64), nullable=False),
    sa.Column("status", sa.String(64), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Index("ix_deployments_service_created", "service", "created_at"),
    # One active deployment per service, enforced by the database itself.
    sa.Index(
        "uq_deployments_one_active",
        "service",
        unique=True,
        sqlite_where=sa.text("active = 1"),
        postgresql_where=sa.text("active"),
    ),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Double(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("data", Json, nullable=False),
    sa.Index("ix_events_subject_id", "subject", "id"),
    sqlite_autoincrement=True,
)

replicas = sa.Table(
    "replicas",
    metadata,
    sa.Column("service", sa.String(200), primary_key=True),
    sa.Column("revision", sa.String(200), primary_key=True),
    sa.Column("idx", sa.Integer(), primary_key=True),
    sa.Column("port", sa.Integer(), nullable=True),
    sa.Column("pid", sa.Integer(), nullable=True),
    sa.Column("pid_start_time", sa.Double(), nullable=True),
    sa.Column("state", sa.String(64), nullable=False),
    sa.Column("started_at", sa.Double(), nullable=True),
    sa.Column("updated_at", sa.Double(), nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("revoked_at", sa.Double(), nullable=True),
    sa.Column("env", sa.String(200), nullable=True),  # agent tokens: the one env they read
    sa.CheckConstraint("role IN ('admin', 'deployer', 'reader', 'agent')", name="role"),
)

router_state = sa.Table(
    "router_state",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("pid", sa.Integer(), nullable=True),
    sa.Column("pid_start_time", sa.Double(), nullable=True),
    sa.Column("admin_url", sa.String(500), nullable=False),
    sa.Column("config", Json, nullable=False),
    sa.Column("generation", sa.Integer(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
    sa.CheckConstraint("id = 1", name="single_row"),
)

alarms = sa.Table(
    "alarms",
    metadata,
    sa.Column(
        "service",
        sa.String(200),
        sa.ForeignKey("services.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # metric (from the spec) | external
    sa.Column("spec", Json, nullable=True),  # the alarm as declared (metric alarms)
    sa.Column("guard", sa.Boolean(), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("evaluation", Json, nullable=False),  # the last evaluation's datapoints
    sa.Column("binding", Json, nullable=False),  # placeholder values it was evaluated with
    sa.Column("state_changed_at", sa.Double(), nullable=False),
    sa.Column("evaluated_at", sa.Double(), nullable=True),
    sa.Column("forced_until", sa.Double(), nullable=True),  # set-state holds until then
    sa.Column("error_since", sa.Double(), nullable=True),  # its source fails since then
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
    sa.CheckConstraint("kind IN ('metric', 'external')", name="kind"),
    sa.CheckConstraint("state IN ('OK', 'ALARM', 'INSUFFICIENT_DATA')", name="state"),
)

metric_rollups = sa.Table(
    "metric_rollups",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),  # push | router
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("series", sa.String(64), primary_key=True),  # sha256 of the dimensions' JSON
    sa.Column("minute", sa.BigInteger(), primary_key=True),  # epoch seconds, a minute's start
    sa.Column("dimensions", Json, nullable=False),
    sa.Column("count", sa.BigInteger(), nullable=False),
    sa.Column("total", sa.Double(), nullable=False),
    sa.Column("minimum", sa.Double(), nullable=True),
    sa.Column("maximum", sa.Double(), nullable=True),
    sa.Column("hist", Json, nullable=False),  # bucket -> count, in the source's scheme
    sa.Index("ix_metric_rollups_minute", "minute"),
)
