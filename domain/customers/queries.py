"""Reading customers: the list (filters, custom field filters, keyset pages) and one customer
with its linked user, its leads (by email), its quotes and its audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.custom_fields.values import apply_filters, filter_clauses
from domain.customers.audit import customer_history
from domain.enums import CustomerStatus, CustomerType, CustomFieldEntity
from domain.errors import NotFound
from domain.intake.commands import normalize_email
from domain.leads.queries import LeadView, lead_view
from domain.models import CUSTOMERS, LEADS, QUOTE_LINES, QUOTES, USERS
from domain.rules import CUSTOMER_TRANSITIONS
from infra.keyset import Keyset, paginate, parse_datetime

# Enrichment fields of the seed's customer metadata, shown and edited as top-level fields.
ENRICHMENT = ("industryType", "employeeCount", "annualRevenue")


class CustomerView(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    external_id: str | None
    email: str
    first_name: str | None
    last_name: str | None
    company_name: str | None
    phone: str | None
    source: str
    customer_type: CustomerType
    status: CustomerStatus
    industry_type: str | None
    employee_count: str | None
    annual_revenue: str | None
    metadata: dict[str, Any] | None
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    allowed_statuses: list[CustomerStatus]


def customer_view(row: Any) -> CustomerView:
    status = CustomerStatus(row.status)
    meta = row.metadata or {}
    return CustomerView(
        id=row.id,
        external_id=row.external_id,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        company_name=row.company_name,
        phone=row.phone,
        source=row.source,
        customer_type=CustomerType(row.customer_type),
        status=status,
        industry_type=meta.get("industryType"),
        employee_count=meta.get("employeeCount"),
        annual_revenue=meta.get("annualRevenue"),
        metadata=row.metadata,
        custom_fields=row.custom_fields or {},
        created_at=row.created_at,
        updated_at=row.updated_at,
        allowed_statuses=list(CUSTOMER_TRANSITIONS[status]),
    )


@dataclass(frozen=True, slots=True)
class CustomerFilters:
    status: CustomerStatus | None = None
    customer_type: CustomerType | None = None
    source: str | None = None
    email: str | None = None
    q: str | None = None
    custom: Mapping[str, str] = field(default_factory=dict)

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        c = CUSTOMERS.c
        if self.status is not None:
            stmt = stmt.where(c.status == self.status)
        if self.customer_type is not None:
            stmt = stmt.where(c.customer_type == self.customer_type)
        if self.source:
            stmt = stmt.where(c.source == self.source)
        if self.email:
            stmt = stmt.where(c.email == normalize_email(self.email))
        if self.q:
            like = f"%{self.q.strip().lower()}%"
            stmt = stmt.where(
                or_(
                    c.email.like(like),
                    func.lower(c.company_name).like(like),
                    func.lower(c.first_name).like(like),
                    func.lower(c.last_name).like(like),
                )
            )
        return stmt


class CustomerPage(msgspec.Struct, rename="camel"):
    items: list[CustomerView]
    next_cursor: str | None
    limit: int


KEYSET = Keyset(
    "customers:newest", (CUSTOMERS.c.created_at, CUSTOMERS.c.id), (parse_datetime, uuid.UUID)
)


async def list_customers(
    conn: AsyncConnection, filters: CustomerFilters, limit: int = 20, cursor: str | None = None
) -> CustomerPage:
    stmt = filters.apply(select(CUSTOMERS))
    clauses = await filter_clauses(conn, CUSTOMERS, CustomFieldEntity.CUSTOMER, filters.custom)
    rows, next_cursor = await paginate(conn, apply_filters(stmt, clauses), KEYSET, limit, cursor)
    return CustomerPage([customer_view(r) for r in rows], next_cursor, limit)


async def get_customer(conn: AsyncConnection, customer_id: uuid.UUID) -> CustomerView:
    row = (await conn.execute(select(CUSTOMERS).where(CUSTOMERS.c.id == customer_id))).first()
    if row is None:
        raise NotFound(f"no customer with id {customer_id}", field="id")
    return customer_view(row)


class LinkedUser(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    email: str
    role: str
    is_active: bool
    first_name: str | None
    last_name: str | None


class QuoteSummary(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    reference: str
    status: str
    lines: int
    created_at: datetime
    updated_at: datetime


class CustomerDetail(msgspec.Struct, rename="camel"):
    customer: CustomerView
    user: LinkedUser | None
    leads: list[LeadView]
    quotes: list[QuoteSummary]
    history: list[dict[str, Any]]


async def linked_user_row(conn: AsyncConnection, external_id: str | None) -> Any:
    try:
        user_id = uuid.UUID(external_id or "")
    except ValueError:
        return None
    return (await conn.execute(select(USERS).where(USERS.c.id == user_id))).first()


async def customer_detail(conn: AsyncConnection, customer_id: uuid.UUID) -> CustomerDetail:
    customer = await get_customer(conn, customer_id)
    user_row = await linked_user_row(conn, customer.external_id)
    user = (
        LinkedUser(
            user_row.id,
            user_row.email,
            str(user_row.role),
            user_row.is_active,
            user_row.first_name,
            user_row.last_name,
        )
        if user_row is not None
        else None
    )
    leads = await conn.execute(
        select(LEADS)
        .where(LEADS.c.email == customer.email)
        .order_by(LEADS.c.created_at.desc(), LEADS.c.id.desc())
    )
    lines = (
        select(func.count())
        .where(QUOTE_LINES.c.quote_id == QUOTES.c.id)
        .correlate(QUOTES)
        .scalar_subquery()
    )
    quotes = await conn.execute(
        select(
            QUOTES.c.id,
            QUOTES.c.reference,
            QUOTES.c.status,
            lines.label("lines"),
            QUOTES.c.created_at,
            QUOTES.c.updated_at,
        )
        .where(QUOTES.c.customer_id == customer_id)
        .order_by(QUOTES.c.created_at.desc(), QUOTES.c.id.desc())
    )
    return CustomerDetail(
        customer,
        user,
        [lead_view(r) for r in leads],
        [
            QuoteSummary(q.id, q.reference, str(q.status), q.lines, q.created_at, q.updated_at)
            for q in quotes
        ],
        await customer_history(conn, customer_id),
    )
