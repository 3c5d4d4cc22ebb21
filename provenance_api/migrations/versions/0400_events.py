"""Custody events: device-signed events as accepted, with their salts and tag checks.

Revision ID: 0400_events
Revises: 0310_devices
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0400_events"
down_revision: str | Sequence[str] | None = "0310_devices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (a new table only: no existing table is rebuilt)."""
    op.create_table(
        "custody_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("party", sa.String(length=42), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("biz_step", sa.String(length=64), nullable=False),
        sa.Column("disposition", sa.String(length=64), nullable=False),
        sa.Column("read_point", sa.String(length=512), nullable=False),
        sa.Column("from_party", sa.String(length=42), nullable=False),
        sa.Column("to_party", sa.String(length=42), nullable=False),
        sa.Column("event_time", sa.BigInteger(), nullable=False),
        sa.Column("time_zone_offset", sa.Integer(), nullable=False),
        sa.Column("tag_url", sa.Text(), nullable=False),
        sa.Column("tag_uid", sa.LargeBinary(length=16), nullable=False),
        sa.Column("tag_originality_signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("tag_evidence", sa.LargeBinary(length=32), nullable=False),
        sa.Column("device", sa.String(length=42), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=65), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("tag_verdict", sa.String(length=16), nullable=False),
        sa.Column("tag_codes", sa.JSON(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("leaf_index", sa.Integer(), nullable=True),
        sa.Column("proof", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("custody_event", schema=None) as batch_op:
        batch_op.create_index("ix_custody_event_item_id", ["item_id"], unique=False)
        batch_op.create_index("ix_custody_event_batch_id", ["batch_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("custody_event", schema=None) as batch_op:
        batch_op.drop_index("ix_custody_event_batch_id")
        batch_op.drop_index("ix_custody_event_item_id")
    op.drop_table("custody_event")
