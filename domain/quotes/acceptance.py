"""What an accepted quote does (seed lifecycle "CONVERTED: quote accepted"), in the same
transaction as the acceptance: the Customer becomes ACTIVE and their open leads are converted."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import CustomerStatus
from domain.leads.lifecycle import convert_open_leads
from domain.models import CUSTOMERS
from domain.rules import Route


async def on_accepted(
    conn: AsyncConnection, quote: Any, actor: str, now: datetime, routes: Iterable[Route]
) -> dict[str, Any]:
    """Activate the quote's Customer and convert the open leads with its email (each with its
    LEAD_CONVERTED notification and audit entry); answers what changed, for the quote's
    QUOTE_STATUS_CHANGED payload."""
    customer = (
        await conn.execute(
            select(CUSTOMERS.c.id, CUSTOMERS.c.email, CUSTOMERS.c.status)
            .where(CUSTOMERS.c.id == quote.customer_id)
            .with_for_update()
        )
    ).one()
    before = CustomerStatus(customer.status)
    if before != CustomerStatus.ACTIVE:
        await conn.execute(
            update(CUSTOMERS)
            .where(CUSTOMERS.c.id == customer.id)
            .values(status=CustomerStatus.ACTIVE, updated_at=now)
        )
    via = {"convertedByQuoteId": str(quote.id), "convertedByQuote": quote.reference}
    conversions = await convert_open_leads(conn, customer.email, actor, routes, via)
    return {
        "customerStatus": {"from": before.value, "to": CustomerStatus.ACTIVE.value},
        "convertedLeadIds": [str(c.lead.id) for c in conversions],
    }
