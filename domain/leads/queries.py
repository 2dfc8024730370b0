"""Reading leads: list with filters, sorts and keyset pagination, get one, counts."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.custom_fields.values import apply_filters, filter_clauses
from domain.enums import CustomFieldEntity, LeadStatus, LeadType
from domain.errors import NotFound
from domain.intake.commands import normalize_email
from domain.models import LEADS, utcnow
from domain.reporting.rollups import lead_tally
from domain.rules import allowed_moves
from infra.keyset import Keyset, paginate, parse_datetime


class LeadView(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    email: str
    name: str | None
    company_name: str | None
    phone: str | None
    type: LeadType
    source: str
    status: LeadStatus
    lead_score: int
    assigned_to: str | None
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    converted_at: datetime | None
    allowed_statuses: list[LeadStatus]
    custom_fields: dict[str, Any] = {}


def lead_view(row: Any) -> LeadView:
    status = LeadStatus(row.status)
    return LeadView(
        id=row.id,
        email=row.email,
        name=row.name,
        company_name=row.company_name,
        phone=row.phone,
        type=LeadType(row.type),
        source=row.source,
        status=status,
        lead_score=row.lead_score,
        assigned_to=row.assigned_to,
        metadata=row.metadata,
        created_at=row.created_at,
        updated_at=row.updated_at,
        converted_at=row.converted_at,
        allowed_statuses=list(allowed_moves(status)),
        custom_fields=getattr(row, "custom_fields", None) or {},
    )


class LeadSort(StrEnum):
    SCORE = "score"  # sales priority: highest score first, then newest
    NEWEST = "newest"


@dataclass(frozen=True, slots=True)
class LeadFilters:
    status: LeadStatus | None = None
    type: LeadType | None = None
    source: str | None = None
    min_score: int | None = None
    assigned_to: str | None = None
    email: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    custom: Mapping[str, str] = field(default_factory=dict)  # cf.<key>=value

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        c = LEADS.c
        if self.status is not None:
            stmt = stmt.where(c.status == self.status)
        if self.type is not None:
            stmt = stmt.where(c.type == self.type)
        if self.source:
            stmt = stmt.where(c.source == self.source)
        if self.min_score is not None:
            stmt = stmt.where(c.lead_score >= self.min_score)
        if self.assigned_to:
            stmt = stmt.where(c.assigned_to == self.assigned_to)
        if self.email:
            stmt = stmt.where(c.email == normalize_email(self.email))
        if self.created_from is not None:
            stmt = stmt.where(c.created_at >= self.created_from)
        if self.created_to is not None:
            stmt = stmt.where(c.created_at < self.created_to)
        return stmt


class LeadPage(msgspec.Struct, rename="camel"):
    items: list[LeadView]
    next_cursor: str | None
    sort: LeadSort
    limit: int


def _keyset(sort: LeadSort) -> Keyset:
    c = LEADS.c
    if sort == LeadSort.SCORE:
        return Keyset(
            f"leads:{sort}", (c.lead_score, c.created_at, c.id), (int, parse_datetime, uuid.UUID)
        )
    return Keyset(f"leads:{sort}", (c.created_at, c.id), (parse_datetime, uuid.UUID))


async def list_leads(
    conn: AsyncConnection,
    filters: LeadFilters,
    sort: LeadSort = LeadSort.SCORE,
    limit: int = 20,
    cursor: str | None = None,
) -> LeadPage:
    clauses = await filter_clauses(conn, LEADS, CustomFieldEntity.LEAD, filters.custom)
    stmt = apply_filters(filters.apply(select(LEADS)), clauses)
    rows, next_cursor = await paginate(conn, stmt, _keyset(sort), limit, cursor)
    return LeadPage([lead_view(r) for r in rows], next_cursor, sort, limit)


async def get_lead(conn: AsyncConnection, lead_id: uuid.UUID) -> LeadView:
    row = (await conn.execute(select(LEADS).where(LEADS.c.id == lead_id))).first()
    if row is None:
        raise NotFound(f"no lead with id {lead_id}", field="id")
    return lead_view(row)


class LeadCounts(msgspec.Struct, rename="camel"):
    total: int
    by_type: dict[str, int]
    by_status: dict[str, int]
    as_of: datetime  # read from the rollups (domain/reporting/rollups.py), exact at that time


async def lead_counts(conn: AsyncConnection) -> LeadCounts:
    """The seed's "count leads by type", plus the same by status; every value shows, even at 0."""
    tally = await lead_tally(conn)
    by_type, by_status = tally.count_by("type"), tally.count_by("status")
    return LeadCounts(
        tally.total,
        {t.value: by_type[t.value] for t in LeadType},
        {s.value: by_status[s.value] for s in LeadStatus},
        utcnow(),
    )
