"""Serialized items (each its commissioning record) and suppliers' sealed SUN key epochs.

Revision ID: 0300_items
Revises: 0200_writer
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0300_items"
down_revision: str | Sequence[str] | None = "0200_writer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (new tables only: no existing table is rebuilt)."""
    op.create_table(
        "item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("lot", sa.String(length=20), nullable=True),
        sa.Column("expiry", sa.String(length=6), nullable=True),
        sa.Column("tag", sa.String(length=8), nullable=False),
        sa.Column("uid", sa.String(length=14), nullable=True),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("commissioned_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("tag IN ('qr', 'ntag21x', 'ntag424')", name="ck_item_tag"),
        sa.CheckConstraint("(tag = 'qr') = (uid IS NULL)", name="ck_item_uid_for_nfc"),
        sa.ForeignKeyConstraint(["gtin"], ["product.gtin"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gtin", "serial", name="uq_item_gtin_serial"),
        sa.UniqueConstraint("uid"),
    )
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_item_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "sun_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("sealed_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_id", "epoch", name="uq_sun_key_organization_epoch"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("sun_key")
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_organization_id"))
    op.drop_table("item")
