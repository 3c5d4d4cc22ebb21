"""An index on custody events by recording organization, for the EPCIS export's reader rule.

`GET /v1/epcis/events` finds the items an organization may read, among them those it
recorded an event of: without this index that lookup scans every event.

Revision ID: 0610_event_readers
Revises: 0600_commissioning_events
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0610_event_readers"
down_revision: str | Sequence[str] | None = "0600_commissioning_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        "ix_custody_event_organization_id_item_id",
        "custody_event",
        ["organization_id", "item_id"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_custody_event_organization_id_item_id", table_name="custody_event")
