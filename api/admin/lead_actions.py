"""The dashboard's three lead actions, shared by the overview's rows (api/admin/actions.py) and
the lead page (api/admin/lead_pages.py): each runs the use case and flashes what happened;
the controllers differ only in who may act and where they send the user back."""

from __future__ import annotations

import uuid

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncConnection

from api import directory
from api.admin.dashboard_support import flash
from api.admin.params import AdminRequest
from domain.enums import LeadStatus
from domain.leads.lifecycle import UpdateLead, convert_lead, update_lead


async def move_lead(
    request: AdminRequest,
    state: State,
    conn: AsyncConnection,
    lead_id: uuid.UUID,
    status: LeadStatus,
) -> None:
    cmd = UpdateLead(status=status)
    lead = await update_lead(conn, lead_id, cmd, request.user.email, directory.routes(state))
    flash(request, "ok", f"{lead.email} is now {lead.status.value}.")


async def assign_lead(
    request: AdminRequest, state: State, conn: AsyncConnection, lead_id: uuid.UUID, assignee: str
) -> None:
    cmd = UpdateLead(assigned_to=assignee.strip() or None)
    lead = await update_lead(conn, lead_id, cmd, request.user.email, directory.routes(state))
    flash(request, "ok", f"{lead.email} is assigned to {lead.assigned_to or 'nobody'}.")


async def convert_lead_action(
    request: AdminRequest, state: State, conn: AsyncConnection, lead_id: uuid.UUID
) -> None:
    done = await convert_lead(conn, lead_id, request.user.email, directory.routes(state))
    how = "a new customer" if done.customer_created else "the existing customer"
    flash(request, "ok", f"{done.lead.email} converted to {how}.")
