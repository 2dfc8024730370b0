"""quote lifecycle: QUOTED status, line prices, currency and validity, PRICED events,
QUOTE_STATUS_CHANGED and QUOTE_MESSAGE notifications, keyset indexes of the quote lists

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, constraint name, values before, values after): the enums' CHECK constraints.
NOTIF_TYPES = (
    "NEW_FORM_SUBMISSION",
    "NEW_LEAD",
    "QUOTE_REQUEST",
    "NEWSLETTER_SIGNUP",
    "NEW_CUSTOMER",
    "LEAD_CONVERTED",
)
QUOTE_STATUSES = ("SUBMITTED", "NEGOTIATING", "ACCEPTED", "REJECTED", "EXPIRED")
EVENT_TYPES = ("CREATED", "MESSAGE", "STATUS_CHANGED")
CHECKS = (
    (
        "crm_notifications",
        "type",
        "ck_crm_notifications_notif_type",
        NOTIF_TYPES,
        (*NOTIF_TYPES, "QUOTE_STATUS_CHANGED", "QUOTE_MESSAGE"),
    ),
    ("quotes", "status", "ck_quotes_quote_status", QUOTE_STATUSES, ("QUOTED", *QUOTE_STATUSES)),
    (
        "quote_events",
        "type",
        "ck_quote_events_quote_event_type",
        EVENT_TYPES,
        (*EVENT_TYPES, "PRICED"),
    ),
)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _replace_checks(pick: int) -> None:
    """Swap each enum CHECK for one naming the other set of values."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column, name, *values in CHECKS:
        if sqlite:
            _sqlite_swap_check(table, name, _in(column, values[1 - pick]), _in(column, values[pick]))
        else:
            op.drop_constraint(op.f(name), table, type_="check")
            op.create_check_constraint(op.f(name), table, _in(column, values[pick]))


def _sqlite_swap_check(table: str, name: str, before: str, after: str) -> None:
    """SQLite: edit the CHECK in the stored schema, SQLite's documented way for changes that
    touch no stored data (sqlite.org/lang_altertable.html, "making other kinds of table schema
    changes"). Rebuilding the table instead (Alembic's batch mode) cannot copy crm_notifications,
    whose generated column refuses the INSERT ... SELECT. Upgrades only widen the value sets;
    the downgrade deletes or rewrites the rows of the removed values first."""
    conn = op.get_bind()
    find = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?"
    old_sql = conn.exec_driver_sql(find, (table,)).scalar_one()
    old_clause, new_clause = f"CONSTRAINT {name} CHECK ({before})", f"CONSTRAINT {name} CHECK ({after})"
    if old_clause not in old_sql:
        raise RuntimeError(f"{table}: constraint {name} is not {before}")
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    conn.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
        (old_sql.replace(old_clause, new_clause), table),
    )
    conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    with op.batch_alter_table("quotes") as batch:
        batch.add_column(sa.Column("currency", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("priced_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("quote_lines") as batch:
        batch.add_column(sa.Column("unit_price", sa.Numeric(18, 4), nullable=True))
        batch.create_check_constraint(
            op.f("ck_quote_lines_unit_price_not_negative"), "unit_price >= 0"
        )
    _replace_checks(1)
    op.create_index(
        "idx_quotes_keyset",
        "quotes",
        [sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )
    op.create_index(
        "idx_quotes_status_keyset",
        "quotes",
        ["status", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )
    op.create_index(
        "idx_quotes_customer_keyset",
        "quotes",
        ["customer_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )


def downgrade() -> None:
    op.drop_index("idx_quotes_customer_keyset", table_name="quotes")
    op.drop_index("idx_quotes_status_keyset", table_name="quotes")
    op.drop_index("idx_quotes_keyset", table_name="quotes")
    op.execute("DELETE FROM crm_notifications WHERE type IN ('QUOTE_STATUS_CHANGED', 'QUOTE_MESSAGE')")
    op.execute("DELETE FROM quote_events WHERE type = 'PRICED'")
    op.execute("UPDATE quotes SET status = 'SUBMITTED' WHERE status = 'QUOTED'")
    _replace_checks(0)
    with op.batch_alter_table("quote_lines") as batch:
        batch.drop_constraint(op.f("ck_quote_lines_unit_price_not_negative"), type_="check")
        batch.drop_column("unit_price")
    with op.batch_alter_table("quotes") as batch:
        batch.drop_column("priced_at")
        batch.drop_column("valid_until")
        batch.drop_column("currency")
