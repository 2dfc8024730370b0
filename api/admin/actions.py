"""The dashboard's actions: plain HTML forms that change a lead or a notification, or import a
CSV file, then redirect back to the page (post/redirect/get) with a notice."""

from __future__ import annotations

import codecs
import io
import uuid
from typing import Annotated

import msgspec
from litestar import Controller, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, MultipartBody, URLEncodedBody
from litestar.response import Redirect, Template

from api import directory
from api.admin.auth import admin_only
from api.admin.dashboard_support import back_to, flash, on_refused_action
from api.admin.lead_actions import assign_lead, convert_lead_action, move_lead
from api.admin.params import AdminRequest
from api.transaction import Conn
from domain.enums import LeadStatus
from domain.errors import DomainError
from domain.leads.csv_copy import copy_import_leads
from domain.leads.csv_io import BadFile, read_csv
from domain.reporting.overview import replay_notification

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class StatusForm(msgspec.Struct):
    status: LeadStatus
    next: str = "/admin/crm-sync"


class AssignForm(msgspec.Struct):
    assigned_to: Annotated[str, msgspec.Meta(max_length=254)] = ""
    next: str = "/admin/crm-sync"


class BackForm(msgspec.Struct):
    next: str = "/admin/crm-sync"


class ImportForm(msgspec.Struct):
    file: UploadFile


class DashboardActionsController(Controller):
    path = "/admin/crm-sync"
    guards = [admin_only]
    include_in_schema = False
    exception_handlers = {DomainError: on_refused_action}  # type: ignore[dict-item]

    @post("/leads/{lead_id:uuid}/status", status_code=303)
    async def change_status(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        lead_id: FromPath[uuid.UUID],
        data: URLEncodedBody[StatusForm],
    ) -> Redirect:
        await move_lead(request, state, conn, lead_id, data.status)
        return Redirect(back_to(data.next))

    @post("/leads/{lead_id:uuid}/assign", status_code=303)
    async def assign(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        lead_id: FromPath[uuid.UUID],
        data: URLEncodedBody[AssignForm],
    ) -> Redirect:
        await assign_lead(request, state, conn, lead_id, data.assigned_to)
        return Redirect(back_to(data.next))

    @post("/leads/{lead_id:uuid}/convert", status_code=303)
    async def convert(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        lead_id: FromPath[uuid.UUID],
        data: URLEncodedBody[BackForm],
    ) -> Redirect:
        await convert_lead_action(request, state, conn, lead_id)
        return Redirect(back_to(data.next))

    @post("/notifications/{notification_id:uuid}/replay", status_code=303)
    async def replay(
        self,
        request: AdminRequest,
        conn: Conn,
        notification_id: FromPath[uuid.UUID],
        data: URLEncodedBody[BackForm],
    ) -> Redirect:
        note = await replay_notification(conn, notification_id)
        flash(request, "ok", f"{note.type} for {note.target_system} queued again.")
        return Redirect(back_to(data.next))

    @post("/leads/import", request_max_body_size=MAX_UPLOAD_BYTES, status_code=200)
    async def import_csv(
        self,
        request: AdminRequest,
        state: State,
        conn: Conn,
        data: MultipartBody[ImportForm],
    ) -> Template:
        raw = await data.file.read()
        stream = io.StringIO(codecs.decode(raw, "utf-8-sig", errors="replace"), newline="")
        try:
            rows = list(read_csv(stream))
        except BadFile as exc:
            raise DomainError(f"{data.file.filename}: {exc}", field="file") from exc
        routes = directory.routes(state)
        report = await copy_import_leads(conn, rows, request.user.email, routes)
        return Template(
            "admin/import.html",
            context={"report": report, "filename": data.file.filename, "user": request.user},
        )
