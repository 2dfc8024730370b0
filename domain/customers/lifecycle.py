"""Customer use cases: edit (audited, CUSTOMER_UPDATED), deactivate and reactivate (the seed's
INACTIVE: the linked user account goes inactive with it, CUSTOMER_DEACTIVATED).

Each runs inside the caller's transaction and writes the customer, its audit entries and its
outbox rows together; an illegal move raises before anything is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.custom_fields.values import checked_values, merged
from domain.customers.audit import customer_audit_rows
from domain.customers.queries import CustomerView, customer_view, linked_user_row
from domain.enums import CustomerStatus, CustomerType, CustomFieldEntity, NotificationType
from domain.errors import NotFound
from domain.intake.commands import Name, Phone, normalize_email
from domain.models import CUSTOMER_AUDIT, CUSTOMERS, NOTIFICATIONS, USERS, utcnow
from domain.outbox.rows import Rows, insert_all, notification_rows
from domain.rules import Route, check_customer_transition

Enrichment = Annotated[str, msgspec.Meta(max_length=100)]
CustomFields = Annotated[dict[str, Any], msgspec.Meta(max_length=100)]
UNSET: Any = msgspec.UNSET

# PATCH fields kept in columns, by their API name.
COLUMNS = {
    "customerType": "customer_type",
    "status": "status",
    "companyName": "company_name",
    "phone": "phone",
    "firstName": "first_name",
    "lastName": "last_name",
}
METADATA_FIELDS = {
    "industryType": "industry_type",
    "employeeCount": "employee_count",
    "annualRevenue": "annual_revenue",
}


class UpdateCustomer(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """PATCH body: any of these; null clears a field (not customerType or status)."""

    customer_type: CustomerType | msgspec.UnsetType = UNSET
    status: CustomerStatus | msgspec.UnsetType = UNSET
    company_name: Name | msgspec.UnsetType | None = UNSET
    phone: Phone | msgspec.UnsetType | None = UNSET
    first_name: Name | msgspec.UnsetType | None = UNSET
    last_name: Name | msgspec.UnsetType | None = UNSET
    industry_type: Enrichment | msgspec.UnsetType | None = UNSET
    employee_count: Enrichment | msgspec.UnsetType | None = UNSET
    annual_revenue: Enrichment | msgspec.UnsetType | None = UNSET
    custom_fields: CustomFields | msgspec.UnsetType = UNSET

    def __post_init__(self) -> None:
        if all(getattr(self, f) is UNSET for f in self.__struct_fields__):
            raise ValueError("body must change at least one field")
        for f in ("company_name", "phone", "first_name", "last_name"):
            value = getattr(self, f)
            if isinstance(value, str):
                setattr(self, f, value.strip() or None)


async def _locked(conn: AsyncConnection, customer_id: uuid.UUID) -> Any:
    row = (
        await conn.execute(select(CUSTOMERS).where(CUSTOMERS.c.id == customer_id).with_for_update())
    ).first()
    if row is None:
        raise NotFound(f"no customer with id {customer_id}", field="id")
    return row


def customer_data(row: Any, **extra: object) -> dict[str, Any]:
    """The notification payload describing a customer."""
    return {
        "customerId": str(row["id"]),
        "externalId": row["external_id"],
        "email": row["email"],
        "firstName": row["first_name"],
        "lastName": row["last_name"],
        "companyName": row["company_name"],
        "phone": row["phone"],
        "customerType": str(row["customer_type"]),
        "status": str(row["status"]),
        "source": row["source"],
        "customFields": row["custom_fields"] or {},
        **extra,
    }


async def update_customer(
    conn: AsyncConnection,
    customer_id: uuid.UUID,
    cmd: UpdateCustomer,
    actor: str,
    routes: Iterable[Route],
) -> CustomerView:
    """Apply a PATCH: each changed field audited, one CUSTOMER_UPDATED naming the changes.
    A status change follows the lifecycle; to INACTIVE it is a full deactivation."""
    current = await _locked(conn, customer_id)
    now = utcnow()
    values: dict[str, Any] = {}
    changes: dict[str, tuple[object, object]] = {}
    for api_name, column in COLUMNS.items():
        value = getattr(cmd, column)
        if value is UNSET or (api_name == "status" and value == current.status):
            continue
        if api_name in ("customerType", "status") and value is None:
            continue
        if value != getattr(current, column):
            values[column] = value
            changes[api_name] = (getattr(current, column), value)
    if "status" in values:
        check_customer_transition(CustomerStatus(current.status), values["status"])
    metadata = dict(current.metadata or {})
    for api_name, attr in METADATA_FIELDS.items():
        value = getattr(cmd, attr)
        if value is UNSET or value == metadata.get(api_name):
            continue
        changes[api_name] = (metadata.get(api_name), value)
        if value is None:
            metadata.pop(api_name, None)
        else:
            metadata[api_name] = value
        values["metadata"] = metadata
    if not isinstance(cmd.custom_fields, msgspec.UnsetType):
        checked = await checked_values(conn, CustomFieldEntity.CUSTOMER, cmd.custom_fields, False)
        before = current.custom_fields or {}
        after = merged(before, checked)
        for key in checked:
            if before.get(key) != after.get(key):
                changes[f"customFields.{key}"] = (before.get(key), after.get(key))
        if after != before:
            values["custom_fields"] = after
    if not values:
        return customer_view(current)
    await conn.execute(
        update(CUSTOMERS).where(CUSTOMERS.c.id == customer_id).values(**values, updated_at=now)
    )
    row = dict(current._mapping, **values)
    audit = customer_audit_rows(customer_id, actor, now, "updated", changes)
    notes = _updated_notes(row, changes, actor, now, routes)
    if values.get("status") == CustomerStatus.INACTIVE:
        notes += await _deactivation_effects(conn, row, actor, now, routes)
    elif values.get("status") == CustomerStatus.ACTIVE:
        await _set_user_active(conn, row["external_id"], True, now)
    await insert_all(conn, [(CUSTOMER_AUDIT, audit), (NOTIFICATIONS, notes)])
    return customer_view(_Row(row))


class _Row(dict[str, Any]):
    """A row as a mapping with attribute access, like a database row."""

    __getattr__ = dict.__getitem__


def _updated_notes(
    row: dict[str, Any],
    changes: dict[str, tuple[object, object]],
    actor: str,
    now: datetime,
    routes: Iterable[Route],
) -> Rows:
    changed = {
        k: {"from": _plain(before), "to": _plain(after)} for k, (before, after) in changes.items()
    }
    data = customer_data(row, changes=changed, updatedBy=actor, updatedAt=now.isoformat())
    return notification_rows(NotificationType.CUSTOMER_UPDATED, data, routes, now)


def _plain(value: object) -> object:
    return str(value.value) if hasattr(value, "value") else value


async def _set_user_active(
    conn: AsyncConnection, external_id: str | None, active: bool, now: datetime
) -> uuid.UUID | None:
    user = await linked_user_row(conn, external_id)
    if user is None:
        return None
    await conn.execute(
        update(USERS).where(USERS.c.id == user.id).values(is_active=active, updated_at=now)
    )
    return user.id  # type: ignore[no-any-return]


async def _deactivation_effects(
    conn: AsyncConnection, row: dict[str, Any], actor: str, now: datetime, routes: Iterable[Route]
) -> Rows:
    """The linked user goes inactive (every session of theirs is refused from the next
    request: sessions load only active users) and CUSTOMER_DEACTIVATED is emitted."""
    user_id = await _set_user_active(conn, row["external_id"], False, now)
    data = customer_data(
        row,
        userId=str(user_id) if user_id else None,
        userDeactivated=user_id is not None,
        deactivatedBy=actor,
        deactivatedAt=now.isoformat(),
    )
    return notification_rows(NotificationType.CUSTOMER_DEACTIVATED, data, routes, now)


async def set_customer_status(
    conn: AsyncConnection,
    customer_id: uuid.UUID,
    status: CustomerStatus,
    actor: str,
    routes: Iterable[Route],
) -> CustomerView:
    """POST .../deactivate and .../reactivate: the move must be allowed (409 otherwise, since
    deactivating an INACTIVE customer is not a move either)."""
    current = await _locked(conn, customer_id)
    check_customer_transition(CustomerStatus(current.status), status)
    return await update_customer(conn, customer_id, UpdateCustomer(status=status), actor, routes)


@dataclass(frozen=True, slots=True)
class UserDeactivation:
    user_id: uuid.UUID
    email: str
    customer_id: uuid.UUID | None
    customer_deactivated: bool


async def deactivate_user(
    conn: AsyncConnection, email: str, actor: str, routes: Iterable[Route]
) -> UserDeactivation:
    """`crm users deactivate --email`: the account (staff or customer) goes inactive, and its
    linked customer is deactivated like POST /api/admin/customers/{id}/deactivate does."""
    email = normalize_email(email)
    user = (await conn.execute(select(USERS).where(USERS.c.email == email))).first()
    if user is None:
        raise NotFound(f"no user with email {email}", field="email")
    customer = (
        await conn.execute(
            select(CUSTOMERS.c.id, CUSTOMERS.c.status).where(
                CUSTOMERS.c.external_id == str(user.id)
            )
        )
    ).first()
    deactivated = False
    if customer is not None and customer.status != CustomerStatus.INACTIVE:
        await set_customer_status(conn, customer.id, CustomerStatus.INACTIVE, actor, routes)
        deactivated = True
    await conn.execute(
        update(USERS).where(USERS.c.id == user.id).values(is_active=False, updated_at=utcnow())
    )
    return UserDeactivation(user.id, email, customer.id if customer else None, deactivated)
