"""Commissioning events: an item's registration is a stored, signed custody event.

The item's own salt goes: the commissioning event carries its salt like every event. And a
custody event's `batch_id` now references the batch it was placed in.

Revision ID: 0600_commissioning_events
Revises: 0500_anchoring
Create Date: 2026-12-01 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0600_commissioning_events"
down_revision: str | Sequence[str] | None = "0500_anchoring"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (SQLite 3.35+ drops a plain column in place)."""
    op.drop_column("item", "salt")
    with op.batch_alter_table("custody_event") as batch:
        batch.create_foreign_key(
            "fk_custody_event_batch_id_anchor_batch", "anchor_batch", ["batch_id"], ["id"]
        )


def downgrade() -> None:
    """Revert this revision: items get a fresh random salt each."""
    with op.batch_alter_table("custody_event") as batch:
        batch.drop_constraint("fk_custody_event_batch_id_anchor_batch", type_="foreignkey")
    op.add_column("item", sa.Column("salt", sa.LargeBinary(length=32), nullable=True))
    op.execute(
        "UPDATE item SET salt = randomblob(32)"
        if op.get_bind().dialect.name == "sqlite"
        else "UPDATE item SET salt = decode(md5(random()::text) || md5(random()::text), 'hex')"
    )
    with op.batch_alter_table("item") as batch:
        batch.alter_column("salt", nullable=False)
