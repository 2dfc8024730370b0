"""The admin dashboard at /admin/crm-sync: server-rendered pages (Jinja), plain HTML forms.

Actions post a form and redirect back (post/redirect/get); a refused action comes back as a
notice at the top of the page. Pages answer 401 with the sign-in form and 403 when the role
or the CSRF token is wrong.
"""

from __future__ import annotations

import codecs
import io
import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import FromPath, FromQuery, MultipartBody, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap

from api.admin.auth import LOGIN_RATE_LIMIT, admin_only, csrf_cookie, sign_in
from api.admin.transaction import run
from domain.accounts.users import SessionUser
from domain.enums import (
    FormType,
    LeadStatus,
    LeadType,
    NotificationStatus,
    SubscriberStatus,
)
from domain.errors import DomainError
from domain.leads.csv_io import BadFile, import_leads, read_csv
from domain.leads.lifecycle import UpdateLead, convert_lead, update_lead
from domain.leads.queries import LeadFilters, LeadSort, list_leads
from domain.reporting.monitoring import conversion_funnel, daily_new_leads
from domain.reporting.overview import (
    NotificationFilters,
    list_forms,
    list_notifications,
    list_subscribers,
    notification_attempts,
    replay_notification,
    stats_cards,
)

TABS = ("leads", "forms", "subscribers", "notifications")
PAGE_SIZE = 25
CHART_DAYS = 14
MAX_UPLOAD_BYTES = 20 * 1024 * 1024

AdminRequest = Request[SessionUser, Any, Any]
Text = Annotated[str | None, QueryParameter(max_length=254)]


class SignInForm(msgspec.Struct):
    email: Annotated[str, msgspec.Meta(max_length=254)] = ""
    password: Annotated[str, msgspec.Meta(max_length=200)] = ""


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


def back_to(target: str) -> str:
    """Only ever redirect inside the dashboard."""
    return (
        target if target.startswith("/admin/crm-sync") and "//" not in target else "/admin/crm-sync"
    )


def flash(request: Request[Any, Any, Any], kind: str, message: str) -> None:
    request.set_session({**request.session, "flash": {"kind": kind, "message": message}})


def take_flash(request: Request[Any, Any, Any]) -> dict[str, str] | None:
    session = dict(request.session)
    note = session.pop("flash", None)
    if note is not None:
        request.set_session(session)
    return note


def on_refused_action(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """A refused action (409, 404, bad input) comes back to the page as a notice."""
    flash(request, "error", exc.message)
    return Redirect(back_to(_referer(request)))


def _referer(request: Request[Any, Any, Any]) -> str:
    referer = request.headers.get("referer", "")
    base = str(request.base_url).rstrip("/")
    return referer[len(base) :] if referer.startswith(base) else "/admin/crm-sync"


def on_unauthorized(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    """No session: the sign-in form, with a fresh CSRF token (the check never ran)."""
    token, cookie = csrf_cookie(request)
    return Template(
        "admin/login.html",
        context={"error": None, "email": "", "csrf": token},
        status_code=401,
        cookies=[cookie],
    )


def on_forbidden(request: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[Any]:
    return Template("admin/forbidden.html", context={"detail": exc.detail}, status_code=403)


def _page_link(request: Request[Any, Any, Any], **changes: Any) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    params.update({k: v for k, v in changes.items() if v is not None})
    return "/admin/crm-sync?" + urlencode(params)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    NotAuthorizedException: on_unauthorized,
    PermissionDeniedException: on_forbidden,
}


class DashboardAuthController(Controller):
    path = "/admin"
    include_in_schema = False

    @get("/login", opt={"exclude_from_auth": True})
    async def login_page(self) -> Template:
        return Template("admin/login.html", context={"error": None, "email": ""})

    @post(
        "/login",
        opt={"exclude_from_auth": True},
        middleware=[LOGIN_RATE_LIMIT.middleware],
        status_code=303,
    )
    async def login(
        self, request: AdminRequest, state: State, data: URLEncodedBody[SignInForm]
    ) -> Response[Any]:
        try:
            await sign_in(request, state, data.email, data.password)
        except NotAuthorizedException:
            return Template(
                "admin/login.html",
                context={"error": "Wrong email or password.", "email": data.email},
                status_code=401,
            )
        return Redirect("/admin/crm-sync")

    @post("/logout", status_code=303)
    async def logout(self, request: AdminRequest) -> Redirect:
        request.clear_session()
        return Redirect("/admin/login")


class DashboardController(Controller):
    path = "/admin/crm-sync"
    guards = [admin_only]
    include_in_schema = False
    exception_handlers = {DomainError: on_refused_action}  # type: ignore[dict-item]

    @get("/")
    async def page(
        self,
        request: AdminRequest,
        state: State,
        tab: FromQuery[str] = "leads",
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
        status: Text = None,
        type: Text = None,
        source: Text = None,
        min_score: Annotated[str | None, QueryParameter(name="minScore", max_length=3)] = None,
        assigned_to: Annotated[
            str | None, QueryParameter(name="assignedTo", max_length=254)
        ] = None,
        email: Text = None,
        sort: Text = None,
        form_type: Annotated[str | None, QueryParameter(name="formType", max_length=50)] = None,
        target_system: Annotated[
            str | None, QueryParameter(name="targetSystem", max_length=50)
        ] = None,
        read: Text = None,
    ) -> Template:
        tab = tab if tab in TABS else "leads"

        def pick(enum: Any, value: str | None) -> Any:
            return enum(value) if value and value in {e.value for e in enum} else None

        async def view(conn: Any) -> dict[str, Any]:
            context: dict[str, Any] = {
                "stats": await stats_cards(conn),
                "daily": await daily_new_leads(conn, CHART_DAYS),
                "funnel": await conversion_funnel(conn),
            }
            if tab == "leads":
                filters = LeadFilters(
                    status=pick(LeadStatus, status),
                    type=pick(LeadType, type),
                    source=source or None,
                    min_score=int(min_score) if min_score and min_score.isdigit() else None,
                    assigned_to=assigned_to or None,
                    email=email or None,
                )
                order = pick(LeadSort, sort) or LeadSort.SCORE
                context["page"] = await list_leads(conn, filters, order, PAGE_SIZE, cursor)
            elif tab == "forms":
                context["page"] = await list_forms(
                    conn, PAGE_SIZE, cursor, pick(FormType, form_type)
                )
            elif tab == "subscribers":
                context["page"] = await list_subscribers(
                    conn, PAGE_SIZE, cursor, pick(SubscriberStatus, status)
                )
            else:
                filters_n = NotificationFilters(
                    pick(NotificationStatus, status),
                    target_system or None,
                    {"true": True, "false": False}.get(read or ""),
                )
                context["page"] = await list_notifications(conn, PAGE_SIZE, cursor, filters_n)
            return context

        context = await run(state, view)
        page = context["page"]
        context.update(
            tab=tab,
            user=request.user,
            flash=take_flash(request),
            query=dict(request.query_params),
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            next_link=_page_link(request, cursor=page.next_cursor) if page.next_cursor else None,
            first_link=_page_link(request) if cursor else None,
            tab_link=lambda t: f"/admin/crm-sync?tab={t}",
            lead_statuses=list(LeadStatus),
            lead_types=list(LeadType),
            form_types=list(FormType),
            subscriber_statuses=list(SubscriberStatus),
            notification_statuses=list(NotificationStatus),
            sorts=list(LeadSort),
            now=datetime.now(),
        )
        return Template("admin/dashboard.html", context=context)

    @post("/leads/{lead_id:uuid}/status", status_code=303)
    async def change_status(
        self,
        request: AdminRequest,
        state: State,
        lead_id: FromPath[uuid.UUID],
        data: URLEncodedBody[StatusForm],
    ) -> Redirect:
        actor, routes = request.user.email, state.settings.routes
        cmd = UpdateLead(status=data.status)
        lead = await run(state, lambda conn: update_lead(conn, lead_id, cmd, actor, routes))
        flash(request, "ok", f"{lead.email} is now {lead.status.value}.")
        return Redirect(back_to(data.next))

    @post("/leads/{lead_id:uuid}/assign", status_code=303)
    async def assign(
        self,
        request: AdminRequest,
        state: State,
        lead_id: FromPath[uuid.UUID],
        data: URLEncodedBody[AssignForm],
    ) -> Redirect:
        actor, routes = request.user.email, state.settings.routes
        cmd = UpdateLead(assigned_to=data.assigned_to.strip() or None)
        lead = await run(state, lambda conn: update_lead(conn, lead_id, cmd, actor, routes))
        who = lead.assigned_to or "nobody"
        flash(request, "ok", f"{lead.email} is assigned to {who}.")
        return Redirect(back_to(data.next))

    @post("/leads/{lead_id:uuid}/convert", status_code=303)
    async def convert(
        self,
        request: AdminRequest,
        state: State,
        lead_id: FromPath[uuid.UUID],
        data: URLEncodedBody[BackForm],
    ) -> Redirect:
        actor, routes = request.user.email, state.settings.routes
        done = await run(state, lambda conn: convert_lead(conn, lead_id, actor, routes))
        how = "a new customer" if done.customer_created else "the existing customer"
        flash(request, "ok", f"{done.lead.email} converted to {how}.")
        return Redirect(back_to(data.next))

    @post("/notifications/{notification_id:uuid}/replay", status_code=303)
    async def replay(
        self,
        request: AdminRequest,
        state: State,
        notification_id: FromPath[uuid.UUID],
        data: URLEncodedBody[BackForm],
    ) -> Redirect:
        note = await run(state, lambda conn: replay_notification(conn, notification_id))
        after_commit = state.get("after_commit")
        if after_commit is not None:
            after_commit()
        flash(request, "ok", f"{note.type} for {note.target_system} queued again.")
        return Redirect(back_to(data.next))

    @get("/notifications/{notification_id:uuid}/attempts")
    async def attempts(
        self, request: AdminRequest, state: State, notification_id: FromPath[uuid.UUID]
    ) -> Template:
        attempts = await run(state, lambda conn: notification_attempts(conn, notification_id))
        return Template(
            "admin/attempts.html",
            context={
                "attempts": attempts,
                "notification_id": notification_id,
                "user": request.user,
            },
        )

    @post("/leads/import", request_max_body_size=MAX_UPLOAD_BYTES, status_code=200)
    async def import_csv(
        self, request: AdminRequest, state: State, data: MultipartBody[ImportForm]
    ) -> Template:
        raw = await data.file.read()
        stream = io.StringIO(codecs.decode(raw, "utf-8-sig", errors="replace"), newline="")
        try:
            rows = list(read_csv(stream))
        except BadFile as exc:
            raise DomainError(f"{data.file.filename}: {exc}", field="file") from exc
        report = await import_leads(state.db, rows, request.user.email, state.settings.routes)
        return Template(
            "admin/import.html",
            context={"report": report, "filename": data.file.filename, "user": request.user},
        )
