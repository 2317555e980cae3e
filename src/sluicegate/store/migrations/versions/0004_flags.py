"""Flag environments, their immutable numbered flag-set versions, and flag rollouts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Env = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "flag_environments",
        sa.Column("name", Env, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_flag_environments"),
    )
    op.create_table(
        "flag_set_versions",
        sa.Column("env", Env, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", Json, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("env", "version", name="pk_flag_set_versions"),
        sa.ForeignKeyConstraint(
            ["env"], ["flag_environments.name"], name="fk_flag_set_versions_env", ondelete="CASCADE"
        ),
        sa.CheckConstraint("version >= 1", name="ck_flag_set_versions_version_positive"),
    )
    op.create_table(
        "flag_rollouts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("env", Env, nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=False),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("strategy", Json, nullable=False),
        sa.Column("state", Json, nullable=False),
        sa.Column("phase", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flag_rollouts"),
        sa.ForeignKeyConstraint(
            ["env"], ["flag_environments.name"], name="fk_flag_rollouts_env", ondelete="CASCADE"
        ),
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
    )
    op.create_index("ix_flag_rollouts_env_created", "flag_rollouts", ["env", "created_at"])
    op.create_index(
        "uq_flag_rollouts_one_active",
        "flag_rollouts",
        ["env"],
        unique=True,
        sqlite_where=sa.text("active = 1"),
        postgresql_where=sa.text("active"),
    )


def downgrade() -> None:
    op.drop_table("flag_rollouts")
    op.drop_table("flag_set_versions")
    op.drop_table("flag_environments")
