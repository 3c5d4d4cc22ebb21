"""At most one live trade per item: a partial unique index on trade(item_id).

A trade is live until a refresh from the chain reads it settled, or its open failed. Two
concurrent opens of one item could both pass the service's check; now the second insert
fails, and the service answers 409 naming the trade that won.

Revision ID: 0920_one_live_trade_per_item
Revises: 0910_trade_details
Create Date: 2026-12-01 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0920_one_live_trade_per_item"
down_revision: str | Sequence[str] | None = "0910_trade_details"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "state NOT IN ('settled', 'failed')"


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        "uq_trade_live_item",
        "trade",
        ["item_id"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("uq_trade_live_item", table_name="trade")
