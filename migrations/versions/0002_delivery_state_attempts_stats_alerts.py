"""delivery state, attempts, stats, alerts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 01:47:59.671802
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('crm_alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('target_system', sa.String(length=50), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_alerts'))
    )
    op.create_index('idx_crm_alerts_open', 'crm_alerts', ['kind', 'target_system', 'closed_at'], unique=False)
    op.create_table('crm_stats_snapshots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('total_leads', sa.Integer(), nullable=False),
    sa.Column('total_forms', sa.Integer(), nullable=False),
    sa.Column('total_subscribers', sa.Integer(), nullable=False),
    sa.Column('converted_leads', sa.Integer(), nullable=False),
    sa.Column('conversion_rate', sa.Float(), nullable=False),
    sa.Column('average_lead_score', sa.Float(), nullable=True),
    sa.Column('unread_notifications', sa.Integer(), nullable=False),
    sa.Column('failed_notifications', sa.Integer(), nullable=False),
    sa.Column('by_target', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_stats_snapshots'))
    )
    op.create_index(op.f('ix_crm_stats_snapshots_taken_at'), 'crm_stats_snapshots', ['taken_at'], unique=False)
    op.create_table('crm_notification_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('notification_id', sa.Uuid(), nullable=False),
    sa.Column('target_system', sa.String(length=50), nullable=False),
    sa.Column('attempt_number', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.Column('http_status', sa.SmallInteger(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('response_body', sa.String(length=1024), nullable=True),
    sa.ForeignKeyConstraint(['notification_id'], ['crm_notifications.id'], name=op.f('fk_crm_notification_attempts_notification_id_crm_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_notification_attempts'))
    )
    op.create_index('idx_crm_notification_attempts_started_at', 'crm_notification_attempts', ['started_at'], unique=False)
    op.create_index(op.f('ix_crm_notification_attempts_notification_id'), 'crm_notification_attempts', ['notification_id'], unique=False)
    op.add_column('crm_notifications', sa.Column('status', sa.Enum('PENDING', 'DELIVERED', 'FAILED', name='notif_status', native_enum=False, create_constraint=True, length=32), server_default='PENDING', nullable=False))
    op.add_column('crm_notifications', sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('crm_notifications', sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text("'1970-01-01 00:00:00'"), nullable=False))
    op.add_column('crm_notifications', sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('crm_notifications', sa.Column('claimed_by', sa.String(length=100), nullable=True))
    op.add_column('crm_notifications', sa.Column('last_error', sa.Text(), nullable=True))
    op.add_column('crm_notifications', sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('idx_crm_notifications_due', 'crm_notifications', [sa.literal_column('priority_rank DESC'), 'created_at'], unique=False, postgresql_where=sa.text("read = false AND status = 'PENDING'"), sqlite_where=sa.text("read = 0 AND status = 'PENDING'"))


def downgrade() -> None:
    op.drop_index('idx_crm_notifications_due', table_name='crm_notifications', postgresql_where=sa.text("read = false AND status = 'PENDING'"), sqlite_where=sa.text("read = 0 AND status = 'PENDING'"))
    op.drop_column('crm_notifications', 'failed_at')
    op.drop_column('crm_notifications', 'last_error')
    op.drop_column('crm_notifications', 'claimed_by')
    op.drop_column('crm_notifications', 'claimed_until')
    op.drop_column('crm_notifications', 'next_attempt_at')
    op.drop_column('crm_notifications', 'attempts')
    op.drop_column('crm_notifications', 'status')
    op.drop_index(op.f('ix_crm_notification_attempts_notification_id'), table_name='crm_notification_attempts')
    op.drop_index('idx_crm_notification_attempts_started_at', table_name='crm_notification_attempts')
    op.drop_table('crm_notification_attempts')
    op.drop_index(op.f('ix_crm_stats_snapshots_taken_at'), table_name='crm_stats_snapshots')
    op.drop_table('crm_stats_snapshots')
    op.drop_index('idx_crm_alerts_open', table_name='crm_alerts')
    op.drop_table('crm_alerts')
