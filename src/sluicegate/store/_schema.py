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
    "deployment_commands",
    "deployments",
    "events",
    "flag_environments",
    "flag_exposure_reporters",
    "flag_exposures",
    "flag_rollouts",
    "flag_set_versions",
    "metadata",
    "metric_rollups",
    "replicas",
    "revisions",
    "router_state",
    "server_heartbeat",
    "services",
    "tokens",
    "webhook_cursor",
    "webhook_deliveries",
    "webhooks",
]

#: Alembic's bookkeeping table; a name of our own so a shared PostgreSQL database with
#: another Alembic-managed application does not mix the two histories.
VERSION_TABLE = "sluicegate_schema_version"

#: States of a webhook delivery.
DELIVERY_STATUSES = ("pending", "delivered", "failed")

#: API roles, most powerful first. The last three are narrow credentials for one job each:
#: ``agent`` reads one environment's flags (``tokens.env``) and reports its exposures,
#: ``metrics`` pushes datapoints (optionally of one service, ``tokens.service``),
#: ``alertmanager`` feeds the Alertmanager receiver.
ROLES = ("admin", "deployer", "reader", "agent", "metrics", "alertmanager")

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

deployment_commands = sa.Table(
    "deployment_commands",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "deployment_id",
        sa.String(64),
        sa.ForeignKey("deployments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("command", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("handled_at", sa.Double(), nullable=True),
    sa.Index("ix_deployment_commands_pending", "deployment_id", "handled_at"),
    sqlite_autoincrement=True,
)

server_heartbeat = sa.Table(
    "server_heartbeat",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("at", sa.Double(), nullable=False),
    sa.CheckConstraint("id = 1", name="single_row"),
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
    sa.Column("service", sa.String(200), nullable=True),  # metrics tokens: one service only
    sa.Column("expires_at", sa.Double(), nullable=True),
    sa.CheckConstraint(
        "role IN ('admin', 'deployer', 'reader', 'agent', 'metrics', 'alertmanager')",
        name="role",
    ),
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

flag_exposures = sa.Table(
    "flag_exposures",
    metadata,
    # Flag evaluations agents reported, summed per environment, flag, variant and minute.
    # No foreign key: telemetry outlives the flag (and even the environment) it counted.
    sa.Column("env", sa.String(64), primary_key=True),
    sa.Column("flag", sa.String(200), primary_key=True),
    sa.Column("variant", sa.String(200), primary_key=True),  # error:CODE for failures
    sa.Column("minute", sa.BigInteger(), primary_key=True),  # epoch seconds, a minute's start
    sa.Column("count", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
    sa.CheckConstraint("count >= 0", name="count_non_negative"),
    sa.Index("ix_flag_exposures_minute", "minute"),
    sa.Index("ix_flag_exposures_env_minute", "env", "minute"),
)

flag_exposure_reporters = sa.Table(
    "flag_exposure_reporters",
    metadata,
    # Each reporting agent process (instance) and the sequence number of the newest report
    # stored from it: a report resent after a lost answer is recognised and not counted twice.
    sa.Column("env", sa.String(64), primary_key=True),
    sa.Column("agent", sa.String(200), primary_key=True),
    sa.Column("instance", sa.String(64), primary_key=True),
    sa.Column("last_seq", sa.BigInteger(), nullable=False),
    sa.Column("first_seen", sa.Double(), nullable=False),
    sa.Column("last_seen", sa.Double(), nullable=False),
    sa.Index("ix_flag_exposure_reporters_last_seen", "last_seen"),
)

flag_environments = sa.Table(
    "flag_environments",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("description", sa.Text(), nullable=False),
    # The version everyone is served (outside a rollout); NULL until the first is applied.
    sa.Column("current_version", sa.Integer(), nullable=True),
    sa.Column("created_at", sa.Double(), nullable=False),
)

flag_set_versions = sa.Table(
    "flag_set_versions",
    metadata,
    sa.Column(
        "env",
        sa.String(64),
        sa.ForeignKey("flag_environments.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("document", Json, nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.CheckConstraint("version >= 1", name="version_positive"),
)

flag_rollouts = sa.Table(
    "flag_rollouts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "env",
        sa.String(64),
        sa.ForeignKey("flag_environments.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("from_version", sa.Integer(), nullable=False),
    sa.Column("to_version", sa.Integer(), nullable=False),
    sa.Column("strategy", Json, nullable=False),
    sa.Column("state", Json, nullable=False),
    sa.Column("phase", sa.String(64), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(
        ["env", "from_version"],
        ["flag_set_versions.env", "flag_set_versions.version"],
        name="fk_flag_rollouts_from_version",
        ondelete="CASCADE",
    ),
    sa.ForeignKeyConstraint(
        ["env", "to_version"],
        ["flag_set_versions.env", "flag_set_versions.version"],
        name="fk_flag_rollouts_to_version",
        ondelete="CASCADE",
    ),
    sa.Index("ix_flag_rollouts_env_created", "env", "created_at"),
    # One rollout in progress per environment, enforced by the database itself.
    sa.Index(
        "uq_flag_rollouts_one_active",
        "env",
        unique=True,
        sqlite_where=sa.text("active = 1"),
        postgresql_where=sa.text("active"),
    ),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("events", Json, nullable=False),  # event-kind patterns, e.g. ["deployment.*"]
    # Kept as given: signing needs the secret itself. Never returned by the API, never logged.
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    # Only events after this one are delivered (the log's end when the webhook was created).
    sa.Column("after_event_id", sa.BigInteger(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "webhook_id",
        sa.String(32),
        sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "event_id", sa.BigInteger(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("last_status", sa.Integer(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("next_attempt_at", sa.Double(), nullable=True),
    sa.Column("delivered_at", sa.Double(), nullable=True),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
    sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_event"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    sqlite_autoincrement=True,
)

#: How far the webhook engine has read the event log (one row; absent before its first run).
webhook_cursor = sa.Table(
    "webhook_cursor",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("event_id", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
    sa.CheckConstraint("id = 1", name="single_row"),
)
