"""Staff accounts: creating an admin, checking a password, loading the user of a session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.accounts.passwords import check_new_password, hash_password, verify_password
from domain.enums import UserRole
from domain.errors import DomainError, DuplicateEmail
from domain.intake.commands import normalize_email
from domain.models import USERS, utcnow
from domain.rules import split_name

# Verified when the email is unknown, so a wrong email costs as much time as a wrong password.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$K9v5JbZhC1htI+wctsUbgQ$z4tC/qIy//NHSAHyRnTzxb6F4EixSRdIJ5hClBTRceM"


@dataclass(frozen=True, slots=True)
class SessionUser:
    """Who is signed in: what guards and the audit trail need, never the password hash."""

    id: uuid.UUID
    email: str
    role: UserRole
    name: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == UserRole.ADMIN

    @property
    def is_staff(self) -> bool:
        """Admins and sales staff: they work leads, customers and quotes."""
        return self.role in (UserRole.ADMIN, UserRole.SALES)


def _session_user(row: object) -> SessionUser:
    first, last = getattr(row, "first_name", None), getattr(row, "last_name", None)
    name = " ".join(p for p in (first, last) if p) or None
    return SessionUser(row.id, row.email, UserRole(row.role), name)  # type: ignore[attr-defined]


async def create_admin(
    conn: AsyncConnection, email: str, password: str, name: str | None = None
) -> SessionUser:
    email = normalize_email(email)
    if "@" not in email:
        raise DomainError("not an email address", field="email")
    check_new_password(password)
    now = utcnow()
    first, last = split_name(name)
    user_id = uuid.uuid4()
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(USERS).values(
                    id=user_id,
                    email=email,
                    password_hash=await hash_password(password),
                    first_name=first,
                    last_name=last,
                    role=UserRole.ADMIN,
                    is_active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError as exc:
        raise DuplicateEmail("an account with this email already exists") from exc
    return SessionUser(user_id, email, UserRole.ADMIN, name)


async def authenticate(conn: AsyncConnection, email: str, password: str) -> SessionUser | None:
    """The active user with this email and password, or None (same answer for either mistake)."""
    row = (
        await conn.execute(
            select(
                USERS.c.id,
                USERS.c.email,
                USERS.c.role,
                USERS.c.first_name,
                USERS.c.last_name,
                USERS.c.password_hash,
                USERS.c.is_active,
            ).where(USERS.c.email == normalize_email(email))
        )
    ).first()
    if row is None:
        await verify_password(_DUMMY_HASH, password)
        return None
    if not await verify_password(row.password_hash, password) or not row.is_active:
        return None
    return _session_user(row)


async def user_by_id(conn: AsyncConnection, user_id: uuid.UUID) -> SessionUser | None:
    row = (
        await conn.execute(
            select(
                USERS.c.id, USERS.c.email, USERS.c.role, USERS.c.first_name, USERS.c.last_name
            ).where(USERS.c.id == user_id, USERS.c.is_active.is_(True))
        )
    ).first()
    return _session_user(row) if row is not None else None
