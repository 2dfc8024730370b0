"""Bulk replay of one destination's notifications, filtered; each keeps its id (webhook-id).

Replayed rows just become due; pacing them to the destination's rate limit is the
dispatcher's job, as for any other row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.destinations.registry import get_target
from domain.enums import NotificationStatus, NotificationType
from domain.models import NOTIFICATIONS, utcnow
from domain.outbox.queries import is_unread, read_is
from domain.outbox.rows import mark_outbox_written
from infra.settings import Settings

N = NOTIFICATIONS


class ReplayStatus(StrEnum):
    FAILED = "FAILED"
    DELIVERED = "DELIVERED"
    PENDING = "PENDING"


class ReplayFilter(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    status: ReplayStatus = ReplayStatus.FAILED
    types: list[NotificationType] | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("until must be later than since")


class Queued(msgspec.Struct):
    queued: int


async def replay_target(
    conn: AsyncConnection, settings: Settings, name: str, f: ReplayFilter
) -> Queued:
    """Make the matching rows due now, with a fresh attempt budget (attempt numbers go on)."""
    await get_target(conn, settings, name)  # 404 for an unknown name
    now = utcnow()
    cond: list[ColumnElement[bool]] = [N.c.target_system == name]
    if f.status is ReplayStatus.DELIVERED:
        cond += [read_is(True), N.c.status == NotificationStatus.DELIVERED]
    else:
        cond += [is_unread(), N.c.status == NotificationStatus(f.status.value)]
        # A row leased to a dispatcher right now is being sent: not twice at once.
        cond.append(or_(N.c.claimed_until.is_(None), N.c.claimed_until < now))
    if f.types:
        cond.append(N.c.type.in_(f.types))
    if f.since is not None:
        cond.append(N.c.created_at >= f.since)
    if f.until is not None:
        cond.append(N.c.created_at < f.until)
    done = await conn.execute(
        update(N)
        .where(N.c.id.in_(select(N.c.id).where(*cond).scalar_subquery()))
        .values(
            status=NotificationStatus.PENDING,
            read=False,
            read_at=None,
            counted_attempts=0,
            next_attempt_at=now,
            failed_at=None,
            claimed_until=None,
            claimed_by=None,
        )
    )
    queued = done.rowcount or 0
    if queued:
        mark_outbox_written(conn)  # the dispatcher is woken once this commits
    return Queued(queued)
