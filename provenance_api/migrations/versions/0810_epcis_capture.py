"""EPCIS 2.0 capture: capture jobs, captured events (anchored like custody events), their SGTINs.

Revision ID: 0810_epcis_capture
Revises: 0800_claim_codes
Create Date: 2026-12-01 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0810_epcis_capture"
down_revision: str | Sequence[str] | None = "0800_claim_codes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "capture_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_behaviour", sa.String(length=16), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("captured_count", sa.Integer(), nullable=False),
        sa.Column("duplicate_count", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name="ck_capture_job_status"
        ),
        sa.CheckConstraint(
            "error_behaviour IN ('rollback', 'proceed')", name="ck_capture_job_error_behaviour"
        ),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index("ix_capture_job_organization_id", "capture_job", ["organization_id"])
    op.create_table(
        "captured_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("event_hash", sa.String(length=96), nullable=False),
        sa.Column("received_event_id", sa.Text(), nullable=True),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("event_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("time_zone_offset", sa.String(length=6), nullable=False),
        sa.Column("biz_step", sa.String(length=512), nullable=True),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("leaf_index", sa.Integer(), nullable=True),
        sa.Column("proof", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["anchor_batch.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["capture_job.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "organization_id", "event_hash", name="uq_captured_event_organization_hash"
        ),
    )
    op.create_index("ix_captured_event_job_id", "captured_event", ["job_id"])
    op.create_index("ix_captured_event_batch_id", "captured_event", ["batch_id"])
    op.create_table(
        "captured_event_epc",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("captured_event_id", sa.Integer(), nullable=False),
        sa.Column("epc", sa.Text(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["captured_event_id"], ["captured_event.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_captured_event_epc_captured_event_id", "captured_event_epc", ["captured_event_id"]
    )
    op.create_index("ix_captured_event_epc_gtin_serial", "captured_event_epc", ["gtin", "serial"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_captured_event_epc_gtin_serial", table_name="captured_event_epc")
    op.drop_index("ix_captured_event_epc_captured_event_id", table_name="captured_event_epc")
    op.drop_table("captured_event_epc")
    op.drop_index("ix_captured_event_batch_id", table_name="captured_event")
    op.drop_index("ix_captured_event_job_id", table_name="captured_event")
    op.drop_table("captured_event")
    op.drop_index("ix_capture_job_organization_id", table_name="capture_job")
    op.drop_table("capture_job")
