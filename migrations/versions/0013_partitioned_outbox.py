"""partitioned outbox: crm_notifications and its attempts by time, on PostgreSQL (issue 14, item 3)

crm_notifications becomes PARTITION BY RANGE (created_at), crm_notification_attempts PARTITION
BY RANGE (started_at), in weekly partitions (Mondays 00:00 UTC, the default CRM_PARTITION_DAYS)
from the week of the oldest row to two weeks ahead, plus a DEFAULT partition each
(`<table>_kept`): rows whose week has no partition, and the rows retention keeps when it drops a
partition (domain/outbox/partitions.py). Every row is copied: the old table is renamed, the
partitioned one made LIKE it (columns, defaults, the generated priority_rank, checks), filled by
INSERT ... SELECT, indexed with the old table's own index definitions, and the old one dropped.
The attempts' id sequence carries on.

A partitioned table's primary key must hold its partition key: (id, created_at) and
(id, started_at). The attempts -> notifications foreign key goes: it could only reference
(id, created_at), and its check when a partition is detached scans the attempts (see
domain/outbox/partitions.py). Downgrade makes plain tables again (attempts whose notification
is gone, which the old foreign key would refuse, are left out). SQLite: nothing changes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 10:00:00
"""

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from alembic import op
from sqlalchemy import text

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTES, TRIES = "crm_notifications", "crm_notification_attempts"
KEYS = {NOTES: "created_at", TRIES: "started_at"}
SEQUENCE = "crm_notification_attempts_id_seq"
FK = "fk_crm_notification_attempts_notification_id_crm_notifications"
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday, as in domain/outbox/partitions.py
PERIOD = timedelta(days=7)
AHEAD = 2


def _scalar(sql: str) -> object:
    return op.get_bind().execute(text(sql)).scalar()


def _column_list(table: str) -> str:
    """Stored columns of `table`, in order (not generated ones, which INSERT may not name)."""
    names = op.get_bind().execute(
        text(
            "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass)"
            " AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum"
        ),
        {"t": table},
    )
    return ", ".join(f'"{n}"' for (n,) in names)


def _index_definitions(table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX ...) of `table`'s indexes other than its primary key."""
    rows = op.get_bind().execute(
        text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisprimary ORDER BY c.relname"
        ),
        {"t": table},
    )
    return [(name, definition) for name, definition in rows]


def _on(definition: str, table: str) -> str:
    return re.sub(r" ON (ONLY )?\S+ USING ", f" ON {table} USING ", definition, count=1)


def _primary_key(table: str) -> str:
    return str(
        _scalar(
            f"SELECT conname FROM pg_constraint WHERE conrelid = '{table}'::regclass"
            " AND contype = 'p'"
        )
    )


def _set_aside(table: str, suffix: str) -> list[tuple[str, str]]:
    """Rename `table` to table+suffix and free the names its indexes and key use."""
    indexes = _index_definitions(table)
    pk = _primary_key(table)
    op.execute(f"ALTER TABLE {table} RENAME TO {table}{suffix}")
    for name, _ in indexes:
        op.execute(f'DROP INDEX "{name}"')
    op.execute(f'ALTER TABLE {table}{suffix} DROP CONSTRAINT "{pk}"')
    return indexes


def _at(moment: datetime) -> str:
    return f"'{moment.isoformat()}'"


def _period_start(at: datetime) -> datetime:
    return ORIGIN + ((at - ORIGIN) // PERIOD) * PERIOD


def _partition(table: str, source: str) -> None:
    """`table` LIKE `source`, partitioned by week, from the oldest row's week to AHEAD weeks
    after the current one, with its DEFAULT partition."""
    key = KEYS[table]
    op.execute(
        f"CREATE TABLE {table} (LIKE {source} INCLUDING DEFAULTS INCLUDING GENERATED"
        f" INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY RANGE ({key})"
    )
    op.execute(f"CREATE TABLE {table}_kept PARTITION OF {table} DEFAULT")
    now = datetime.now(UTC)
    oldest = _scalar(f"SELECT min({key}) FROM {source}")
    lower = _period_start(min(oldest, now) if isinstance(oldest, datetime) else now)
    end = _period_start(now) + (AHEAD + 1) * PERIOD
    while lower < end:
        op.execute(
            f'CREATE TABLE "{table}_p{lower:%Y%m%d}" PARTITION OF {table}'
            f" FOR VALUES FROM ({_at(lower)}) TO ({_at(lower + PERIOD)})"
        )
        lower += PERIOD


def _copy(table: str, source: str) -> None:
    columns = _column_list(source)
    op.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {source}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"LOCK TABLE {NOTES}, {TRIES} IN ACCESS EXCLUSIVE MODE")
    op.execute(f"ALTER TABLE {TRIES} DROP CONSTRAINT IF EXISTS {FK}")
    indexes = {table: _set_aside(table, "_old") for table in (NOTES, TRIES)}
    op.execute(f"ALTER SEQUENCE {SEQUENCE} OWNED BY NONE")
    for table in (NOTES, TRIES):
        _partition(table, f"{table}_old")
        _copy(table, f"{table}_old")
    op.execute(f"ALTER SEQUENCE {SEQUENCE} OWNED BY {TRIES}.id")
    op.execute(f"ALTER TABLE {NOTES} ADD CONSTRAINT pk_{NOTES} PRIMARY KEY (id, created_at)")
    op.execute(f"ALTER TABLE {TRIES} ADD CONSTRAINT pk_{TRIES} PRIMARY KEY (id, started_at)")
    for table in (NOTES, TRIES):
        for _, definition in indexes[table]:
            op.execute(_on(definition, table))
        op.execute(f"DROP TABLE {table}_old")
        op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"LOCK TABLE {NOTES}, {TRIES} IN ACCESS EXCLUSIVE MODE")
    indexes = {table: _set_aside(table, "_part") for table in (NOTES, TRIES)}
    op.execute(f"ALTER SEQUENCE {SEQUENCE} OWNED BY NONE")
    for table in (NOTES, TRIES):
        op.execute(
            f"CREATE TABLE {table} (LIKE {table}_part INCLUDING DEFAULTS INCLUDING GENERATED"
            " INCLUDING CONSTRAINTS INCLUDING STORAGE)"
        )
        _copy(table, f"{table}_part")
    op.execute(f"ALTER SEQUENCE {SEQUENCE} OWNED BY {TRIES}.id")
    op.execute(f"ALTER TABLE {NOTES} ADD CONSTRAINT pk_{NOTES} PRIMARY KEY (id)")
    op.execute(f"ALTER TABLE {TRIES} ADD CONSTRAINT pk_{TRIES} PRIMARY KEY (id)")
    op.execute(
        f"DELETE FROM {TRIES} a WHERE NOT EXISTS"
        f" (SELECT 1 FROM {NOTES} n WHERE n.id = a.notification_id)"
    )
    op.execute(
        f"ALTER TABLE {TRIES} ADD CONSTRAINT {FK} FOREIGN KEY (notification_id)"
        f" REFERENCES {NOTES} (id) ON DELETE CASCADE"
    )
    for table in (NOTES, TRIES):
        for _, definition in indexes[table]:
            op.execute(_on(definition, table))
        op.execute(f"DROP TABLE {table}_part")
        op.execute(f"ANALYZE {table}")
