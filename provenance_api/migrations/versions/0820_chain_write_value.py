"""Chain writes carry coin (`value`, wei) and may wait for another write (`after_write_id`).

Revision ID: 0820_chain_write_value
Revises: 0810_epcis_capture
Create Date: 2026-12-01 20:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0820_chain_write_value"
down_revision: str | Sequence[str] | None = "0810_epcis_capture"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As models.WeiAmount: NUMERIC(78,0) on PostgreSQL, the exact decimal text on SQLite.
WEI = sa.Numeric(78, 0).with_variant(sa.String(78), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("chain_write", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value", WEI, server_default="0", nullable=False))
        batch_op.add_column(sa.Column("after_write_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_chain_write_after_write_id", "chain_write", ["after_write_id"], ["id"]
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("chain_write", schema=None) as batch_op:
        batch_op.drop_constraint("fk_chain_write_after_write_id", type_="foreignkey")
        batch_op.drop_column("after_write_id")
        batch_op.drop_column("value")
