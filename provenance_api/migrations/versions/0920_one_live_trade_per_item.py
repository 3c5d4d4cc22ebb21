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


# A live trade whose `open` write failed (and was not retried) never opened on-chain: what
# the service's refresh would record when it next read it.
NEVER_OPENED = f"""
UPDATE trade SET state = 'failed'
WHERE {LIVE} AND EXISTS (
    SELECT 1 FROM chain_write w
    WHERE w.idempotency_key = trade.open_write_key AND w.status = 'failed'
    AND NOT EXISTS (SELECT 1 FROM chain_write r WHERE r.retry_of = w.id)
)
"""
DUPLICATES = f"""
SELECT item_id, id FROM trade WHERE {LIVE} AND item_id IN (
    SELECT item_id FROM trade WHERE {LIVE} GROUP BY item_id HAVING count(*) > 1
) ORDER BY item_id, id
"""


def upgrade() -> None:
    """Apply this revision."""
    bind = op.get_bind()
    bind.execute(sa.text(NEVER_OPENED))
    left = bind.execute(sa.text(DUPLICATES)).all()
    if left:
        named = ", ".join(f"trade {trade_id} (item {item_id})" for item_id, trade_id in left)
        raise RuntimeError(
            f"items in more than one live trade: {named}. Only one of each item's trades "
            "opened on-chain (TradeEscrow's TradeOpened names it); set the others' state to "
            "'failed' and upgrade again"
        )
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
