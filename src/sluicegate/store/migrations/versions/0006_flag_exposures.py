"""Flag exposures: evaluations agents reported, summed per environment, flag, variant and
minute; the agents that reported, with the sequence number of their newest stored report.

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
    op.create_table(
        "flag_exposure_reporters",
        sa.Column("env", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(200), nullable=False),
        sa.Column("instance", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("env", "agent", "instance", name="pk_flag_exposure_reporters"),
    )
    op.create_index(
        "ix_flag_exposure_reporters_last_seen", "flag_exposure_reporters", ["last_seen"]
    )


def downgrade() -> None:
    op.drop_index("ix_flag_exposure_reporters_last_seen", table_name="flag_exposure_reporters")
    op.drop_table("flag_exposure_reporters")
    op.drop_index("ix_flag_exposures_env_minute", table_name="flag_exposures")
    op.drop_index("ix_flag_exposures_minute", table_name="flag_exposures")
    op.drop_table("flag_exposures")
