"""Claim codes: one-time codes with which a buyer claims an item, and the attempts on them.

Revision ID: 0800_claim_codes
Revises: 0700_item_status_and_scans
Create Date: 2026-12-01 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0800_claim_codes"
down_revision: str | Sequence[str] | None = "0700_item_status_and_scans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "used_at IS NULL AND revoked_at IS NULL"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "claim_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transfer_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.ForeignKeyConstraint(["transfer_id"], ["ownership_transfer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_claim_code_item_id", "claim_code", ["item_id"])
    op.create_index(
        "uq_claim_code_live_item",
        "claim_code",
        ["item_id"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )
    op.create_table(
        "claim_throttle",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.PrimaryKeyConstraint("item_id"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("claim_throttle")
    op.drop_index("uq_claim_code_live_item", table_name="claim_code")
    op.drop_index("ix_claim_code_item_id", table_name="claim_code")
    op.drop_table("claim_code")
