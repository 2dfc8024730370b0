"""crm_targets: destinations managed at run time (the registry)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('crm_targets',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('kind', sa.Enum('webhook', name='target_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('secret_current', sa.Text(), nullable=False),
    sa.Column('secret_previous', sa.Text(), nullable=True),
    sa.Column('secret_previous_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('events', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('min_priority', sa.Enum('LOW', 'NORMAL', 'HIGH', name='target_min_priority', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('rate_limit_per_second', sa.Float(), nullable=True),
    sa.Column('max_in_flight', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('disabled_reason', sa.Text(), nullable=True),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.CheckConstraint('name = upper(name) AND length(name) BETWEEN 1 AND 50', name=op.f('ck_crm_targets_name_upper')),
    sa.CheckConstraint('rate_limit_per_second IS NULL OR rate_limit_per_second > 0', name=op.f('ck_crm_targets_rate_positive')),
    sa.CheckConstraint('max_in_flight IS NULL OR max_in_flight > 0', name=op.f('ck_crm_targets_in_flight_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_targets')),
    sa.UniqueConstraint('name', name=op.f('uq_crm_targets_name'))
    )


def downgrade() -> None:
    op.drop_table('crm_targets')
