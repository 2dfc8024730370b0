"""The notifications written about one lead (every payload describing a lead carries `leadId`),
for the lead page: what each CRM system was told, and whether it got it."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import NotificationStatus
from domain.models import NOTIFICATIONS

N = NOTIFICATIONS
MAX_SHOWN = 100


class LeadNotification(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    type: str
    target_system: str
    priority: str
    status: NotificationStatus
    read: bool
    attempts: int
    last_error: str | None
    created_at: datetime


async def lead_notifications(
    conn: AsyncConnection, lead_id: uuid.UUID, limit: int = MAX_SHOWN
) -> list[LeadNotification]:
    """Newest first, at most `limit`."""
    rows = await conn.execute(
        select(
            N.c.id,
            N.c.type,
            N.c.target_system,
            N.c.priority,
            N.c.status,
            N.c.read,
            N.c.attempts,
            N.c.last_error,
            N.c.created_at,
        )
        .where(N.c.data["leadId"].as_string() == str(lead_id))
        .order_by(N.c.created_at.desc(), N.c.id.desc())
        .limit(limit)
    )
    return [
        LeadNotification(
            r.id,
            str(r.type),
            r.target_system,
            str(r.priority),
            NotificationStatus(r.status),
            r.read,
            r.attempts,
            r.last_error,
            r.created_at,
        )
        for r in rows
    ]
