"""outbox fillfactor: room on each notifications page for the claim's HOT update (issue 14, item 8)

The claim sets claimed_until and claimed_by, which no index holds; with room on the row's page
PostgreSQL keeps the new version there (a HOT update) and writes none of the table's nine index
entries. Time-ordered inserts leave every page full at the default fillfactor (100), so every
claim wrote nine index entries per row. Each existing partition of crm_notifications (and its
DEFAULT partition) gets fillfactor 75, as domain/outbox/partitions.py makes new ones; pages
already written keep their rows until they are rewritten. SQLite: nothing changes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 75  # domain/outbox/partitions.py FILLFACTOR, as of this revision


def _partitions() -> list[str]:
    found = op.get_bind().execute(
        text(
            "SELECT relid::regclass::text FROM pg_partition_tree('crm_notifications')"
            " WHERE isleaf"
        )
    )
    return [name for (name,) in found]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _partitions():
        op.execute(f"ALTER TABLE {name} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _partitions():
        op.execute(f"ALTER TABLE {name} RESET (fillfactor)")
