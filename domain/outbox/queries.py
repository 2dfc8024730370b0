"""Reading the outbox: the one "unread per target" query, and the pull-mode list.

The partial indexes on crm_notifications are declared `WHERE read = false`. PostgreSQL uses
one only when the query's condition implies that predicate, and `read IS false` (what
SQLAlchemy's `.is_(False)` compiles to) does not: such a query scans the table. So every
condition on `read` here is written `read = false` / `read = true` (`is_unread`, `read_is`),
with the boolean inlined rather than bound (a generic plan for `read = $1` cannot use the
index either).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, literal_column, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import NotificationStatus
from domain.models import NOTIFICATIONS

N = NOTIFICATIONS


def read_is(value: bool) -> ColumnElement[bool]:
    """`read = true` / `read = false`, the form the partial indexes' predicate matches."""
    return N.c.read == (true() if value else false())


def is_unread() -> ColumnElement[bool]:
    return read_is(False)


def status_is(status: NotificationStatus) -> ColumnElement[bool]:
    """`status = 'FAILED'`, inlined for the same reason as `read_is`: the partial indexes on
    status (idx_crm_notifications_failed, _pending, _due) match only a literal."""
    return N.c.status == literal_column(f"'{NotificationStatus(status).value}'")


@dataclass(frozen=True, slots=True)
class Unread:
    """A target system's unread (undelivered) notifications: how many, and since when."""

    target_system: str
    count: int
    oldest_created_at: datetime | None


def unread_by_target_statement(older_than: datetime | None = None) -> Select[Any]:
    """Count and oldest unread row per target: an index-only scan of idx_crm_notifications_unread."""
    stmt = select(N.c.target_system, func.count(), func.min(N.c.created_at)).where(is_unread())
    if older_than is not None:
        stmt = stmt.where(N.c.created_at < older_than)
    return stmt.group_by(N.c.target_system).order_by(N.c.target_system)


async def unread_by_target(
    conn: AsyncConnection, older_than: datetime | None = None
) -> list[Unread]:
    """Unread notifications per target system, by target name; only those created before
    `older_than` when given (stale ones). Metrics, alerts, stats and monitoring all read this."""
    rows = await conn.execute(unread_by_target_statement(older_than))
    return [Unread(t, int(n), _aware(oldest)) for t, n, oldest in rows]


def _aware(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite aggregates come back as text
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def pull_statement(target: str, read: bool | None, limit: int) -> Select[Any]:
    """Pull mode's list: HIGH > NORMAL > LOW, then oldest first; unread ones on the partial
    index idx_crm_notifications_unread (target, priority_rank DESC, created_at)."""
    stmt = select(N).where(N.c.target_system == target)
    if read is not None:
        stmt = stmt.where(read_is(read))
    return stmt.order_by(N.c.priority_rank.desc(), N.c.created_at).limit(limit)


def as_payload(row: Any) -> dict[str, Any]:
    """A notification as the seed shows it, for pull-mode clients."""
    return {
        "id": str(row.id),
        "type": str(row.type),
        "targetSystem": row.target_system,
        "priority": str(row.priority),
        "data": row.data,
        "read": row.read,
        "readAt": row.read_at.isoformat() if row.read_at else None,
        "createdAt": row.created_at.isoformat(),
        "status": str(row.status),
    }


async def list_for_target(
    conn: AsyncConnection, target: str, read: bool | None, limit: int
) -> list[dict[str, Any]]:
    """Pull mode: a target's notifications, HIGH > NORMAL > LOW, then oldest first."""
    return [as_payload(r) for r in await conn.execute(pull_statement(target, read, limit))]
