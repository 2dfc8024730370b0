"""Retention: what the outbox keeps, and for how long (CRM_RETENTION_DAYS).

Only read notifications go: an unread one is still owed to its target, however old. Expired
idempotency keys go in the same daily sweep. On PostgreSQL whole time partitions are dropped
(domain/outbox/partitions.py), which also keeps every attempt of an unread or FAILED
notification; SQLite deletes rows (attempts by their start time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.intake.idempotency import delete_expired_keys
from domain.models import ATTEMPTS, NOTIFICATIONS
from domain.outbox.partitions import retire_partitions


@dataclass(frozen=True)
class Removed:
    attempts: int
    notifications: int
    keys: int
    partitions: int = 0  # PostgreSQL: time partitions dropped

    def as_dict(self) -> dict[str, int]:
        return {
            "attempts": self.attempts,
            "notifications": self.notifications,
            "keys": self.keys,
            "partitions": self.partitions,
        }


async def purge_expired(
    conn: AsyncConnection,
    now: datetime,
    retention: timedelta,
    idempotency_ttl: timedelta,
    partitions_at_most: int | None = None,
) -> Removed:
    """Drop (PostgreSQL) or delete (SQLite) attempts and read notifications older than
    `retention`, and expired keys. (PostgreSQL's partitions ahead: `ensure_partitions`, in a
    transaction of its own: attaching one locks the DEFAULT partition until commit.)
    `partitions_at_most`: retire only the oldest periods, so that a caller can give each its own
    transaction (each holds the tables' lock until it commits)."""
    if conn.dialect.name == "postgresql":
        retired = await retire_partitions(conn, now, retention, partitions_at_most)
        keys = await delete_expired_keys(conn, idempotency_ttl, now)
        return Removed(retired.attempts, retired.notifications, keys, retired.partitions)
    attempts, notifications = await delete_expired_rows(conn, now - retention)
    keys = await delete_expired_keys(conn, idempotency_ttl, now)
    return Removed(attempts, notifications, keys)


async def delete_expired_rows(conn: AsyncConnection, cutoff: datetime) -> tuple[int, int]:
    """SQLite's path (PostgreSQL's before partitioning, which bench/scale.py still times):
    DELETE attempts started and read notifications read before `cutoff`; (attempts, notes)."""
    attempts = await conn.execute(delete(ATTEMPTS).where(ATTEMPTS.c.started_at < cutoff))
    notifications = await conn.execute(
        delete(NOTIFICATIONS).where(
            NOTIFICATIONS.c.read.is_(True), NOTIFICATIONS.c.read_at < cutoff
        )
    )
    return attempts.rowcount, notifications.rowcount
