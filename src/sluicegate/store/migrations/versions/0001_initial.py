"""Initial schema: services, revisions, deployments, events, replicas, tokens, router_state.

Written out in full rather than imported from ``_schema`` so this step stays what it was
when later revisions change the live schema. Events are append-only at the database level:
a trigger refuses UPDATE and DELETE on both backends.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Name = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("name", Name, nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_services"),
    )
    op.create_table(
        "revisions",
        sa.Column("service", Name, nullable=False),
        sa.Column("revision", Name, nullable=False),
        sa.Column("overrides", Json, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("service", "revision", name="pk_revisions"),
        sa.ForeignKeyConstraint(
            ["service"], ["services.name"], name="fk_revisions_service", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("service", Name, nullable=False),
        sa.Column("revision", Name, nullable=False),
        sa.Column("from_revision", Name, nullable=True),
        sa.Column("config", Json, nullable=False),
        sa.Column("state", Json, nullable=False),
        sa.Column("phase", sa.String(64), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.ForeignKeyConstraint(
            ["service"], ["services.name"], name="fk_deployments_service", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_deployments_service_created", "deployments", ["service", "created_at"])
    op.create_index(
        "uq_deployments_one_active",
        "deployments",
        ["service"],
        unique=True,
        sqlite_where=sa.text("active = 1"),
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "events",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("actor", Name, nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("subject", Name, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_subject_id", "events", ["subject", "id"])
    op.create_table(
        "replicas",
        sa.Column("service", Name, nullable=False),
        sa.Column("revision", Name, nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("pid_start_time", sa.Double(), nullable=True),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("service", "revision", "idx", name="pk_replicas"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", Name, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("hash", name="uq_tokens_hash"),
        sa.CheckConstraint("role IN ('admin', 'deployer', 'reader')", name="ck_tokens_role"),
    )
    op.create_table(
        "router_state",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("pid_start_time", sa.Double(), nullable=True),
        sa.Column("admin_url", sa.String(500), nullable=False),
        sa.Column("config", Json, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_router_state"),
        sa.CheckConstraint("id = 1", name="ck_router_state_single_row"),
    )
    _events_append_only()


def _events_append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION sluicegate_events_append_only() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'events are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events"
            " FOR EACH ROW EXECUTE FUNCTION sluicegate_events_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER events_no_{action.lower()} BEFORE {action} ON events"
                " BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_append_only ON events")
        op.execute("DROP FUNCTION IF EXISTS sluicegate_events_append_only()")
    for table in ("router_state", "tokens", "replicas", "events", "deployments", "revisions"):
        op.drop_table(table)
    op.drop_table("services")
