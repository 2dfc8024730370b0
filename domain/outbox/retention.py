"""Retention: what the outbox keeps, and for how long (CRM_RETENTION_DAYS).

Only read notifications go: an unread one is still owed to its target, however old. Attempts
are the delivery log, kept as long as the rows they explain. Expired idempotency keys go in
the same daily sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.intake.idempotency import delete_expired_keys
from domain.models import ATTEMPTS, NOTIFICATIONS


@dataclass(frozen=True)
class Removed:
    attempts: int
    notifications: int
    keys: int

    def as_dict(self) -> dict[str, int]:
        return {"attempts": self.attempts, "notifications": self.notifications, "keys": self.keys}


async def purge_expired(
    conn: AsyncConnection, now: datetime, retention: timedelta, idempotency_ttl: timedelta
) -> Removed:
    """Delete attempts and read notifications older than `retention`, and expired keys."""
    cutoff = now - retention
    attempts = await conn.execute(delete(ATTEMPTS).where(ATTEMPTS.c.started_at < cutoff))
    notifications = await conn.execute(
        delete(NOTIFICATIONS).where(
            NOTIFICATIONS.c.read.is_(True), NOTIFICATIONS.c.read_at < cutoff
        )
    )
    keys = await delete_expired_keys(conn, idempotency_ttl, now)
    return Removed(attempts.rowcount, notifications.rowcount, keys)
