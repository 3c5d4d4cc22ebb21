"""Anchoring: closed batches of custody events, each with its root and owed anchor write.

Revision ID: 0500_anchoring
Revises: 0410_transfers
Create Date: 2026-12-01 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0500_anchoring"
down_revision: str | Sequence[str] | None = "0410_transfers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (a new table only: custody_event already has its batch columns)."""
    op.create_table(
        "anchor_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id"),
        sa.UniqueConstraint("idempotency_key"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("anchor_batch")
