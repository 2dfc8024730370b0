"""The lead page, /admin/leads/{id}: details, custom fields, history, the notifications sent
about it, and its actions (move to an allowed status, assign, convert), for admins and sales.

Actions are plain forms that redirect back here (post/redirect/get) with a notice.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from api.admin.auth import staff_only
from api.admin.lead_actions import assign_lead, convert_lead_action, move_lead
from api.admin.page_kit import PAGE_EXCEPTIONS, render
from api.admin.params import AdminRequest
from api.transaction import Conn
from domain.custom_fields.definitions import list_fields
from domain.customers.queries import CustomerFilters, list_customers
from domain.enums import CustomFieldEntity, LeadStatus
from domain.leads.audit import lead_history
from domain.leads.notifications import lead_notifications
from domain.leads.queries import get_lead


class MoveForm(msgspec.Struct):
    status: LeadStatus


class AssignForm(msgspec.Struct):
    assigned_to: Annotated[str, msgspec.Meta(max_length=254)] = ""


def _lead_page(lead_id: uuid.UUID) -> str:
    return f"/admin/leads/{lead_id}"


class LeadPagesController(Controller):
    path = "/admin/leads"
    guards = [staff_only]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTIONS

    @get("/{lead_id:uuid}")
    async def page(
        self, request: AdminRequest, conn: Conn, lead_id: FromPath[uuid.UUID]
    ) -> Template:
        lead = await get_lead(conn, lead_id)
        customers = await list_customers(conn, CustomerFilters(email=lead.email), 1)
        return render(
            request,
            "admin/lead.html",
            "leads",
            lead=lead,
            moves=[s for s in lead.allowed_statuses if s != LeadStatus.CONVERTED],
            can_convert=LeadStatus.CONVERTED in lead.allowed_statuses,
            fields=await list_fields(conn, CustomFieldEntity.LEAD),
            history=await lead_history(conn, lead_id),
            notifications=await lead_notifications(conn, lead_id),
            customer=customers.items[0] if customers.items else None,
        )

    @post("/{lead_id:uuid}/status", status_code=303)
    async def move(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        lead_id: FromPath[uuid.UUID],
        data: URLEncodedBody[MoveForm],
    ) -> Redirect:
        await move_lead(request, state, conn, lead_id, data.status)
        return Redirect(_lead_page(lead_id), status_code=303)

    @post("/{lead_id:uuid}/assign", status_code=303)
    async def assign(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        lead_id: FromPath[uuid.UUID],
        data: URLEncodedBody[AssignForm],
    ) -> Redirect:
        await assign_lead(request, state, conn, lead_id, data.assigned_to)
        return Redirect(_lead_page(lead_id), status_code=303)

    @post("/{lead_id:uuid}/convert", status_code=303)
    async def convert(
        self, request: AdminRequest, state: State, conn: Conn, lead_id: FromPath[uuid.UUID]
    ) -> Redirect:
        await convert_lead_action(request, state, conn, lead_id)
        return Redirect(_lead_page(lead_id), status_code=303)
