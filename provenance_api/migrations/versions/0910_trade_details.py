"""A trade's personal data: its wrapped data key, sealed records, access log and legal holds.

Revision ID: 0910_trade_details
Revises: 0900_trades
Create Date: 2026-12-01 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0910_trade_details"
down_revision: str | Sequence[str] | None = "0900_trades"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = "'seller', 'buyer', 'arbiter'"
KINDS = "'details', 'message', 'photo', 'evidence'"
ACTIONS = "'read', 'export', 'write', 'erase', 'refused'"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "trade_key",
        sa.Column("trade_id", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erased_by_organization_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["trade_id"], ["trade.id"]),
        sa.ForeignKeyConstraint(["erased_by_organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("trade_id"),
    )
    op.create_table(
        "trade_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trade_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("author_organization_id", sa.Integer(), nullable=False),
        sa.Column("author_role", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("details_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"author_role IN ({ROLES})", name="ck_trade_record_role"),
        sa.CheckConstraint(f"kind IN ({KINDS})", name="ck_trade_record_kind"),
        sa.ForeignKeyConstraint(["trade_id"], ["trade.id"]),
        sa.ForeignKeyConstraint(["author_organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("trade_id", "sequence", name="uq_trade_record_sequence"),
    )
    op.create_index("ix_trade_record_trade_id", "trade_record", ["trade_id"])
    op.create_table(
        "trade_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trade_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("record_sequence", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"role IN ({ROLES})", name="ck_trade_access_role"),
        sa.CheckConstraint(f"action IN ({ACTIONS})", name="ck_trade_access_action"),
        sa.ForeignKeyConstraint(["trade_id"], ["trade.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_trade_access_trade_id", "trade_access", ["trade_id"])
    op.create_table(
        "trade_legal_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trade_id", sa.Integer(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["trade_id"], ["trade.id"]),
        sa.ForeignKeyConstraint(["operator_id"], ["operator_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_trade_legal_hold_trade_id", "trade_legal_hold", ["trade_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_trade_legal_hold_trade_id", table_name="trade_legal_hold")
    op.drop_table("trade_legal_hold")
    op.drop_index("ix_trade_access_trade_id", table_name="trade_access")
    op.drop_table("trade_access")
    op.drop_index("ix_trade_record_trade_id", table_name="trade_record")
    op.drop_table("trade_record")
    op.drop_table("trade_key")
