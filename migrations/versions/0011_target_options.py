"""crm_targets: connector kinds, their `options` (JSON) and sealed `credentials`

- `kind` may be webhook, rabbitmq, nats, slack, salesforce, hubspot or pipedrive (issue 12).
- `options`: kind-specific settings (exchange, stream, apiVersion, mapping...), shown.
- `credentials`: one sealed (infra/secretbox.py) JSON text holding the kind's credentials and,
  for a URL carrying a password (amqp://user:pass@...), that URL; never shown.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 10:00:00.000000
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
CHECK = "ck_crm_targets_target_kind"
OLD_KINDS = ("webhook",)
NEW_KINDS = (*OLD_KINDS, "rabbitmq", "nats", "slack", "salesforce", "hubspot", "pipedrive")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _replace_check(table: str, name: str, condition: str) -> None:
    """As in 0009: drop and re-add on PostgreSQL; edit the stored CREATE TABLE on SQLite
    (https://sqlite.org/lang_altertable.html, section 7: widening a CHECK)."""
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        op.drop_constraint(op.f(name), table, type_="check")
        op.create_check_constraint(op.f(name), table, condition)
        return
    sql = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    check = re.compile(rf",\s*CONSTRAINT {name} CHECK \((?:[^()']|'[^']*'|\([^()]*\))*\)")
    new_sql, found = check.subn(lambda _: f", CONSTRAINT {name} CHECK ({condition})", sql)
    if not found:
        new_sql = sql.rstrip().removesuffix(")").rstrip() + f", CONSTRAINT {name} CHECK ({condition})\n)"
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    conn.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (new_sql, table)
    )
    conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _replace_check("crm_targets", CHECK, _in("kind", NEW_KINDS))
    with op.batch_alter_table("crm_targets") as batch:
        batch.add_column(sa.Column("options", JSON, server_default=sa.text("'{}'"), nullable=False))
        batch.add_column(sa.Column("credentials", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM crm_targets WHERE kind <> 'webhook'")
    with op.batch_alter_table("crm_targets") as batch:
        batch.drop_column("credentials")
        batch.drop_column("options")
    _replace_check("crm_targets", CHECK, _in("kind", OLD_KINDS))
