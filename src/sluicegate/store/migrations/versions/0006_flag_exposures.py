"""Flag exposures: evaluations agents reported, summed per environment, flag, variant and
minute.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "flag_exposures",
        sa.Column("env", sa.String(64), nullable=False),
        sa.Column("flag", sa.String(200), nullable=False),
        sa.Column("variant", sa.String(200), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("env", "flag", "variant", "minute", name="pk_flag_exposures"),
        sa.CheckConstraint("count >= 0", name="ck_flag_exposures_count_non_negative"),
    )
    op.create_index("ix_flag_exposures_minute", "flag_exposures", ["minute"])
    op.create_index("ix_flag_exposures_env_minute", "flag_exposures", ["env", "minute"])


def downgrade() -> None:
    op.drop_index("ix_flag_exposures_env_minute", table_name="flag_exposures")
    op.drop_index("ix_flag_exposures_minute", table_name="flag_exposures")
    op.drop_table("flag_exposures")
