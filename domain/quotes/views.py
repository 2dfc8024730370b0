"""Reading quotes: the staff list and page, a customer's own quotes, and who may see which.

A customer sees the quotes of the Customer linked to their account (`external_id` is their user
id) or carrying their email; any other quote is "not found" to them, never "forbidden", so ids
cannot be probed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import MessageSender, QuoteActor, QuoteEventType, QuoteStatus
from domain.errors import NotFound
from domain.models import CUSTOMERS, NEGOTIATION_MESSAGES, QUOTE_EVENTS, QUOTE_LINES, QUOTES
from domain.rules import allowed_quote_moves
from infra.keyset import Keyset, paginate, parse_datetime


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who acts on a quote: staff (by email) or a signed-in customer (user id and email)."""

    actor: QuoteActor
    email: str
    user_id: uuid.UUID | None = None

    @property
    def is_customer(self) -> bool:
        return self.actor == QuoteActor.CUSTOMER


def owned_by(viewer: Viewer) -> ColumnElement[bool]:
    """Quotes whose Customer is linked to this user or has this user's email."""
    mine = select(CUSTOMERS.c.id).where(
        or_(CUSTOMERS.c.external_id == str(viewer.user_id), CUSTOMERS.c.email == viewer.email)
    )
    return QUOTES.c.customer_id.in_(mine.scalar_subquery())


class LineView(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    position: int
    sku: str
    name: str | None
    quantity: int
    unit: str | None
    unit_price: Decimal | None
    line_total: Decimal | None


class EventView(msgspec.Struct, rename="camel"):
    type: QuoteEventType
    data: dict[str, Any] | None
    actor: str | None
    created_at: datetime


class MessageView(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    sender: MessageSender
    sender_id: str | None
    body: str
    created_at: datetime


class QuoteView(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    reference: str
    status: QuoteStatus
    customer_id: uuid.UUID
    email: str
    name: str | None
    company_name: str | None
    message: str | None
    currency: str | None
    valid_until: datetime | None
    priced_at: datetime | None
    total: Decimal | None
    line_count: int
    created_at: datetime
    updated_at: datetime
    allowed_statuses: list[QuoteStatus]


class QuoteDetail(QuoteView, kw_only=True):
    lines: list[LineView]
    events: list[EventView]
    messages: list[MessageView]


class QuotePage(msgspec.Struct, rename="camel"):
    items: list[QuoteView]
    next_cursor: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class QuoteFilters:
    status: QuoteStatus | None = None
    customer_id: uuid.UUID | None = None

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        if self.status is not None:
            stmt = stmt.where(QUOTES.c.status == self.status)
        if self.customer_id is not None:
            stmt = stmt.where(QUOTES.c.customer_id == self.customer_id)
        return stmt


KEYSET = Keyset("quotes:newest", (QUOTES.c.created_at, QUOTES.c.id), (parse_datetime, uuid.UUID))
# Per quote: how many lines, and the total once every line has a price.
_TOTALS = (
    select(
        QUOTE_LINES.c.quote_id,
        func.count().label("line_count"),
        func.count(QUOTE_LINES.c.unit_price).label("priced_count"),
        func.sum(QUOTE_LINES.c.unit_price * QUOTE_LINES.c.quantity).label("total"),
    )
    .group_by(QUOTE_LINES.c.quote_id)
    .subquery()
)
_COLUMNS = (
    QUOTES.c.id,
    QUOTES.c.reference,
    QUOTES.c.status,
    QUOTES.c.customer_id,
    QUOTES.c.email,
    QUOTES.c.name,
    QUOTES.c.company_name,
    QUOTES.c.message,
    QUOTES.c.currency,
    QUOTES.c.valid_until,
    QUOTES.c.priced_at,
    QUOTES.c.created_at,
    QUOTES.c.updated_at,
    func.coalesce(_TOTALS.c.line_count, 0).label("line_count"),
    _TOTALS.c.priced_count,
    _TOTALS.c.total,
)


def _select() -> Select[Any]:
    return select(*_COLUMNS).outerjoin(_TOTALS, _TOTALS.c.quote_id == QUOTES.c.id)


def quote_view(row: Any, viewer: Viewer) -> QuoteView:
    status = QuoteStatus(row.status)
    priced = row.line_count > 0 and row.priced_count == row.line_count
    return QuoteView(
        id=row.id,
        reference=row.reference,
        status=status,
        customer_id=row.customer_id,
        email=row.email,
        name=row.name,
        company_name=row.company_name,
        message=row.message,
        currency=row.currency,
        valid_until=row.valid_until,
        priced_at=row.priced_at,
        total=row.total if priced else None,
        line_count=row.line_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
        allowed_statuses=list(allowed_quote_moves(status, viewer.actor)),
    )


async def list_quotes(
    conn: AsyncConnection,
    viewer: Viewer,
    filters: QuoteFilters,
    limit: int = 20,
    cursor: str | None = None,
) -> QuotePage:
    """Newest first, keyset-paginated; a customer's list holds only their own quotes."""
    stmt = filters.apply(_select())
    if viewer.is_customer:
        stmt = stmt.where(owned_by(viewer))
    rows, next_cursor = await paginate(conn, stmt, KEYSET, limit, cursor)
    return QuotePage([quote_view(r, viewer) for r in rows], next_cursor, limit)


async def visible_quote(conn: AsyncConnection, quote_id: uuid.UUID, viewer: Viewer) -> Any:
    """The quote row, or NotFound (also for another customer's quote)."""
    stmt = _select().where(QUOTES.c.id == quote_id)
    if viewer.is_customer:
        stmt = stmt.where(owned_by(viewer))
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"no quote with id {quote_id}", field="id")
    return row


async def quote_lines(conn: AsyncConnection, quote_id: uuid.UUID) -> list[Any]:
    stmt = select(QUOTE_LINES).where(QUOTE_LINES.c.quote_id == quote_id)
    return list((await conn.execute(stmt.order_by(QUOTE_LINES.c.position))).all())


def line_view(row: Any) -> LineView:
    price = row.unit_price
    return LineView(
        id=row.id,
        position=row.position,
        sku=row.sku,
        name=row.name,
        quantity=row.quantity,
        unit=row.unit,
        unit_price=price,
        line_total=None if price is None else price * row.quantity,
    )


async def get_quote(conn: AsyncConnection, quote_id: uuid.UUID, viewer: Viewer) -> QuoteDetail:
    """One quote with its lines, status history and message thread.

    Customers see who acted by role only: staff emails stay internal."""
    view = quote_view(await visible_quote(conn, quote_id, viewer), viewer)
    lines = [line_view(r) for r in await quote_lines(conn, quote_id)]
    events = await conn.execute(
        select(QUOTE_EVENTS)
        .where(QUOTE_EVENTS.c.quote_id == quote_id)
        .order_by(QUOTE_EVENTS.c.created_at, QUOTE_EVENTS.c.id)
    )
    messages = await conn.execute(
        select(NEGOTIATION_MESSAGES)
        .where(NEGOTIATION_MESSAGES.c.quote_id == quote_id)
        .order_by(NEGOTIATION_MESSAGES.c.created_at, NEGOTIATION_MESSAGES.c.id)
    )
    hide = viewer.is_customer
    return QuoteDetail(
        **{f: getattr(view, f) for f in view.__struct_fields__},
        lines=lines,
        events=[
            EventView(QuoteEventType(e.type), e.data, None if hide else e.actor, e.created_at)
            for e in events
        ],
        messages=[
            MessageView(
                m.id,
                MessageSender(m.sender),
                None if hide else m.sender_id,
                m.body,
                m.created_at,
            )
            for m in messages
        ],
    )
