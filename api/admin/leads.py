"""/api/admin/leads: the sales pipeline. Handlers parse, call one use case, answer."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api import directory
from api.admin.auth import admin_only
from api.admin.params import AdminRequest, Limit
from api.transaction import Conn
from domain.custom_fields.values import filter_params
from domain.enums import LeadStatus, LeadType
from domain.leads.audit import lead_history
from domain.leads.lifecycle import (
    Conversion,
    CreateLead,
    UpdateLead,
    convert_lead,
    create_lead,
    update_lead,
)
from domain.leads.queries import (
    LeadCounts,
    LeadFilters,
    LeadPage,
    LeadSort,
    LeadView,
    get_lead,
    lead_counts,
    list_leads,
)


def lead_filters(
    status: FromQuery[LeadStatus | None] = None,
    type: FromQuery[LeadType | None] = None,
    source: Annotated[str | None, QueryParameter(max_length=50)] = None,
    min_score: Annotated[int | None, QueryParameter(name="minScore", ge=0, le=100)] = None,
    assigned_to: Annotated[str | None, QueryParameter(name="assignedTo", max_length=254)] = None,
    email: Annotated[str | None, QueryParameter(max_length=254)] = None,
    created_from: Annotated[datetime | None, QueryParameter(name="createdFrom")] = None,
    created_to: Annotated[datetime | None, QueryParameter(name="createdTo")] = None,
) -> LeadFilters:
    return LeadFilters(
        status, type, source, min_score, assigned_to, email, created_from, created_to
    )


class LeadController(Controller):
    path = "/api/admin/leads"
    guards = [admin_only]
    tags = ["admin: leads"]
    dependencies = {"filters": Provide(lead_filters, sync_to_thread=False)}

    @get("/", summary="List leads (filters, cf.<key>=value, sort, keyset pagination)")
    async def index(
        self,
        request: AdminRequest,
        conn: Conn,
        filters: NamedDependency[LeadFilters],
        sort: FromQuery[LeadSort] = LeadSort.SCORE,
        limit: Limit = 20,
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
    ) -> LeadPage:
        custom = filter_params(dict(request.query_params))
        return await list_leads(conn, replace(filters, custom=custom), sort, limit, cursor)

    @get("/counts", summary="Lead counts by type and by status")
    async def counts(self, conn: Conn) -> LeadCounts:
        return await lead_counts(conn)

    @get("/{lead_id:uuid}", summary="One lead")
    async def get_one(self, conn: Conn, lead_id: FromPath[uuid.UUID]) -> LeadView:
        return await get_lead(conn, lead_id)

    @get("/{lead_id:uuid}/history", summary="Audit trail of one lead")
    async def history(self, conn: Conn, lead_id: FromPath[uuid.UUID]) -> list[dict[str, Any]]:
        await get_lead(conn, lead_id)  # 404 for an unknown lead
        return await lead_history(conn, lead_id)

    @post("/", summary="Create a lead by hand (source manual_import, emits NEW_LEAD)")
    async def create(
        self, request: AdminRequest, state: State, conn: Conn, data: JSONBody[CreateLead]
    ) -> LeadView:
        return await create_lead(conn, data, request.user.email, directory.routes(state))

    @patch("/{lead_id:uuid}", summary="Change status, assignee or score")
    async def update(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        lead_id: FromPath[uuid.UUID],
        data: JSONBody[UpdateLead],
    ) -> LeadView:
        return await update_lead(conn, lead_id, data, request.user.email, directory.routes(state))

    @post("/{lead_id:uuid}/convert", status_code=200, summary="Convert a lead to a customer")
    async def convert(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        lead_id: FromPath[uuid.UUID],
    ) -> Conversion:
        return await convert_lead(conn, lead_id, request.user.email, directory.routes(state))
