"""POST /api/v1/rfq/submit: Quote + lines + CREATED event + QUOTE_REQUEST notification."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.customers import NewCustomer, ensure_customer
from domain.enums import (
    CustomerSource,
    CustomerStatus,
    NotificationType,
    QuoteEventType,
    QuoteStatus,
)
from domain.intake.commands import SubmitRfq
from domain.intake.origin import Origin
from domain.models import (
    NOTIFICATIONS,
    QUOTE_EVENTS,
    QUOTE_LINES,
    QUOTES,
    USERS,
    utcnow,
)
from domain.outbox.rows import insert_all, notification_rows
from domain.rules import Route


class QuoteSubmitted(msgspec.Struct, rename="camel"):
    quote_id: uuid.UUID
    reference: str
    customer_id: uuid.UUID
    notification_ids: list[uuid.UUID]
    status: QuoteStatus = QuoteStatus.SUBMITTED
    success: bool = True


def quote_reference() -> str:
    return f"RFQ-{utcnow():%Y%m%d}-{secrets.token_hex(4).upper()}"


async def submit_rfq(
    conn: AsyncConnection, cmd: SubmitRfq, origin: Origin, routes: Iterable[Route]
) -> QuoteSubmitted:
    now = utcnow()
    customer = await ensure_customer(
        conn,
        NewCustomer(
            email=cmd.email,
            name=cmd.name,
            company_name=cmd.company_name,
            phone=cmd.phone,
            source=CustomerSource.RFQ,
            status=CustomerStatus.PROSPECT,
            metadata={"createdFrom": "rfq", "firstRfqAt": now.isoformat()},
        ),
        now=now,
    )  # a known buyer's Customer is left as it is
    customer_id = customer.id
    user_id = (
        await conn.execute(select(USERS.c.id).where(USERS.c.email == cmd.email))
    ).scalar_one_or_none()
    quote_id, reference = uuid.uuid4(), quote_reference()
    lines = [
        {
            "id": uuid.uuid4(),
            "quote_id": quote_id,
            "position": i,
            "sku": line.sku.strip(),
            "name": line.name,
            "quantity": line.quantity,
            "unit": line.unit,
        }
        for i, line in enumerate(cmd.lines, start=1)
    ]
    quote = {
        "id": quote_id,
        "reference": reference,
        "customer_id": customer_id,
        "user_id": user_id,
        "status": QuoteStatus.SUBMITTED,
        "email": cmd.email,
        "name": cmd.name,
        "company_name": cmd.company_name,
        "phone": cmd.phone,
        "message": cmd.message,
        "metadata": {"ipAddress": origin.ip_address, "userAgent": origin.user_agent},
        "created_at": now,
        "updated_at": now,
    }
    event = {
        "id": uuid.uuid4(),
        "quote_id": quote_id,
        "type": QuoteEventType.CREATED,
        "data": {"lineCount": len(lines)},
        "actor": cmd.email,
        "created_at": now,
    }
    data = {
        "quoteId": str(quote_id),
        "reference": reference,
        "customerId": str(customer_id),
        "email": cmd.email,
        "name": cmd.name,
        "companyName": cmd.company_name,
        "phone": cmd.phone,
        "message": cmd.message,
        "lines": [
            {"sku": ln["sku"], "name": ln["name"], "quantity": ln["quantity"], "unit": ln["unit"]}
            for ln in lines
        ],
        "submittedAt": now.isoformat(),
        "ipAddress": origin.ip_address,
        "userAgent": origin.user_agent,
    }
    notes = notification_rows(
        NotificationType.QUOTE_REQUEST, data, routes, now, request_id=origin.request_id
    )
    await insert_all(
        conn,
        [
            (QUOTES, [quote]),
            (QUOTE_LINES, lines),
            (QUOTE_EVENTS, [event]),
            (NOTIFICATIONS, notes),
        ],
    )
    return QuoteSubmitted(quote_id, reference, customer_id, [n["id"] for n in notes])
