"""crm_inbound_events: the webhook-ids of signed changes destinations sent us (replays ignored)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crm_inbound_events",
        sa.Column("target", sa.String(length=50), nullable=False),
        sa.Column("webhook_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", "webhook_id", name=op.f("pk_crm_inbound_events")),
    )
    op.create_index(
        "idx_crm_inbound_events_received", "crm_inbound_events", ["received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("idx_crm_inbound_events_received", table_name="crm_inbound_events")
    op.drop_table("crm_inbound_events")
