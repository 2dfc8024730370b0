"""Customers: the one way a use case finds or creates the Customer behind an email.

Registration, RFQ submission and lead conversion all need "the Customer with this email, or a
new one"; they differ only in what the new row looks like (`NewCustomer`) and in what happens to
a Customer that already exists (`Adopt`). The email is unique, so the insert is
`ON CONFLICT (email) DO NOTHING` and two concurrent callers end up on the same row.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.customers.links import link_user
from domain.enums import CustomerSource, CustomerStatus, CustomerType
from domain.models import CUSTOMERS, utcnow
from domain.rules import split_name
from infra.db import insert_for

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCustomer:
    """The row to create when no Customer has this email yet."""

    email: str
    name: str | None
    company_name: str | None
    source: CustomerSource
    status: CustomerStatus
    metadata: dict[str, Any]
    phone: str | None = None
    external_id: str | None = None
    customer_type: CustomerType = CustomerType.RETAILER


@dataclass(frozen=True, slots=True, kw_only=True)
class Adopt:
    """What a caller does to a Customer that already has the email.

    `status` is set and `metadata` merged into the row's. With `external_id`, the row is linked
    to it only if it is not linked yet; a row already linked to someone else is left as it is
    (logged), since one Customer cannot belong to two accounts.
    """

    status: CustomerStatus
    metadata: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class EnsuredCustomer:
    id: uuid.UUID
    created: bool


async def ensure_customer(
    conn: AsyncConnection,
    new: NewCustomer,
    adopt: Adopt | None = None,
    now: datetime | None = None,
) -> EnsuredCustomer:
    """The Customer with `new.email`: created from `new`, or the existing one, adopted if asked.

    Without `adopt` an existing Customer is not touched (an RFQ from a known buyer), except
    that a Customer without a user link is linked to the account with its email, if any (as
    is every Customer created here without an `external_id`).
    """
    now = now or utcnow()
    first, last = split_name(new.name)
    created_id = (
        await conn.execute(
            insert_for(conn)(CUSTOMERS)
            .values(
                id=uuid.uuid4(),
                external_id=new.external_id,
                email=new.email,
                first_name=first,
                last_name=last,
                company_name=new.company_name,
                phone=new.phone,
                source=new.source.value,
                customer_type=new.customer_type,
                status=new.status,
                metadata=new.metadata,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["email"])
            .returning(CUSTOMERS.c.id)
        )
    ).scalar_one_or_none()
    if created_id is not None:
        if new.external_id is None:
            await link_user(conn, created_id, new.email)
        return EnsuredCustomer(created_id, created=True)
    existing = (
        await conn.execute(
            select(CUSTOMERS.c.id, CUSTOMERS.c.external_id, CUSTOMERS.c.metadata)
            .where(CUSTOMERS.c.email == new.email)
            .with_for_update()
        )
    ).one()
    if adopt is not None:
        await _adopt(conn, existing, adopt, now)
    if existing.external_id is None and (adopt is None or adopt.external_id is None):
        await link_user(conn, existing.id, new.email)
    return EnsuredCustomer(existing.id, created=False)


async def _adopt(conn: AsyncConnection, existing: Any, adopt: Adopt, now: datetime) -> None:
    values: dict[str, Any] = {"status": adopt.status, "updated_at": now}
    if adopt.external_id is not None:
        if existing.external_id is not None:
            log.warning("customer %s is already linked to %s", existing.id, existing.external_id)
            return
        values["external_id"] = adopt.external_id
    if adopt.metadata:
        values["metadata"] = {**(existing.metadata or {}), **adopt.metadata}
    await conn.execute(update(CUSTOMERS).where(CUSTOMERS.c.id == existing.id).values(**values))
