"""Chain writer: fees as NUMERIC(78,0), the mined status, refusals, nonce fillers, deploys.

Revision ID: 0200_writer
Revises: 0100_api_products
Create Date: 2026-12-01 11:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0200_writer"
down_revision: str | Sequence[str] | None = "0100_api_products"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Any uint256 exactly: NUMERIC(78,0) on PostgreSQL; SQLite would round big NUMERICs to floats,
# so there the amount is kept as its decimal text (models.WeiAmount reads both back as int).
WEI = sa.Numeric(78, 0).with_variant(sa.String(78), "sqlite")
OLD_STATUSES = "status IN ('pending', 'signed', 'sent', 'confirmed', 'failed')"
NEW_STATUSES = "status IN ('pending', 'signed', 'sent', 'mined', 'confirmed', 'failed')"


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("chain_tx_attempt", schema=None) as batch_op:
        for column in ("max_fee_per_gas", "max_priority_fee_per_gas"):
            batch_op.alter_column(
                column,
                existing_type=sa.BigInteger(),
                type_=WEI,
                existing_nullable=False,
                postgresql_using=f"{column}::numeric(78,0)",
            )
        batch_op.add_column(
            sa.Column("filler", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("chain_write", schema=None) as batch_op:
        batch_op.drop_constraint("ck_chain_write_status", type_="check")
        batch_op.create_check_constraint("ck_chain_write_status", NEW_STATUSES)
        batch_op.add_column(sa.Column("refusals", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("refused_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("contract_address", sa.String(length=42), nullable=True))
        batch_op.add_column(sa.Column("retry_of", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_chain_write_retry_of", "chain_write", ["retry_of"], ["id"])


def downgrade() -> None:
    """Revert this revision (fee amounts beyond a BIGINT cannot go back and fail loudly)."""
    with op.batch_alter_table("chain_write", schema=None) as batch_op:
        batch_op.drop_constraint("fk_chain_write_retry_of", type_="foreignkey")
        batch_op.drop_column("retry_of")
        batch_op.drop_column("contract_address")
        batch_op.drop_column("refused_at")
        batch_op.drop_column("refusals")
        batch_op.execute("UPDATE chain_write SET status = 'sent' WHERE status = 'mined'")
        batch_op.drop_constraint("ck_chain_write_status", type_="check")
        batch_op.create_check_constraint("ck_chain_write_status", OLD_STATUSES)
    with op.batch_alter_table("chain_tx_attempt", schema=None) as batch_op:
        batch_op.drop_column("filler")
        for column in ("max_fee_per_gas", "max_priority_fee_per_gas"):
            batch_op.alter_column(
                column,
                existing_type=WEI,
                type_=sa.BigInteger(),
                existing_nullable=False,
                postgresql_using=f"{column}::bigint",
            )
