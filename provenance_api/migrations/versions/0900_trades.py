"""Trades in TradeEscrow, the arbiter registry and arbiters' ties; the organization kind arbiter.

Revision ID: 0900_trades
Revises: 0820_chain_write_value
Create Date: 2026-12-01 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from provenance_api.models import WeiAmount

revision: str = "0900_trades"
down_revision: str | Sequence[str] | None = "0820_chain_write_value"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_BEFORE = "kind IN ('supplier', 'carrier', 'warehouse', 'retailer')"
KINDS_AFTER = "kind IN ('supplier', 'carrier', 'warehouse', 'retailer', 'arbiter')"
STATES = (
    "state IN ('opening', 'open', 'funded', 'shipped', 'disputed', 'arbitration', 'settled', "
    "'failed')"
)
OUTCOMES = (
    "outcome IS NULL OR outcome IN ('completed', 'cancelled', 'not_shipped', 'no_arbiter', "
    "'no_ruling', 'for_buyer', 'for_seller')"
)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.drop_constraint("ck_organization_kind", type_="check")
        batch_op.create_check_constraint("ck_organization_kind", KINDS_AFTER)
    op.create_table(
        "trade",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("seller_organization_id", sa.Integer(), nullable=False),
        sa.Column("buyer_organization_id", sa.Integer(), nullable=False),
        sa.Column("seller_address", sa.String(length=42), nullable=False),
        sa.Column("buyer_address", sa.String(length=42), nullable=False),
        sa.Column("deposit", WeiAmount(), nullable=False),
        sa.Column("price", WeiAmount(), nullable=False),
        sa.Column("deposit_window", sa.Integer(), nullable=False),
        sa.Column("ship_window", sa.Integer(), nullable=False),
        sa.Column("confirm_window", sa.Integer(), nullable=False),
        sa.Column("agree_window", sa.Integer(), nullable=False),
        sa.Column("rule_window", sa.Integer(), nullable=False),
        sa.Column("opened_by_organization_id", sa.Integer(), nullable=False),
        sa.Column("open_write_key", sa.String(length=200), nullable=False),
        sa.Column("escrow_address", sa.String(length=42), nullable=False),
        sa.Column("chain_trade_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("arbiter_address", sa.String(length=42), nullable=True),
        sa.Column("arbiter_organization_id", sa.Integer(), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("details_hash", sa.String(length=66), nullable=True),
        sa.Column("legal_hold_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(STATES, name="ck_trade_state"),
        sa.CheckConstraint(OUTCOMES, name="ck_trade_outcome"),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.ForeignKeyConstraint(["seller_organization_id"], ["organization.id"]),
        sa.ForeignKeyConstraint(["buyer_organization_id"], ["organization.id"]),
        sa.ForeignKeyConstraint(["opened_by_organization_id"], ["organization.id"]),
        sa.ForeignKeyConstraint(["arbiter_organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_write_key"),
        sa.UniqueConstraint("escrow_address", "chain_trade_id", name="uq_trade_escrow_chain_id"),
    )
    op.create_index("ix_trade_item_id", "trade", ["item_id"])
    op.create_index("ix_trade_seller_organization_id", "trade", ["seller_organization_id"])
    op.create_index("ix_trade_buyer_organization_id", "trade", ["buyer_organization_id"])
    op.create_table(
        "arbiter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("register_write_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_id"),
        sa.UniqueConstraint("address"),
        sa.UniqueConstraint("register_write_key"),
    )
    op.create_table(
        "arbiter_tie",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("arbiter_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["arbiter_id"], ["arbiter.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("arbiter_id", "organization_id", name="uq_arbiter_tie_pair"),
    )
    op.create_index("ix_arbiter_tie_arbiter_id", "arbiter_tie", ["arbiter_id"])
    op.create_index("ix_arbiter_tie_organization_id", "arbiter_tie", ["organization_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_arbiter_tie_organization_id", table_name="arbiter_tie")
    op.drop_index("ix_arbiter_tie_arbiter_id", table_name="arbiter_tie")
    op.drop_table("arbiter_tie")
    op.drop_table("arbiter")
    op.drop_index("ix_trade_buyer_organization_id", table_name="trade")
    op.drop_index("ix_trade_seller_organization_id", table_name="trade")
    op.drop_index("ix_trade_item_id", table_name="trade")
    op.drop_table("trade")
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.drop_constraint("ck_organization_kind", type_="check")
        batch_op.create_check_constraint("ck_organization_kind", KINDS_BEFORE)
