"""Agent tokens: role ``agent``, read-only and scoped to one environment (``tokens.env``).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("env", sa.String(200), nullable=True))
        batch.drop_constraint("ck_tokens_role", type_="check")
        batch.create_check_constraint("role", "role IN ('admin', 'deployer', 'reader', 'agent')")


def downgrade() -> None:
    op.execute("DELETE FROM tokens WHERE role = 'agent'")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_constraint("ck_tokens_role", type_="check")
        batch.create_check_constraint("role", "role IN ('admin', 'deployer', 'reader')")
        batch.drop_column("env")
