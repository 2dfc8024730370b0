"""User <-> Customer links (seed section 9: "externalId: link to User if exists").

Every path that makes or adopts a Customer links the account with that email
(`ensure_customer` calls `link_user`). A signup whose Customer write failed (the seed lets the
signup continue) leaves a customer account without a Customer: `repair_links` finds those and
links or creates their Customer, as the signup would have (`crm customers repair-links`, and
a daily beat task).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import CustomerSource, CustomerStatus, NotificationType, UserRole
from domain.models import CUSTOMERS, NOTIFICATIONS, USERS, utcnow
from domain.outbox.rows import insert_all, notification_rows
from domain.rules import Route


async def user_id_for(conn: AsyncConnection, email: str) -> uuid.UUID | None:
    return (
        await conn.execute(select(USERS.c.id).where(USERS.c.email == email))
    ).scalar_one_or_none()


async def link_user(conn: AsyncConnection, customer_id: uuid.UUID, email: str) -> str | None:
    """Link the Customer to the account with its email, if it has none and that account is
    not already linked to another Customer (external_id is unique). The id linked, or None."""
    user_id = await user_id_for(conn, email)
    if user_id is None:
        return None
    other = CUSTOMERS.alias("other")
    linked = await conn.execute(
        update(CUSTOMERS)
        .where(
            CUSTOMERS.c.id == customer_id,
            CUSTOMERS.c.external_id.is_(None),
            ~exists().where(other.c.external_id == str(user_id)),
        )
        .values(external_id=str(user_id), updated_at=utcnow())
    )
    return str(user_id) if linked.rowcount else None


@dataclass(frozen=True, slots=True)
class Repaired:
    user_id: uuid.UUID
    email: str
    customer_id: uuid.UUID
    action: str  # "linked" (an existing Customer) or "created"


async def repair_links(
    conn: AsyncConnection, routes: Iterable[Route], now: datetime | None = None
) -> list[Repaired]:
    """Link or create the Customer of every customer account that has none; idempotent."""
    from domain.customers.ensure import NewCustomer, ensure_customer

    now = now or utcnow()
    missing = await conn.execute(
        select(
            USERS.c.id,
            USERS.c.email,
            USERS.c.first_name,
            USERS.c.last_name,
            USERS.c.company_name,
            CUSTOMERS.c.id.label("customer_id"),
        )
        .select_from(USERS.outerjoin(CUSTOMERS, CUSTOMERS.c.email == USERS.c.email))
        .where(USERS.c.role == UserRole.CUSTOMER, CUSTOMERS.c.external_id.is_(None))
        .order_by(USERS.c.created_at, USERS.c.id)
    )
    report: list[Repaired] = []
    for user in missing.all():
        name = " ".join(p for p in (user.first_name, user.last_name) if p) or None
        if user.customer_id is not None:  # a Customer with this email, not linked
            if await link_user(conn, user.customer_id, user.email) is None:
                continue  # that account is linked to another Customer already
            customer_id, action = user.customer_id, "linked"
        else:
            customer = await ensure_customer(
                conn,
                NewCustomer(
                    email=user.email,
                    name=name,
                    company_name=user.company_name,
                    source=CustomerSource.B2B_PLATFORM,
                    status=CustomerStatus.ACTIVE,
                    metadata={"registeredVia": "b2b-website", "linkRepairedAt": now.isoformat()},
                    external_id=str(user.id),
                ),
                now=now,
            )
            customer_id, action = customer.id, "created" if customer.created else "linked"
        data = {
            "customerId": str(customer_id),
            "userId": str(user.id),
            "email": user.email,
            "name": name,
            "companyName": user.company_name,
            "linkedExisting": action == "linked",
            "repaired": True,
            "registeredAt": now.isoformat(),
        }
        notes = notification_rows(NotificationType.NEW_CUSTOMER, data, routes, now)
        await insert_all(conn, [(NOTIFICATIONS, notes)])
        report.append(Repaired(user.id, user.email, customer_id, action))
    return report
