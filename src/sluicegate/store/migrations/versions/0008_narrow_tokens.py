"""Narrow credentials: ``metrics`` tokens (push datapoints, optionally for one service) and
``alertmanager`` tokens (feed the receiver); every token may expire.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_ALL = "role IN ('admin', 'deployer', 'reader', 'agent', 'metrics', 'alertmanager')"
_BEFORE = "role IN ('admin', 'deployer', 'reader', 'agent')"


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("service", sa.String(200), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.Double(), nullable=True))
        batch.drop_constraint(op.f("ck_tokens_role"), type_="check")
        batch.create_check_constraint("role", _ALL)


def downgrade() -> None:
    op.execute("DELETE FROM tokens WHERE role IN ('metrics', 'alertmanager')")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_constraint(op.f("ck_tokens_role"), type_="check")
        batch.create_check_constraint("role", _BEFORE)
        batch.drop_column("expires_at")
        batch.drop_column("service")
