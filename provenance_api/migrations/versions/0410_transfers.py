"""Ownership transfers: each move of an item's passport with its signer's consent.

Revision ID: 0410_transfers
Revises: 0400_events
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0410_transfers"
down_revision: str | Sequence[str] | None = "0400_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (a new table only: no existing table is rebuilt)."""
    op.create_table(
        "ownership_transfer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("from_organization_id", sa.Integer(), nullable=False),
        sa.Column("from_address", sa.String(length=42), nullable=False),
        sa.Column("to_organization_id", sa.Integer(), nullable=True),
        sa.Column("to_address", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=65), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["from_organization_id"], ["organization.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.ForeignKeyConstraint(["to_organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("from_address", "nonce", name="uq_ownership_transfer_from_nonce"),
        sa.UniqueConstraint("idempotency_key"),
        sa.UniqueConstraint("item_id", "sequence", name="uq_ownership_transfer_item_sequence"),
    )
    with op.batch_alter_table("ownership_transfer", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ownership_transfer_from_organization_id"),
            ["from_organization_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_ownership_transfer_to_organization_id"),
            ["to_organization_id"],
            unique=False,
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("ownership_transfer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ownership_transfer_to_organization_id"))
        batch_op.drop_index(batch_op.f("ix_ownership_transfer_from_organization_id"))
    op.drop_table("ownership_transfer")
