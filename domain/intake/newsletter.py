"""Newsletter subscribe (subscriber + nurture lead + NEWSLETTER_SIGNUP) and unsubscribe."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import LeadStatus, LeadType, NotificationType, SubscriberStatus
from domain.intake.origin import Origin
from domain.models import LEADS, NOTIFICATIONS, SUBSCRIBERS, utcnow
from domain.outbox.rows import insert_all, notification_rows
from domain.rules import NEWSLETTER_LEAD_SCORE, Route
from infra.db import insert_for

NEWSLETTER_SOURCE = "newsletter_signup"


class Subscription(msgspec.Struct, rename="camel"):
    subscriber_id: uuid.UUID
    email: str
    status: SubscriberStatus
    created: bool
    lead_id: uuid.UUID | None = None
    success: bool = True


async def _nurture_lead(conn: AsyncConnection, email: str) -> uuid.UUID | None:
    found = await conn.execute(
        select(LEADS.c.id).where(LEADS.c.email == email, LEADS.c.source == NEWSLETTER_SOURCE)
    )
    return found.scalar()


async def subscribe(
    conn: AsyncConnection, email: str, origin: Origin, routes: Iterable[Route]
) -> Subscription:
    """Idempotent: a second subscribe writes nothing; an unsubscribed address comes back."""
    now = utcnow()
    sub_id = uuid.uuid4()
    inserted = (
        await conn.execute(
            insert_for(conn)(SUBSCRIBERS)
            .values(
                id=sub_id,
                email=email,
                source="B2B_PLATFORM",
                status=SubscriberStatus.SUBSCRIBED,
                subscribed_at=now,
                metadata={"subscribedFrom": "website", "subscribedDate": now.isoformat()},
            )
            .on_conflict_do_nothing(index_elements=["email"])
            .returning(SUBSCRIBERS.c.id)
        )
    ).scalar_one_or_none()
    resubscribed = False
    if inserted is None:
        row = (
            await conn.execute(
                select(SUBSCRIBERS.c.id, SUBSCRIBERS.c.status)
                .where(SUBSCRIBERS.c.email == email)
                .with_for_update()
            )
        ).one()
        sub_id = row.id
        if row.status == SubscriberStatus.SUBSCRIBED:
            lead_id = await _nurture_lead(conn, email)
            return Subscription(
                sub_id, email, SubscriberStatus.SUBSCRIBED, created=False, lead_id=lead_id
            )
        await conn.execute(
            update(SUBSCRIBERS)
            .where(SUBSCRIBERS.c.id == sub_id)
            .values(status=SubscriberStatus.SUBSCRIBED, subscribed_at=now, unsubscribed_at=None)
        )
        resubscribed = True

    lead_id = await _nurture_lead(conn, email)
    lead_rows = []
    if lead_id is None:
        lead_id = uuid.uuid4()
        lead_rows.append(
            {
                "id": lead_id,
                "email": email,
                "type": LeadType.LEAD,
                "source": NEWSLETTER_SOURCE,
                "status": LeadStatus.NEW,
                "lead_score": NEWSLETTER_LEAD_SCORE,
                "metadata": {"source": NEWSLETTER_SOURCE, "subscriberId": str(sub_id)},
                "created_at": now,
                "updated_at": now,
            }
        )
    data = {
        "subscriberId": str(sub_id),
        "leadId": str(lead_id),
        "email": email,
        "leadScore": NEWSLETTER_LEAD_SCORE,
        "resubscribed": resubscribed,
        "subscribedAt": now.isoformat(),
        "ipAddress": origin.ip_address,
        "userAgent": origin.user_agent,
    }
    notes = notification_rows(
        NotificationType.NEWSLETTER_SIGNUP, data, routes, now, request_id=origin.request_id
    )
    await insert_all(conn, [(LEADS, lead_rows), (NOTIFICATIONS, notes)])
    return Subscription(sub_id, email, SubscriberStatus.SUBSCRIBED, created=True, lead_id=lead_id)


class Unsubscription(msgspec.Struct, rename="camel"):
    email: str
    status: SubscriberStatus
    success: bool = True


async def unsubscribe(conn: AsyncConnection, email: str) -> Unsubscription:
    """Answers the same whether or not the address was on the list (no address probing)."""
    await conn.execute(
        update(SUBSCRIBERS)
        .where(SUBSCRIBERS.c.email == email, SUBSCRIBERS.c.status == SubscriberStatus.SUBSCRIBED)
        .values(status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=utcnow())
    )
    return Unsubscription(email, SubscriberStatus.UNSUBSCRIBED)
