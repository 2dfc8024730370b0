"""POST /api/auth/register: a User, and a linked Customer that never blocks the signup."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.accounts.passwords import check_new_password, hash_password
from domain.customers import Adopt, NewCustomer, ensure_customer
from domain.enums import CustomerSource, CustomerStatus, NotificationType, UserRole
from domain.errors import DuplicateEmail
from domain.intake.commands import Register
from domain.intake.origin import Origin
from domain.models import NOTIFICATIONS, USERS, utcnow
from domain.outbox.rows import insert_all, notification_rows
from domain.rules import Route, split_name

log = logging.getLogger(__name__)


class RegisteredUser(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    email: str
    name: str
    company: str | None
    role: UserRole


class Registered(msgspec.Struct, rename="camel"):
    user: RegisteredUser
    customer_id: uuid.UUID | None
    customer_linked: bool
    success: bool = True


async def register(
    conn: AsyncConnection, cmd: Register, origin: Origin, routes: Iterable[Route]
) -> Registered:
    check_new_password(cmd.password)
    taken = await conn.execute(select(USERS.c.id).where(USERS.c.email == cmd.email))
    if taken.first() is not None:
        raise DuplicateEmail("an account with this email already exists")
    now = utcnow()
    user_id = uuid.uuid4()
    first, last = split_name(cmd.name)
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(USERS).values(
                    id=user_id,
                    email=cmd.email,
                    password_hash=await hash_password(cmd.password),
                    first_name=first,
                    last_name=last,
                    company_name=cmd.company,
                    role=UserRole.CUSTOMER,
                    is_active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError as exc:  # a concurrent signup with the same email won the race
        raise DuplicateEmail("an account with this email already exists") from exc

    customer_id: uuid.UUID | None = None
    linked = False
    try:
        async with conn.begin_nested():  # CRM never blocks signup: a failure stays in here
            customer_id, linked = await _attach_customer(conn, cmd, user_id, origin, routes)
    except Exception:
        log.exception("customer record for new user %s failed; signup continues", user_id)
        customer_id, linked = None, False
    user = RegisteredUser(user_id, cmd.email, cmd.name, cmd.company, UserRole.CUSTOMER)
    return Registered(user, customer_id, linked)


async def _attach_customer(
    conn: AsyncConnection,
    cmd: Register,
    user_id: uuid.UUID,
    origin: Origin,
    routes: Iterable[Route],
) -> tuple[uuid.UUID, bool]:
    """Link the Customer that already has this email (import, conversion) or create one."""
    now = utcnow()
    customer = await ensure_customer(
        conn,
        NewCustomer(
            email=cmd.email,
            name=cmd.name,
            company_name=cmd.company,
            source=CustomerSource.B2B_PLATFORM,
            status=CustomerStatus.ACTIVE,
            metadata={"registeredVia": "b2b-website", "registrationDate": now.isoformat()},
            external_id=str(user_id),
        ),
        Adopt(status=CustomerStatus.ACTIVE, external_id=str(user_id)),
        now,
    )
    linked = not customer.created
    data = {
        "customerId": str(customer.id),
        "userId": str(user_id),
        "email": cmd.email,
        "name": cmd.name,
        "companyName": cmd.company,
        "linkedExisting": linked,
        "registeredAt": now.isoformat(),
        "ipAddress": origin.ip_address,
        "userAgent": origin.user_agent,
    }
    notes = notification_rows(
        NotificationType.NEW_CUSTOMER, data, routes, now, request_id=origin.request_id
    )
    await insert_all(conn, [(NOTIFICATIONS, notes)])
    return customer.id, linked
