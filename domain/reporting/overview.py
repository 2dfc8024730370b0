"""The admin CRM view (seed section 5): stat cards plus the latest leads, forms, subscribers
and notifications, each a keyset-paginated list; and the notification actions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import NotificationStatus, SubscriberStatus
from domain.errors import IllegalTransition, NotFound
from domain.leads.queries import LeadFilters, LeadPage, LeadSort, list_leads
from domain.models import FORM_SUBMISSIONS, NOTIFICATIONS, SUBSCRIBERS, utcnow
from domain.outbox import delivery
from domain.outbox.queries import read_is, status_is
from domain.reporting.stats import crm_stats
from infra.keyset import Keyset, paginate, parse_datetime


class FormView(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    form_type: str
    email: str | None
    name: str | None
    company_name: str | None
    message: str | None
    status: str
    ip_address: str | None
    created_at: datetime


class SubscriberView(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    email: str
    source: str
    status: SubscriberStatus
    subscribed_at: datetime
    unsubscribed_at: datetime | None


class NotificationView(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    type: str
    target_system: str
    priority: str
    read: bool
    read_at: datetime | None
    status: NotificationStatus
    attempts: int
    last_error: str | None
    failed_at: datetime | None
    created_at: datetime
    data: dict[str, Any]


class Page(msgspec.Struct, rename="camel"):
    items: list[Any]
    next_cursor: str | None
    limit: int


def _newest_first(kind: str, created: Any, id_: Any) -> Keyset:
    return Keyset(kind, (created, id_), (parse_datetime, uuid.UUID))


FORMS_KEYSET = _newest_first("forms", FORM_SUBMISSIONS.c.created_at, FORM_SUBMISSIONS.c.id)
SUBSCRIBERS_KEYSET = _newest_first("subscribers", SUBSCRIBERS.c.subscribed_at, SUBSCRIBERS.c.id)
NOTIFICATIONS_KEYSET = _newest_first(
    "notifications", NOTIFICATIONS.c.created_at, NOTIFICATIONS.c.id
)


async def list_forms(
    conn: AsyncConnection,
    limit: int = 20,
    cursor: str | None = None,
    form_type: str | None = None,
) -> Page:
    f = FORM_SUBMISSIONS.c
    stmt = select(FORM_SUBMISSIONS)
    if form_type is not None:
        stmt = stmt.where(f.form_type == form_type)
    rows, nxt = await paginate(conn, stmt, FORMS_KEYSET, limit, cursor)
    items = [
        FormView(
            r.id,
            r.form_type,
            r.data.get("email"),
            r.data.get("name"),
            r.data.get("companyName"),
            r.data.get("message"),
            str(r.status),
            r.ip_address,
            r.created_at,
        )
        for r in rows
    ]
    return Page(items, nxt, limit)


async def list_subscribers(
    conn: AsyncConnection,
    limit: int = 20,
    cursor: str | None = None,
    status: SubscriberStatus | None = None,
) -> Page:
    s = SUBSCRIBERS.c
    stmt = select(SUBSCRIBERS)
    if status is not None:
        stmt = stmt.where(s.status == status)
    rows, nxt = await paginate(conn, stmt, SUBSCRIBERS_KEYSET, limit, cursor)
    items = [
        SubscriberView(
            r.id, r.email, r.source, SubscriberStatus(r.status), r.subscribed_at, r.unsubscribed_at
        )
        for r in rows
    ]
    return Page(items, nxt, limit)


@dataclass(frozen=True, slots=True)
class NotificationFilters:
    status: NotificationStatus | None = None
    target_system: str | None = None
    read: bool | None = None


def _notification_view(r: Any) -> NotificationView:
    return NotificationView(
        r.id,
        str(r.type),
        r.target_system,
        str(r.priority),
        r.read,
        r.read_at,
        NotificationStatus(r.status),
        r.attempts,
        r.last_error,
        r.failed_at,
        r.created_at,
        r.data,
    )


async def list_notifications(
    conn: AsyncConnection,
    limit: int = 20,
    cursor: str | None = None,
    filters: NotificationFilters | None = None,
) -> Page:
    n = NOTIFICATIONS.c
    filters = filters or NotificationFilters()
    stmt = select(NOTIFICATIONS)
    if filters.status is not None:
        stmt = stmt.where(status_is(filters.status))  # a literal: the partial indexes serve it
    if filters.target_system:
        stmt = stmt.where(n.target_system == filters.target_system)
    if filters.read is not None:
        stmt = stmt.where(read_is(filters.read))
    rows, nxt = await paginate(conn, stmt, NOTIFICATIONS_KEYSET, limit, cursor)
    return Page([_notification_view(r) for r in rows], nxt, limit)


async def get_notification(conn: AsyncConnection, notification_id: uuid.UUID) -> NotificationView:
    row = (
        await conn.execute(select(NOTIFICATIONS).where(NOTIFICATIONS.c.id == notification_id))
    ).first()
    if row is None:
        raise NotFound(f"no notification with id {notification_id}", field="id")
    return _notification_view(row)


async def replay_notification(
    conn: AsyncConnection, notification_id: uuid.UUID
) -> NotificationView:
    """Send a dead-lettered notification again; only a FAILED one can be replayed."""
    if not await delivery.replay(conn, [notification_id]):
        current = await get_notification(conn, notification_id)  # 404 when unknown
        raise IllegalTransition(
            f"only a FAILED notification can be replayed; this one is {current.status.value}",
            field="id",
        )
    return await get_notification(conn, notification_id)


class Attempt(msgspec.Struct, rename="camel"):
    attempt_number: int
    started_at: datetime
    duration_ms: float
    http_status: int | None
    error: str | None
    response_body: str | None


async def notification_attempts(conn: AsyncConnection, notification_id: uuid.UUID) -> list[Attempt]:
    await get_notification(conn, notification_id)  # 404 when unknown
    return [
        Attempt(
            a["attempt_number"],
            a["started_at"],
            a["duration_ms"],
            a["http_status"],
            a["error"],
            a["response_body"],
        )
        for a in await delivery.attempts_of(conn, notification_id)
    ]


class CrmSyncStats(msgspec.Struct, rename="camel"):
    total_leads: int
    total_forms: int
    total_subscribers: int
    unread_notifications: int
    conversion_rate: float
    converted_leads: int
    failed_notifications: int
    # When the figures were read: rollups and partial indexes, exact at that moment.
    as_of: datetime


class CrmSync(msgspec.Struct, rename="camel"):
    stats: CrmSyncStats
    leads: list[Any]
    forms: list[Any]
    subscribers: list[Any]
    notifications: list[Any]
    next_cursors: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class CrmSyncCursors:
    leads: str | None = None
    forms: str | None = None
    subscribers: str | None = None
    notifications: str | None = None


async def stats_cards(conn: AsyncConnection) -> CrmSyncStats:
    s = await crm_stats(conn)
    return CrmSyncStats(
        total_leads=s.total_leads,
        total_forms=s.total_forms,
        total_subscribers=s.total_subscribers,
        unread_notifications=s.unread_notifications,
        conversion_rate=s.conversion_rate,
        converted_leads=s.converted_leads,
        failed_notifications=s.failed_notifications,
        as_of=utcnow(),
    )


async def crm_sync(conn: AsyncConnection, limit: int, cursors: CrmSyncCursors) -> CrmSync:
    """The seed's POST /api/admin/crm-sync answer: stats plus the newest of each list."""
    leads: LeadPage = await list_leads(conn, LeadFilters(), LeadSort.NEWEST, limit, cursors.leads)
    forms = await list_forms(conn, limit, cursors.forms)
    subscribers = await list_subscribers(conn, limit, cursors.subscribers)
    notifications = await list_notifications(conn, limit, cursors.notifications)
    return CrmSync(
        stats=await stats_cards(conn),
        leads=leads.items,
        forms=forms.items,
        subscribers=subscribers.items,
        notifications=notifications.items,
        next_cursors={
            "leads": leads.next_cursor,
            "forms": forms.next_cursor,
            "subscribers": subscribers.next_cursor,
            "notifications": notifications.next_cursor,
        },
    )
