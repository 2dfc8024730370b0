"""Quote use cases: price, message, move (staff by hand, the customer's accept or reject).

Each runs inside the caller's transaction with the quote row locked, checks everything before
it writes, and writes the quote's changes, its `quote_events` rows and its outbox rows together:
every status move is a STATUS_CHANGED event and a QUOTE_STATUS_CHANGED notification, every
message a `negotiation_messages` row, a MESSAGE event and a QUOTE_MESSAGE notification.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import MessageSender, NotificationType, QuoteActor, QuoteEventType, QuoteStatus
from domain.errors import DomainError, IllegalTransition, NotFound
from domain.models import (
    NEGOTIATION_MESSAGES,
    NOTIFICATIONS,
    QUOTE_EVENTS,
    QUOTE_LINES,
    QUOTES,
    utcnow,
)
from domain.outbox.rows import Rows, insert_all, notification_rows
from domain.quotes.acceptance import on_accepted
from domain.quotes.commands import (
    MAX_UNIT_PRICE,
    PRICE_PLACES,
    Decision,
    MoveQuote,
    PostMessage,
    PriceQuote,
)
from domain.quotes.views import QuoteDetail, Viewer, get_quote, owned_by, quote_lines
from domain.rules import (
    OPEN_QUOTE_STATUSES,
    QUOTE_MESSAGE_MOVES,
    Route,
    check_quote_transition,
)

SYSTEM = Viewer(QuoteActor.SYSTEM, "system")
_TICK = timedelta(microseconds=1)  # events of one action keep their order when read back


async def locked_quote(conn: AsyncConnection, quote_id: uuid.UUID, viewer: Viewer) -> Any:
    """The quote row, locked for this transaction; NotFound also for another customer's."""
    stmt = select(QUOTES).where(QUOTES.c.id == quote_id)
    if viewer.is_customer:
        stmt = stmt.where(owned_by(viewer))
    row = (await conn.execute(stmt.with_for_update(of=QUOTES))).first()
    if row is None:
        raise NotFound(f"no quote with id {quote_id}", field="id")
    return row


def _price_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _total(lines: Sequence[Any]) -> Decimal | None:
    if not lines or any(ln.unit_price is None for ln in lines):
        return None
    return sum((ln.unit_price * ln.quantity for ln in lines), Decimal(0))


def quote_data(quote: Any, lines: Sequence[Any], **extra: object) -> dict[str, Any]:
    """The notification payload describing a quote (prices as decimal strings)."""
    valid_until = quote.valid_until
    return {
        "quoteId": str(quote.id),
        "reference": quote.reference,
        "customerId": str(quote.customer_id),
        "email": quote.email,
        "name": quote.name,
        "companyName": quote.company_name,
        "status": str(quote.status),
        "currency": quote.currency,
        "validUntil": valid_until.isoformat() if valid_until else None,
        "total": _price_text(_total(lines)),
        "lines": [
            {
                "id": str(ln.id),
                "sku": ln.sku,
                "name": ln.name,
                "quantity": ln.quantity,
                "unit": ln.unit,
                "unitPrice": _price_text(ln.unit_price),
            }
            for ln in lines
        ],
        **extra,
    }


def _event(
    quote_id: uuid.UUID, type_: QuoteEventType, data: dict[str, Any], actor: str, at: datetime
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "quote_id": quote_id,
        "type": type_,
        "data": data,
        "actor": actor,
        "created_at": at,
    }


async def move(
    conn: AsyncConnection,
    quote: Any,
    target: QuoteStatus,
    viewer: Viewer,
    reason: str | None,
    now: datetime,
    routes: Iterable[Route],
    changes: dict[str, Any] | None = None,
) -> tuple[Rows, Rows]:
    """Move a locked quote (already checked) to `target`: the update, and the event and outbox
    rows to insert. `changes` are further quote columns written with the move (prices)."""
    before = QuoteStatus(quote.status)
    await conn.execute(
        update(QUOTES)
        .where(QUOTES.c.id == quote.id)
        .values(status=target, updated_at=now, **(changes or {}))
    )
    moved = {**quote._mapping, **(changes or {}), "status": target}
    extra: dict[str, Any] = {}
    if target == QuoteStatus.ACCEPTED:
        extra = await on_accepted(conn, quote, viewer.email, now, routes)
    event = _event(
        quote.id,
        QuoteEventType.STATUS_CHANGED,
        {"from": before.value, "to": target.value, "reason": reason, "by": viewer.actor.value},
        viewer.email,
        now,
    )
    lines = await quote_lines(conn, quote.id)
    data = quote_data(
        _Row(moved),
        lines,
        **{"from": before.value, "to": target.value},
        reason=reason,
        changedBy=viewer.actor.value,
        changedByEmail=viewer.email if viewer.actor != QuoteActor.SYSTEM else None,
        changedAt=now.isoformat(),
        **extra,
    )
    notes = notification_rows(NotificationType.QUOTE_STATUS_CHANGED, data, routes, now)
    return [event], notes


class _Row:
    """A mapping read like a database row (a quote as it is after a change)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _check_still_valid(quote: Any, target: QuoteStatus, now: datetime) -> None:
    """An offer past its validUntil can no longer be accepted or stood by: it expires."""
    if target in (QuoteStatus.ACCEPTED, QuoteStatus.QUOTED) and (
        quote.valid_until is not None and quote.valid_until <= now
    ):
        raise IllegalTransition(
            f"the offer ran out at {quote.valid_until.isoformat()}; allowed: "
            f"{'price it again' if target == QuoteStatus.QUOTED else 'none (it expires)'}"
        )


def _checked_prices(cmd: PriceQuote, lines: Sequence[Any], now: datetime) -> dict[uuid.UUID, Any]:
    """Each line's unit price after this pricing; a 400 naming the field at fault."""
    if cmd.valid_until <= now:
        raise DomainError("validUntil must be in the future", field="validUntil")
    prices: dict[uuid.UUID, Any] = {ln.id: ln.unit_price for ln in lines}
    seen: set[uuid.UUID] = set()
    for i, line in enumerate(cmd.lines):
        if line.id not in prices:
            raise DomainError("not a line of this quote", field=f"lines[{i}].id")
        if line.id in seen:
            raise DomainError("this line is priced twice", field=f"lines[{i}].id")
        seen.add(line.id)
        price = line.unit_price
        exponent = price.as_tuple().exponent
        if (
            not price.is_finite()
            or not isinstance(exponent, int)
            or price < 0
            or price > MAX_UNIT_PRICE
            or -exponent > PRICE_PLACES
        ):
            raise DomainError(
                f"unitPrice must be a number from 0 to {MAX_UNIT_PRICE}"
                f" with at most {PRICE_PLACES} decimal places",
                field=f"lines[{i}].unitPrice",
            )
        prices[line.id] = price
    unpriced = [ln.sku for ln in lines if prices[ln.id] is None]
    if unpriced:
        raise DomainError(
            f"every line needs a unit price; unpriced: {', '.join(unpriced)}", "lines"
        )
    return prices


async def price_quote(
    conn: AsyncConnection,
    quote_id: uuid.UUID,
    cmd: PriceQuote,
    viewer: Viewer,
    routes: Iterable[Route],
) -> QuoteDetail:
    """Staff price the lines (SUBMITTED or NEGOTIATING -> QUOTED): unit prices, currency,
    validUntil; a PRICED event with the prices, then the move."""
    quote = await locked_quote(conn, quote_id, viewer)
    check_quote_transition(QuoteStatus(quote.status), QuoteStatus.QUOTED, viewer.actor)
    now = utcnow()
    lines = await quote_lines(conn, quote_id)
    prices = _checked_prices(cmd, lines, now)
    changed = [{"line_id": i, "price": p} for i, p in prices.items()]
    await conn.execute(
        update(QUOTE_LINES)
        .where(QUOTE_LINES.c.id == bindparam("line_id"))
        .values(unit_price=bindparam("price")),
        changed,
    )
    priced = _event(
        quote_id,
        QuoteEventType.PRICED,
        {
            "currency": cmd.currency,
            "validUntil": cmd.valid_until.isoformat(),
            "lines": [{"id": str(i), "unitPrice": str(p)} for i, p in prices.items()],
        },
        viewer.email,
        now,
    )
    events, notes = await move(
        conn,
        quote,
        QuoteStatus.QUOTED,
        viewer,
        None,
        now + _TICK,
        routes,
        {"currency": cmd.currency, "valid_until": cmd.valid_until, "priced_at": now},
    )
    await insert_all(conn, [(QUOTE_EVENTS, [priced, *events]), (NOTIFICATIONS, notes)])
    return await get_quote(conn, quote_id, viewer)


async def post_message(
    conn: AsyncConnection,
    quote_id: uuid.UUID,
    cmd: PostMessage,
    viewer: Viewer,
    routes: Iterable[Route],
) -> QuoteDetail:
    """A message in the quote's thread; the customer's on a QUOTED quote opens a negotiation."""
    quote = await locked_quote(conn, quote_id, viewer)
    status = QuoteStatus(quote.status)
    if status not in OPEN_QUOTE_STATUSES:
        raise IllegalTransition(f"a {status.value} quote is closed: it takes no more messages")
    now = utcnow()
    sender = MessageSender.CUSTOMER if viewer.is_customer else MessageSender.SALES
    message = {
        "id": uuid.uuid4(),
        "quote_id": quote_id,
        "sender": sender,
        "sender_id": str(viewer.user_id) if viewer.user_id else None,
        "body": cmd.body,
        "created_at": now,
    }
    event = _event(
        quote_id,
        QuoteEventType.MESSAGE,
        {"messageId": str(message["id"]), "sender": sender.value},
        viewer.email,
        now,
    )
    lines = await quote_lines(conn, quote_id)
    data = quote_data(
        quote,
        lines,
        messageId=str(message["id"]),
        sender=sender.value,
        senderEmail=viewer.email,
        body=cmd.body,
        sentAt=now.isoformat(),
    )
    notes = notification_rows(NotificationType.QUOTE_MESSAGE, data, routes, now)
    events = [event]
    target = QUOTE_MESSAGE_MOVES.get((viewer.actor, status))
    if target is not None:
        check_quote_transition(status, target, viewer.actor)
        moved_events, moved_notes = await move(
            conn, quote, target, viewer, "message", now + _TICK, routes
        )
        events += moved_events
        notes += moved_notes
    await insert_all(
        conn,
        [(NEGOTIATION_MESSAGES, [message]), (QUOTE_EVENTS, events), (NOTIFICATIONS, notes)],
    )
    return await get_quote(conn, quote_id, viewer)


async def move_quote(
    conn: AsyncConnection,
    quote_id: uuid.UUID,
    cmd: MoveQuote | Decision,
    target: QuoteStatus,
    viewer: Viewer,
    routes: Iterable[Route],
) -> QuoteDetail:
    """A move by hand: staff's status change, or the customer's accept or reject.

    Back to QUOTED by hand keeps the standing prices, so it needs them still valid; pricing
    anew is `price_quote`. Accepting needs the offer still valid."""
    quote = await locked_quote(conn, quote_id, viewer)
    status = QuoteStatus(quote.status)
    check_quote_transition(status, target, viewer.actor)
    now = utcnow()
    if target == QuoteStatus.QUOTED and quote.priced_at is None:
        raise IllegalTransition("this quote has no prices yet; allowed: price it")
    _check_still_valid(quote, target, now)
    events, notes = await move(conn, quote, target, viewer, cmd.reason, now, routes)
    await insert_all(conn, [(QUOTE_EVENTS, events), (NOTIFICATIONS, notes)])
    return await get_quote(conn, quote_id, viewer)
