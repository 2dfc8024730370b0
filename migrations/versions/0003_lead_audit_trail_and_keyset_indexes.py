"""lead audit trail and keyset-pagination indexes of the admin lists

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 01:54:35.105232
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('lead_audit_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('field', sa.String(length=32), nullable=False),
    sa.Column('from_value', sa.String(length=254), nullable=True),
    sa.Column('to_value', sa.String(length=254), nullable=True),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_audit_entries_lead_id_leads'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_audit_entries'))
    )
    op.create_index('idx_lead_audit_entries_lead', 'lead_audit_entries', ['lead_id', 'at'], unique=False)
    op.create_index('idx_crm_notifications_keyset', 'crm_notifications', [sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('idx_form_submissions_keyset', 'form_submissions', [sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('idx_leads_keyset_created', 'leads', [sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('idx_leads_keyset_score', 'leads', [sa.literal_column('lead_score DESC'), sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('idx_leads_status_keyset_score', 'leads', ['status', sa.literal_column('lead_score DESC'), sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('idx_newsletter_subscribers_keyset', 'newsletter_subscribers', [sa.literal_column('subscribed_at DESC'), sa.literal_column('id DESC')], unique=False)


def downgrade() -> None:
    op.drop_index('idx_newsletter_subscribers_keyset', table_name='newsletter_subscribers')
    op.drop_index('idx_leads_status_keyset_score', table_name='leads')
    op.drop_index('idx_leads_keyset_score', table_name='leads')
    op.drop_index('idx_leads_keyset_created', table_name='leads')
    op.drop_index('idx_form_submissions_keyset', table_name='form_submissions')
    op.drop_index('idx_crm_notifications_keyset', table_name='crm_notifications')
    op.drop_index('idx_lead_audit_entries_lead', table_name='lead_audit_entries')
    op.drop_table('lead_audit_entries')
