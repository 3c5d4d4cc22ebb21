"""Item status (recalled, stolen, destroyed) and the public verifications of items (scans).

Revision ID: 0700_item_status_and_scans
Revises: 0610_event_readers
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0700_item_status_and_scans"
down_revision: str | Sequence[str] | None = "0610_event_readers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column(
        "item", sa.Column("status", sa.String(length=16), nullable=False, server_default="active")
    )
    op.add_column("item", sa.Column("status_reason", sa.String(length=500), nullable=True))
    op.add_column("item", sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "item_scan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tag_kind", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("codes", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("scanner", sa.String(length=64), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_item_scan_item_id_scanned_at", "item_scan", ["item_id", "scanned_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_item_scan_item_id_scanned_at", table_name="item_scan")
    op.drop_table("item_scan")
    op.drop_column("item", "status_at")
    op.drop_column("item", "status_reason")
    op.drop_column("item", "status")
