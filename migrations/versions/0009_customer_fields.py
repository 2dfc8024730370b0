"""customer audit, custom CRM fields, sales role, customer notifications; form types in the rules

- `customer_audit`: who changed which field of a customer, when, from what to what.
- `crm_custom_fields` (definitions) and a `custom_fields` JSON column on leads and customers.
- users.role may be `sales`; crm_notifications.type may be CUSTOMER_UPDATED / CUSTOMER_DEACTIVATED.
- form_submissions.form_type loses its CHECK: form types are the keys of domain.rules.FORM_RULES,
  checked on input, so adding one needs no migration.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 10:00:00.000000
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OLD_TYPES = (
    "NEW_FORM_SUBMISSION",
    "NEW_LEAD",
    "QUOTE_REQUEST",
    "NEWSLETTER_SIGNUP",
    "NEW_CUSTOMER",
    "LEAD_CONVERTED",
    "QUOTE_STATUS_CHANGED",  # 0006
    "QUOTE_MESSAGE",
)
NEW_TYPES = (*OLD_TYPES, "CUSTOMER_UPDATED", "CUSTOMER_DEACTIVATED")
OLD_ROLES = ("customer", "admin")
NEW_ROLES = (*OLD_ROLES, "sales")
FORM_TYPES = ("contact_us", "quote_request", "partnership_inquiry")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _replace_check(table: str, name: str, condition: str | None) -> None:
    """Drop the CHECK `name` of `table` and, with a condition, add it back with that one."""
    if op.get_bind().dialect.name == "sqlite":
        _replace_check_sqlite(table, name, condition)
        return
    name = op.f(name)  # the final name (the naming convention must not wrap it again)
    op.drop_constraint(name, table, type_="check")
    if condition is not None:
        op.create_check_constraint(name, table, condition)


def _replace_check_sqlite(table: str, name: str, condition: str | None) -> None:
    """SQLite cannot alter a constraint, and batch mode's table copy cannot copy the generated
    `priority_rank` column; editing the stored CREATE TABLE is SQLite's documented way for a
    change that leaves the stored rows valid (https://sqlite.org/lang_altertable.html, section
    7): removing or widening a CHECK."""
    conn = op.get_bind()
    sql = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    check = re.compile(rf",\s*CONSTRAINT {name} CHECK \((?:[^()']|'[^']*'|\([^()]*\))*\)")
    replacement = f", CONSTRAINT {name} CHECK ({condition})" if condition else ""
    new_sql, found = check.subn(lambda _: replacement, sql)
    if not found:
        if condition is None:
            return
        new_sql = sql.rstrip().removesuffix(")").rstrip() + replacement + "\n)"
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    conn.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (new_sql, table)
    )
    conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    op.create_table(
        "customer_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("from_value", sa.Text(), nullable=True),
        sa.Column("to_value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_audit_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_audit")),
    )
    op.create_index("idx_customer_audit_customer", "customer_audit", ["customer_id", "at"])
    op.create_table(
        "crm_custom_fields",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "entity",
            sa.Enum(
                "lead",
                "customer",
                name="custom_field_entity",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "text",
                "number",
                "date",
                "boolean",
                "select",
                name="custom_field_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("options", JSON, nullable=True),
        sa.Column("required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_custom_fields")),
        sa.UniqueConstraint("entity", "key", name="uq_crm_custom_fields_entity_key"),
    )
    op.create_index(
        "idx_customers_keyset",
        "customers",
        [sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )
    op.add_column("leads", sa.Column("custom_fields", JSON, nullable=True))
    op.add_column("customers", sa.Column("custom_fields", JSON, nullable=True))
    _replace_check("form_submissions", "ck_form_submissions_form_type", None)
    _replace_check("users", "ck_users_user_role", _in("role", NEW_ROLES))
    _replace_check("crm_notifications", "ck_crm_notifications_notif_type", _in("type", NEW_TYPES))


def downgrade() -> None:
    _replace_check("crm_notifications", "ck_crm_notifications_notif_type", _in("type", OLD_TYPES))
    _replace_check("users", "ck_users_user_role", _in("role", OLD_ROLES))
    _replace_check("form_submissions", "ck_form_submissions_form_type", _in("form_type", FORM_TYPES))
    op.drop_column("customers", "custom_fields")
    op.drop_column("leads", "custom_fields")
    op.drop_table("crm_custom_fields")
    op.drop_index("idx_customers_keyset", table_name="customers")
    op.drop_index("idx_customer_audit_customer", table_name="customer_audit")
    op.drop_table("customer_audit")
