"""Alarms: each alarm's current state, reason and last evaluation (history is in events);
metric rollups: one row per series and minute, for metric history.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Name = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("service", Name, nullable=False),
        sa.Column("name", Name, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", Json, nullable=True),
        sa.Column("guard", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evaluation", Json, nullable=False),
        sa.Column("binding", Json, nullable=False),
        sa.Column("state_changed_at", sa.Double(), nullable=False),
        sa.Column("evaluated_at", sa.Double(), nullable=True),
        sa.Column("forced_until", sa.Double(), nullable=True),
        sa.Column("error_since", sa.Double(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("service", "name", name="pk_alarms"),
        sa.ForeignKeyConstraint(
            ["service"], ["services.name"], name="fk_alarms_service", ondelete="CASCADE"
        ),
        sa.CheckConstraint("kind IN ('metric', 'external')", name="ck_alarms_kind"),
        sa.CheckConstraint("state IN ('OK', 'ALARM', 'INSUFFICIENT_DATA')", name="ck_alarms_state"),
    )

    op.create_table(
        "metric_rollups",
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("series", sa.String(64), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("dimensions", Json, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Double(), nullable=False),
        sa.Column("minimum", sa.Double(), nullable=True),
        sa.Column("maximum", sa.Double(), nullable=True),
        sa.Column("hist", Json, nullable=False),
        sa.PrimaryKeyConstraint("source", "name", "series", "minute", name="pk_metric_rollups"),
    )
    op.create_index("ix_metric_rollups_minute", "metric_rollups", ["minute"])


def downgrade() -> None:
    op.drop_index("ix_metric_rollups_minute", table_name="metric_rollups")
    op.drop_table("metric_rollups")
    op.drop_table("alarms")
