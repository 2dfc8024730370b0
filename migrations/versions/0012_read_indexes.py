"""read indexes and rollups: admin reads under 100 ms at a million rows (issue 14, item 2)

- idx_leads_source_keyset_score: the leads list of one source in its default (score) order;
  without it a rare source walked the score index and dropped 99.9 % of the rows it read.
- idx_crm_notifications_failed / _pending: the notifications list filtered by status, newest
  first; the failed one includes target_system so "failed per target" is an index-only count.
- crm_lead_rollups, crm_lead_day_rollups, crm_status_rollups: counts kept in the writing
  transaction by statement-level triggers with transition tables (PostgreSQL only). Every
  INSERT, UPDATE, DELETE (COPY too) appends one delta row per changed key; nothing is ever
  updated in place, so concurrent writers never wait on a counter row. TRUNCATE empties them.
  The beat's snapshot folds the deltas (domain/reporting/rollups.py). Filled here from the rows
  present, in the same transaction as the triggers are made (which lock out writers), so no
  row is counted twice or missed. SQLite gets the tables but no triggers: its reads count rows.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rows a statement changed, signed: +1 for new versions, -1 for old ones.
CHANGED = {
    "insert": "SELECT *, 1 AS sign FROM new_rows",
    "update": "SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 FROM old_rows",
    "delete": "SELECT *, -1 AS sign FROM old_rows",
}
REFERENCING = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
}
LEADS_DELTA = """
    INSERT INTO crm_lead_rollups (type, status, source, leads, score_sum)
    SELECT type, status, source, sum(sign), sum(sign * lead_score)
    FROM ({changed}) c GROUP BY type, status, source
    HAVING sum(sign) <> 0 OR sum(sign * lead_score) <> 0;
    INSERT INTO crm_lead_day_rollups (day, leads)
    SELECT (created_at AT TIME ZONE 'UTC')::date, sum(sign)
    FROM ({changed}) c GROUP BY 1 HAVING sum(sign) <> 0;
"""
STATUS_DELTA = """
    INSERT INTO crm_status_rollups (table_name, status, row_count)
    SELECT TG_TABLE_NAME, status, sum(sign) FROM ({changed}) c
    GROUP BY status HAVING sum(sign) <> 0;
"""
EMPTY = {
    "leads": "DELETE FROM crm_lead_rollups; DELETE FROM crm_lead_day_rollups;",
    "status": "DELETE FROM crm_status_rollups WHERE table_name = TG_TABLE_NAME;",
}
TABLES = (("leads", "leads"), ("form_submissions", "status"), ("newsletter_subscribers", "status"))


def _function(name: str, body: str) -> None:
    op.execute(
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{body}\n    RETURN NULL;\nEND\n$$"
    )


def _create_triggers() -> None:
    for kind, delta in (("leads", LEADS_DELTA), ("status", STATUS_DELTA)):
        for event, changed in CHANGED.items():
            _function(f"crm_roll_up_{kind}_{event}", delta.format(changed=changed))
        _function(f"crm_roll_up_{kind}_truncate", "    " + EMPTY[kind])
    for table, kind in TABLES:
        op.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        for event in CHANGED:
            op.execute(
                f"CREATE TRIGGER crm_roll_up_{event} AFTER {event.upper()} ON {table} "
                f"{REFERENCING[event]} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION crm_roll_up_{kind}_{event}()"
            )
        op.execute(
            f"CREATE TRIGGER crm_roll_up_truncate AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION crm_roll_up_{kind}_truncate()"
        )
    # the rows already there, counted under the triggers' locks
    op.execute(
        "INSERT INTO crm_lead_rollups (type, status, source, leads, score_sum) "
        "SELECT type, status, source, count(*), sum(lead_score) FROM leads "
        "GROUP BY type, status, source"
    )
    op.execute(
        "INSERT INTO crm_lead_day_rollups (day, leads) "
        "SELECT (created_at AT TIME ZONE 'UTC')::date, count(*) FROM leads GROUP BY 1"
    )
    for table in ("form_submissions", "newsletter_subscribers"):
        op.execute(
            f"INSERT INTO crm_status_rollups (table_name, status, row_count) "
            f"SELECT '{table}', status, count(*) FROM {table} GROUP BY status"
        )


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "crm_lead_rollups",
        _id(),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("leads", sa.BigInteger(), nullable=False),
        sa.Column("score_sum", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_lead_rollups")),
    )
    op.create_table(
        "crm_lead_day_rollups",
        _id(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("leads", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_lead_day_rollups")),
    )
    op.create_index("idx_crm_lead_day_rollups_day", "crm_lead_day_rollups", ["day"])
    op.create_table(
        "crm_status_rollups",
        _id(),
        sa.Column("table_name", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_status_rollups")),
    )
    op.create_index(
        "idx_leads_source_keyset_score",
        "leads",
        [
            "source",
            sa.literal_column("lead_score DESC"),
            sa.literal_column("created_at DESC"),
            sa.literal_column("id DESC"),
        ],
    )
    op.create_index(
        "idx_crm_notifications_failed",
        "crm_notifications",
        [sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        postgresql_include=["target_system", "read"],
        postgresql_where=sa.text("status = 'FAILED'"),
        sqlite_where=sa.text("status = 'FAILED'"),
    )
    op.create_index(
        "idx_crm_notifications_pending",
        "crm_notifications",
        [sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        postgresql_where=sa.text("status = 'PENDING'"),
        sqlite_where=sa.text("status = 'PENDING'"),
    )
    if op.get_bind().dialect.name == "postgresql":
        _create_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _ in TABLES:
            for event in (*CHANGED, "truncate"):
                op.execute(f"DROP TRIGGER crm_roll_up_{event} ON {table}")
        for kind in ("leads", "status"):
            for event in (*CHANGED, "truncate"):
                op.execute(f"DROP FUNCTION crm_roll_up_{kind}_{event}()")
    op.drop_index("idx_crm_notifications_pending", table_name="crm_notifications")
    op.drop_index("idx_crm_notifications_failed", table_name="crm_notifications")
    op.drop_index("idx_leads_source_keyset_score", table_name="leads")
    op.drop_table("crm_status_rollups")
    op.drop_index("idx_crm_lead_day_rollups_day", table_name="crm_lead_day_rollups")
    op.drop_table("crm_lead_day_rollups")
    op.drop_table("crm_lead_rollups")
