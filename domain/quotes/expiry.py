"""Open quotes past their validity become EXPIRED (the beat task's one domain function)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import QuoteStatus
from domain.models import NOTIFICATIONS, QUOTE_EVENTS, QUOTES
from domain.outbox.rows import insert_all
from domain.quotes.lifecycle import SYSTEM, move
from domain.rules import OPEN_QUOTE_STATUSES, Route, check_quote_transition

EXPIRY_BATCH = 200


async def expire_quotes(
    conn: AsyncConnection,
    now: datetime,
    unpriced_after: timedelta,
    routes: Iterable[Route],
    limit: int = EXPIRY_BATCH,
) -> int:
    """Expire up to `limit` open quotes: priced ones whose validUntil has passed, unpriced
    ones created more than `unpriced_after` ago (CRM_QUOTE_EXPIRE_DAYS). Each is a
    STATUS_CHANGED event and a QUOTE_STATUS_CHANGED notification by SYSTEM. Rows another
    transaction holds are skipped (SKIP LOCKED): the next run takes them, and running twice
    expires nothing twice. Answers how many it expired; the caller repeats while it is `limit`."""
    routes = tuple(routes)
    due = await conn.execute(
        select(QUOTES)
        .where(
            QUOTES.c.status.in_(OPEN_QUOTE_STATUSES),
            or_(
                QUOTES.c.valid_until <= now,
                and_(QUOTES.c.valid_until.is_(None), QUOTES.c.created_at <= now - unpriced_after),
            ),
        )
        .order_by(QUOTES.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    expired = 0
    for quote in due.all():
        check_quote_transition(QuoteStatus(quote.status), QuoteStatus.EXPIRED, SYSTEM.actor)
        reason = "validUntil passed" if quote.valid_until is not None else "never priced"
        events, notes = await move(conn, quote, QuoteStatus.EXPIRED, SYSTEM, reason, now, routes)
        await insert_all(conn, [(QUOTE_EVENTS, events), (NOTIFICATIONS, notes)])
        expired += 1
    return expired
