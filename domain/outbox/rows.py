"""Writing outbox rows next to the domain rows they describe."""

from __future__ import annotations

import re
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, Table, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import NotificationStatus, NotificationType
from domain.models import NOTIFICATIONS
from domain.rules import Route, priority_for, targets_for
from infra.metrics import note_notifications

Rows = list[dict[str, Any]]

# Set in a connection's `info` when it writes outbox rows: the API's transaction boundary wakes
# the dispatcher once that transaction has committed (api/transaction.py).
OUTBOX_WRITTEN = "crm.outbox_written"


def mark_outbox_written(conn: AsyncConnection) -> None:
    """This connection's transaction has notifications to deliver once it commits."""
    conn.info[OUTBOX_WRITTEN] = True


def notification_rows(
    notification_type: NotificationType,
    data: dict[str, Any],
    routes: Iterable[Route],
    now: datetime,
    score: int | None = None,
    request_id: str | None = None,
) -> Rows:
    """One outbox row per target system routed to receive this type."""
    priority = priority_for(notification_type, score)
    rows = [
        {
            "id": uuid.uuid4(),
            "type": notification_type,
            "target_system": target,
            "priority": priority,
            "data": data,
            "read": False,
            "created_at": now,
            "status": NotificationStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "request_id": request_id,
        }
        for target in targets_for(notification_type, routes, priority)
    ]
    note_notifications(rows)  # counted in crm_notifications_created once the request commits
    return rows


Writes = Sequence[tuple[Table, Rows]]


@dataclass(frozen=True, slots=True)
class OneStatement:
    """Several tables' inserts as one SQL statement, with its values.

    `sql` and `params` in the driver's paramstyle (`%(name)s`); `raw_sql` and `values` the same
    statement with PostgreSQL's own placeholders (`$1, $2, ...`), for a raw cursor that sends it
    as it is: psycopg converts a `%(name)s` query on every call unless it is short, and a grouped
    statement (infra/group_commit.py) is not.
    """

    sql: str
    names: tuple[str, ...]
    values: tuple[Any, ...]
    raw_sql: bytes

    @property
    def params(self) -> dict[str, Any]:
        return dict(zip(self.names, self.values, strict=True))


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True, slots=True)
class _Template:
    sql: str
    raw_sql: bytes
    names: tuple[str, ...]
    # (parameter name, index of the write, index of the row, column key, bind processor)
    binds: tuple[tuple[str, int, int, str, Callable[[Any], Any] | None], ...]


_Shape = tuple[tuple[Table, tuple[str, ...], int], ...]
_MAX_TEMPLATES = 256
_templates: weakref.WeakKeyDictionary[Dialect, dict[_Shape, _Template | None]] = (
    weakref.WeakKeyDictionary()
)


def _compile(dialect: Dialect, writes: Writes) -> _Template | None:
    """The statement for this shape of writes, with one named parameter per value."""
    binds: list[tuple[str, int, int, str, Callable[[Any], Any] | None]] = []
    inserts = []
    for w, (table, rows) in enumerate(writes):
        values = []
        for r, row in enumerate(rows):
            placeholders = {}
            for key in row:
                column = table.c[key]
                name = f"w{w}r{r}_{key}"
                placeholders[key] = bindparam(name, type_=column.type)
                processor = column.type.dialect_impl(dialect).bind_processor(dialect)
                binds.append((name, w, r, key, processor))
            values.append(placeholders)
        inserts.append(insert(table).values(values))
    *ctes, stmt = inserts
    for i, cte in enumerate(ctes):
        stmt = stmt.add_cte(cte.cte(f"w{i}"))
    compiled = stmt.compile(dialect=dialect)
    if set(compiled.binds) != {b[0] for b in binds}:
        return None  # SQLAlchemy would add values of its own (Python-side column defaults)
    sql = str(compiled)
    names = tuple(_PLACEHOLDER.findall(sql))
    by_name = {b[0]: b for b in binds}
    if len(set(names)) != len(names) or set(names) != set(by_name):
        return None  # not one placeholder per value, as this module expects
    position = {name: i for i, name in enumerate(names, 1)}
    raw_sql = _PLACEHOLDER.sub(lambda m: f"${position[m[1]]}", sql).encode()
    return _Template(sql, raw_sql, names, tuple(by_name[n] for n in names))


def one_statement(dialect: Dialect, writes: Writes) -> OneStatement | None:
    """PostgreSQL: the inserts of `writes` as one statement (data-modifying CTEs).

    The SQL is compiled once per shape (tables, columns, row counts) and cached; each call only
    binds values, through the same type processors SQLAlchemy applies (enum values checked,
    JSON wrapped for the driver). None when the writes do not fit (a row missing a column that
    has a Python-side default, rows of one table with different columns).
    """
    writes = [(t, rows) for t, rows in writes if rows]
    if not writes:
        return None
    shape = []
    for table, rows in writes:
        first = rows[0].keys()
        if any(row.keys() != first for row in rows[1:]):
            return None
        shape.append((table, tuple(first), len(rows)))
    key = tuple(shape)
    cache = _templates.setdefault(dialect, {})
    try:
        template = cache[key]
    except KeyError:
        if len(cache) >= _MAX_TEMPLATES:
            del cache[next(iter(cache))]
        template = cache[key] = _compile(dialect, writes)
    if template is None:
        return None
    values = []
    for _name, w, r, column, processor in template.binds:
        value = writes[w][1][r][column]
        values.append(value if processor is None else processor(value))
    return OneStatement(template.sql, template.names, tuple(values), template.raw_sql)


async def insert_all(conn: AsyncConnection, writes: Writes) -> None:
    """Insert several tables' rows atomically.

    On PostgreSQL the inserts become one statement (data-modifying CTEs): one round trip,
    atomic on its own, compiled once per shape (see `one_statement`). Elsewhere they run in
    order inside the caller's transaction.
    """
    writes = [(t, rows) for t, rows in writes if rows]
    if not writes:
        return
    if any(table is NOTIFICATIONS for table, _ in writes):
        mark_outbox_written(conn)
    if conn.dialect.name == "postgresql" and len(writes) > 1:
        stmt = one_statement(conn.dialect, writes)
        if stmt is not None:
            await conn.exec_driver_sql(stmt.sql, stmt.params)
            return
        *ctes, (last_table, last_rows) = writes
        sa_stmt = insert(last_table).values(last_rows)
        for i, (table, rows) in enumerate(ctes):
            sa_stmt = sa_stmt.add_cte(insert(table).values(rows).cte(f"w{i}"))
        await conn.execute(sa_stmt)
        return
    for table, rows in writes:
        await conn.execute(insert(table), rows)


# The name under which the API wakes the dispatcher through the broker (api -> broker -> worker).
DISPATCH_TASK = "crm.dispatch"
