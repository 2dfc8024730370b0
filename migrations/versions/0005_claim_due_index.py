"""claim index: a target's pending rows by due time

With many rows waiting in backoff and none due, the dispatcher's claim walked the whole pending
backlog in priority order (idx_crm_notifications_due) only to find nothing due. This index finds
a target's due rows by a range scan on next_attempt_at, so "nothing due" costs one index probe.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('idx_crm_notifications_claim', 'crm_notifications', ['target_system', 'next_attempt_at'], unique=False, postgresql_where=sa.text("read = false AND status = 'PENDING'"), sqlite_where=sa.text("read = 0 AND status = 'PENDING'"))


def downgrade() -> None:
    op.drop_index('idx_crm_notifications_claim', table_name='crm_notifications', postgresql_where=sa.text("read = false AND status = 'PENDING'"), sqlite_where=sa.text("read = 0 AND status = 'PENDING'"))
