"""PostgreSQL: the outbox's time partitions, made ahead and retired whole (issue 14).

`crm_notifications` is partitioned by RANGE (created_at), `crm_notification_attempts` by RANGE
(started_at), both in periods of CRM_PARTITION_DAYS (7) aligned on Mondays 00:00 UTC, each with
a DEFAULT partition (`<table>_kept`, migration 0013). The beat makes the current period and
AHEAD more; a row whose period has no partition (the beat was down) lands in `_kept`, and the
partition made later for its period takes it over (`_make`).

Retention retires a partition once its whole period is older than CRM_RETENTION_DAYS: DETACH,
copy back into the parent the rows that must stay (they land in `_kept` with their id and times
unchanged), DROP. A dropped partition returns its disk at once; a DELETE returns none. Kept:
unread and FAILED notifications (still owed to their target), read ones read within the
retention (today's rule, `read_at`), and every attempt of an unread or FAILED notification.
Rows in `_kept` go by DELETE, the same rule as before partitioning; `_kept` holds only them.

There is no foreign key from attempts to notifications on PostgreSQL: its check on DETACH
joined the whole attempts table with the partition (1.9 s per 200,000 rows, under an ACCESS
EXCLUSIVE lock that stops the API's inserts). Attempts are written only for claimed rows and go
with them here, so nothing else needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.models import ATTEMPTS, NOTIFICATIONS

# Periods start on Mondays 00:00 UTC (2000-01-03 was one): weekly partitions are calendar weeks.
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
AHEAD = 2  # periods made ahead of the current one: the beat may miss a few runs
KEPT = "_kept"  # suffix of each table's DEFAULT partition
# DETACH/ATTACH wait at most this long for running transactions (queries queue behind the
# waiting lock meanwhile), then the run fails and the next one tries again.
LOCK_TIMEOUT = "2s"
KEYS: dict[str, str] = {NOTIFICATIONS.name: "created_at", ATTEMPTS.name: "started_at"}
# Free room on each page of a notifications partition: the claim's update (claimed_until and
# claimed_by, in no index) then stays on its page as a HOT update, writing none of the table's
# nine index entries (bench/drain.py --fillfactor: the drain +10-25 % at 75; migration 0014).
# A partitioned table holds no storage parameter itself: each partition is made with it.
FILLFACTOR: dict[str, int] = {NOTIFICATIONS.name: 75}
# A notification that must stay: still owed to its target, dead-lettered, or read recently.
_STAYS = "(read = false OR status = 'FAILED' OR read_at >= :cutoff)"
_OWED = "(read = false OR status = 'FAILED')"


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    lower: datetime
    upper: datetime


@dataclass(frozen=True, slots=True)
class Retired:
    """What a retention run dropped and kept (kept: rows copied into `_kept`)."""

    partitions: int = 0
    notifications: int = 0
    attempts: int = 0
    kept_notifications: int = 0
    kept_attempts: int = 0


def period_start(at: datetime, period: timedelta) -> datetime:
    return ORIGIN + ((at - ORIGIN) // period) * period


def _columns(table: Table) -> str:
    """Every stored column (not the generated priority_rank, which an INSERT may not name)."""
    return ", ".join(f'"{c.name}"' for c in table.c if c.computed is None)


def _at(moment: datetime) -> str:
    return f"'{moment.astimezone(UTC).isoformat()}'"  # a literal: DDL takes no parameters


async def partitions_of(conn: AsyncConnection, table: str) -> list[Partition]:
    """The range partitions of `table`, oldest first (not the DEFAULT one)."""
    rows = await conn.execute(
        text(
            "SELECT c.relname,"
            " (regexp_match(b.bound, 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz,"
            " (regexp_match(b.bound, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,"
            " LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b"
            " WHERE i.inhparent = CAST(:t AS regclass) AND b.bound <> 'DEFAULT'"
        ),
        {"t": table},
    )
    return sorted((Partition(*r) for r in rows), key=lambda p: p.lower)


def _gaps(
    existing: list[Partition], lower: datetime, upper: datetime
) -> list[tuple[datetime, datetime]]:
    """The parts of [lower, upper) no partition covers (a changed period leaves odd edges)."""
    gaps, cursor = [], lower
    for p in existing:
        if p.upper <= cursor or p.lower >= upper:
            continue
        if p.lower > cursor:
            gaps.append((cursor, p.lower))
        cursor = max(cursor, p.upper)
    if cursor < upper:
        gaps.append((cursor, upper))
    return gaps


async def ensure_partitions(
    conn: AsyncConnection, now: datetime, period: timedelta, ahead: int = AHEAD
) -> list[str]:
    """Make the partitions of the current period and `ahead` more, for both tables; returns
    the names made. Idempotent: a period that has its partition is left alone. SQLite: none."""
    if conn.dialect.name != "postgresql":
        return []
    await conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    start = period_start(now, period)
    made: list[str] = []
    for table in (NOTIFICATIONS, ATTEMPTS):  # always in this order: no lock cycle with others
        existing = await partitions_of(conn, table.name)
        for k in range(ahead + 1):
            lower = start + k * period
            for gap in _gaps(existing, lower, lower + period):
                made.append(await _make(conn, table, *gap))
    return made


async def _make(conn: AsyncConnection, table: Table, lower: datetime, upper: datetime) -> str:
    """Create the partition [lower, upper) of `table`, taking over the rows `_kept` holds for
    that range (CREATE ... PARTITION OF would refuse them): made as a plain table, filled,
    then attached, in the caller's transaction."""
    name, key, cols = f"{table.name}_p{lower:%Y%m%d}", KEYS[table.name], _columns(table)
    in_range = f'"{key}" >= {_at(lower)} AND "{key}" < {_at(upper)}'
    fill = FILLFACTOR.get(table.name)
    await conn.exec_driver_sql(
        f'CREATE TABLE "{name}" (LIKE "{table.name}" INCLUDING DEFAULTS INCLUDING GENERATED'
        " INCLUDING CONSTRAINTS INCLUDING STORAGE)"
        + (f" WITH (fillfactor = {int(fill)})" if fill else "")
    )
    moved = await conn.exec_driver_sql(
        f'WITH moved AS (DELETE FROM "{table.name}{KEPT}" WHERE {in_range} RETURNING {cols})'
        f' INSERT INTO "{name}" ({cols}) SELECT {cols} FROM moved'
    )
    if moved.rowcount:
        await conn.exec_driver_sql(f'ANALYZE "{name}"')
    await conn.exec_driver_sql(
        f'ALTER TABLE "{table.name}" ATTACH PARTITION "{name}"'
        f" FOR VALUES FROM ({_at(lower)}) TO ({_at(upper)})"
    )
    return name


async def retire_partitions(
    conn: AsyncConnection, now: datetime, retention: timedelta, at_most: int | None = None
) -> Retired:
    """Drop the partitions whose period ended `retention` ago or more (the oldest `at_most`
    of each table when given), keeping the rows that must stay (module docstring); first
    delete from `_kept` what no longer must stay.

    Only the DETACH, the insert of the kept rows and the DROP hold the parent's ACCESS
    EXCLUSIVE lock (until commit: inserts wait that long). The scans come before it: the
    notifications that may stay are listed by id (that set only ever shrinks: a read row is
    never unread again), the attempts that stay are copied whole (an attempt never changes),
    so under the lock the notifications are copied by id and the attempts inserted as they are."""
    cutoff = now - retention
    params = {"cutoff": cutoff}
    await conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    swept_n = await conn.execute(
        text(f"DELETE FROM crm_notifications{KEPT} WHERE NOT {_STAYS}"), params
    )
    swept_a = await conn.execute(
        text(
            f"DELETE FROM crm_notification_attempts{KEPT} a WHERE started_at < :cutoff"
            " AND NOT EXISTS (SELECT 1 FROM crm_notifications n"
            f" WHERE n.id = a.notification_id AND {_OWED})"
        ),
        params,
    )
    old_n = [p for p in await partitions_of(conn, NOTIFICATIONS.name) if p.upper <= cutoff]
    old_a = [p for p in await partitions_of(conn, ATTEMPTS.name) if p.upper <= cutoff]
    old_n, old_a = old_n[:at_most], old_a[:at_most]
    if not old_n and not old_a:
        return Retired(0, swept_n.rowcount, swept_a.rowcount)
    n_cols, a_cols = _columns(NOTIFICATIONS), _columns(ATTEMPTS)
    # Before the lock: how many rows, and which may stay.
    total_n = await _count(conn, old_n)
    total_a = await _count(conn, old_a)
    await conn.exec_driver_sql(
        "DROP TABLE IF EXISTS pg_temp.crm_retire_ids, pg_temp.crm_retire_attempts"
    )
    await conn.execute(
        text(
            "CREATE TEMP TABLE crm_retire_ids ON COMMIT DROP AS "
            + _union(NOTIFICATIONS, old_n, "id", f"WHERE {_STAYS}")
        ),
        params,
    )
    await conn.exec_driver_sql(
        "CREATE TEMP TABLE crm_retire_attempts ON COMMIT DROP AS "
        + _union(
            ATTEMPTS,
            old_a,
            a_cols,
            f"WHERE notification_id IN (SELECT id FROM crm_notifications WHERE {_OWED})",
        )
    )
    await conn.exec_driver_sql("ANALYZE crm_retire_ids")
    # Under the lock: notifications first (as the dispatcher takes its locks).
    for p in old_n:
        await conn.exec_driver_sql(f'ALTER TABLE crm_notifications DETACH PARTITION "{p.name}"')
    kept_n = await conn.execute(
        text(
            f"INSERT INTO crm_notifications ({n_cols}) SELECT {n_cols} FROM ("
            + _union(NOTIFICATIONS, old_n, "*", "")
            + f") p WHERE id IN (SELECT id FROM crm_retire_ids) AND {_STAYS}"
        ),
        params,
    )
    for p in old_a:
        await conn.exec_driver_sql(
            f'ALTER TABLE crm_notification_attempts DETACH PARTITION "{p.name}"'
        )
    kept_a = await conn.exec_driver_sql(
        f"INSERT INTO crm_notification_attempts ({a_cols}) SELECT {a_cols} FROM crm_retire_attempts"
    )
    for p in (*old_n, *old_a):
        await conn.exec_driver_sql(f'DROP TABLE "{p.name}"')
    return Retired(
        len(old_n) + len(old_a),
        swept_n.rowcount + total_n - kept_n.rowcount,
        swept_a.rowcount + total_a - kept_a.rowcount,
        kept_n.rowcount,
        kept_a.rowcount,
    )


async def _count(conn: AsyncConnection, partitions: list[Partition]) -> int:
    if not partitions:
        return 0
    return int(
        (
            await conn.execute(
                text(f"SELECT count(*) FROM ({_union(NOTIFICATIONS, partitions, '1', '')}) p")
            )
        ).scalar_one()
    )


def _union(table: Table, partitions: list[Partition], columns: str, where: str) -> str:
    """SELECT `columns` FROM each partition of `table` `where`, as one query (none: no rows)."""
    if not partitions:
        return f'SELECT {columns} FROM "{table.name}" WHERE false'
    return " UNION ALL ".join(f'SELECT {columns} FROM "{p.name}" {where}' for p in partitions)
