"""crm_notifications.counted_attempts: the attempt budget, apart from the attempt count

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('crm_notifications', sa.Column('counted_attempts', sa.Integer(), server_default=sa.text('0'), nullable=False))
    # Rows in flight keep the budget they have used so far.
    op.execute('UPDATE crm_notifications SET counted_attempts = attempts')


def downgrade() -> None:
    op.drop_column('crm_notifications', 'counted_attempts')
