"""Deployment commands (promote, rollback, stop...) stored when accepted and marked when the
engine applies them, so a crash between the 202 and the apply loses nothing; and the server's
heartbeat row, written every few seconds to prove the store is writable.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "deployment_commands",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("handled_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_commands"),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            ondelete="CASCADE",
            name="fk_deployment_commands_deployment_id",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_deployment_commands_pending", "deployment_commands", ["deployment_id", "handled_at"]
    )
    op.create_table(
        "server_heartbeat",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_server_heartbeat"),
        sa.CheckConstraint("id = 1", name="ck_server_heartbeat_single_row"),
    )


def downgrade() -> None:
    op.drop_table("server_heartbeat")
    op.drop_index("ix_deployment_commands_pending", table_name="deployment_commands")
    op.drop_table("deployment_commands")
