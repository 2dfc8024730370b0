"""Writing outbox rows next to the domain rows they describe."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import NotificationStatus, NotificationType
from domain.rules import Route, priority_for, targets_for

Rows = list[dict[str, Any]]


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
    return [
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
        for target in targets_for(notification_type, routes)
    ]


async def insert_all(conn: AsyncConnection, writes: Sequence[tuple[Table, Rows]]) -> None:
    """Insert several tables' rows atomically.

    On PostgreSQL the inserts become one statement (data-modifying CTEs): one round trip,
    atomic on its own. Elsewhere they run in order inside the caller's transaction.
    """
    writes = [(t, rows) for t, rows in writes if rows]
    if not writes:
        return
    if conn.dialect.name == "postgresql" and len(writes) > 1:
        *ctes, (last_table, last_rows) = writes
        stmt = insert(last_table).values(last_rows)
        for i, (table, rows) in enumerate(ctes):
            stmt = stmt.add_cte(insert(table).values(rows).cte(f"w{i}"))
        await conn.execute(stmt)
        return
    for table, rows in writes:
        await conn.execute(insert(table), rows)


# The name under which the API wakes the dispatcher through the broker (api -> broker -> worker).
DISPATCH_TASK = "crm.dispatch"
