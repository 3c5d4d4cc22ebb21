"""Devices (reader addresses per organization) and the SUN counter table.

Revision ID: 0310_devices
Revises: 0300_items
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0310_devices"
down_revision: str | Sequence[str] | None = "0300_items"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (new tables only: no existing table is rebuilt)."""
    op.create_table(
        "device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address"),
    )
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.create_index(
            "ix_device_organization_address", ["organization_id", "address"], unique=False
        )
    op.create_table(
        "sun_counter",
        sa.Column("uid", sa.LargeBinary(length=16), nullable=False),
        sa.Column("key_epoch", sa.Integer(), nullable=False),
        sa.Column("last_counter", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uid", "key_epoch"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("sun_counter")
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.drop_index("ix_device_organization_address")
    op.drop_table("device")
